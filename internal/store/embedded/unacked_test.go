package embedded

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
)

// TestUnacknowledgedWrites: w=0 writes (OP_MSG moreToCome, as 1.x's
// pymongo.Connection sent) through the proxy leave the connection in step:
// the next command on the same connection gets its own reply, and sees the
// writes. FerretDB v1 answers moreToCome requests too; passed on, that
// reply answered the next request.
func TestUnacknowledgedWrites(t *testing.T) {
	ctx := context.Background()
	// One connection: every command follows the unacknowledged writes on it.
	_, c := startAndConnect(t, Options{}, func(o *options.ClientOptions) { o.SetMaxPoolSize(1) })
	coll := c.Database("aerostat").Collection("servers", options.Collection().SetWriteConcern(writeconcern.Unacknowledged()))
	acked := c.Database("aerostat").Collection("servers")
	if _, err := acked.InsertOne(ctx, bson.D{{Key: "hostname", Value: "web-0"}}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := coll.UpdateOne(ctx, bson.D{{Key: "hostname", Value: "web-0"}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}); err != nil {
			t.Fatalf("unacknowledged update %d: %v", i, err)
		}
		var doc struct{ N int }
		if err := acked.FindOne(ctx, bson.D{{Key: "hostname", Value: "web-0"}}).Decode(&doc); err != nil {
			t.Fatalf("find after unacknowledged update %d: %v", i, err)
		}
		if doc.N != i+1 {
			t.Fatalf("after %d unacknowledged updates n = %d", i+1, doc.N)
		}
	}
}
