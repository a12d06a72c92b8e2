package ledger_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
)

func changeLog(m *ledger.Mongo) *mongo.Collection {
	return m.Client().Database(m.Database()).Collection("changes")
}

func hostRevs(recs []naming.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, fmt.Sprintf("%s@%d", r.Hostname, r.Rev))
	}
	return out
}

// Within the window a delta comes from the change log, not from the
// servers collection: a document removed behind the ledger's back is
// still reported as it was committed. Below the floor the delta reads the
// collection again.
func TestChangesReadTheLog(t *testing.T) {
	ctx := context.Background()
	m := ledgertest.New(t)
	mustApply(t, m, bind("web-0", 0, "i-0", "10.0.0.1"), bind("web-1", 1, "i-1", "10.0.0.2")) // revs 1, 2
	mustApply(t, m, naming.Change{Type: naming.SetIP, Hostname: "web-0", IP: "10.0.0.9",
		ExpectExists: true, ExpectInstanceID: "i-0", ExpectRev: 1}) // rev 3

	recs, rev, err := m.Changes(ctx, 0)
	if err != nil || rev != 3 {
		t.Fatalf("Changes(0) = %v, rev %d, %v; want rev 3", hostRevs(recs), rev, err)
	}
	if got, want := hostRevs(recs), []string{"web-0@3", "web-1@2"}; !slices.Equal(got, want) {
		t.Fatalf("Changes(0) = %v, want %v (one record a hostname, the latest)", got, want)
	}
	if recs[0].IP != "10.0.0.9" || recs[0].InstanceID != "i-0" || recs[0].Service != "web" {
		t.Errorf("web-0 from the log = %+v, want the whole record after SetIP", recs[0])
	}
	if recs, _, err := m.Changes(ctx, 2); err != nil || !slices.Equal(hostRevs(recs), []string{"web-0@3"}) {
		t.Errorf("Changes(2) = %v, %v; want web-0@3 only", hostRevs(recs), err)
	}

	if _, err := servers(m).DeleteOne(ctx, bson.D{{Key: "hostname", Value: "web-1"}}); err != nil {
		t.Fatal(err)
	}
	if recs, _, err := m.Changes(ctx, 1); err != nil || !slices.Equal(hostRevs(recs), []string{"web-0@3", "web-1@2"}) {
		t.Fatalf("Changes(1) after deleting web-1's document = %v, %v; want it from the log", hostRevs(recs), err)
	}

	// The counter jumps past the window (a bulk import, a long outage):
	// the delta from rev 1 reads the collection, where web-1 is gone.
	if _, err := m.Client().Database(m.Database()).Collection("meta").UpdateOne(ctx, bson.D{{Key: "_id", Value: "rev"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: int64(3 + ledger.ChangeWindow)}}}}); err != nil {
		t.Fatal(err)
	}
	if recs, _, err := m.Changes(ctx, 1); err != nil || !slices.Equal(hostRevs(recs), []string{"web-0@3"}) {
		t.Fatalf("Changes(1) below the floor = %v, %v; want the collection's web-0@3", hostRevs(recs), err)
	}
}

// Creating a bucket deletes the one ChangeKeep below it, so the log stays
// at ChangeKeep documents however many writes there are.
func TestChangeLogTrims(t *testing.T) {
	ctx := context.Background()
	m := ledgertest.New(t)
	for b := int64(0); b < ledger.ChangeKeep+5; b++ {
		doc, err := bson.Marshal(bson.D{{Key: "hostname", Value: fmt.Sprintf("web-%d", b)}, {Key: "rev", Value: b*ledger.ChangeBucket + 1}})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.LogDocs(ctx, doc); err != nil {
			t.Fatalf("LogDocs(bucket %d): %v", b, err)
		}
	}
	n, err := changeLog(m).CountDocuments(ctx, bson.D{})
	if err != nil || n != ledger.ChangeKeep {
		t.Fatalf("change log holds %d buckets (%v), want %d", n, err, ledger.ChangeKeep)
	}
	if err := changeLog(m).FindOne(ctx, bson.D{{Key: "_id", Value: "c4"}}).Err(); err != mongo.ErrNoDocuments {
		t.Errorf("bucket 4 still there (%v), want it trimmed", err)
	}
}

// A writer that commits its record and dies before writing the log entry
// leaves a change deltas cannot see; the follower's periodic full read
// picks it up.
func TestFollowerResyncCatchesUnloggedWrites(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	m := ledgertest.New(t)
	mustApply(t, m, bind("web-0", 0, "i-0", "10.0.0.1"))
	f := ledger.NewFollower(m, ledger.FollowerOptions{Overlap: time.Second, ResyncEvery: time.Minute, Clock: clk})
	for range 2 { // the first full read and a delta
		if _, err := f.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		clk.SetTime(clk.Now().Add(2 * time.Second))
	}
	rev, err := m.TakeRev(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := servers(m).InsertOne(ctx, bson.M{"hostname": "web-1", "service": "web", "service_type": "iterative",
		"instance_id": "i-1", "ip": "10.0.0.2", "aliases": bson.A{}, "rev": rev}); err != nil {
		t.Fatal(err)
	}
	clk.SetTime(clk.Now().Add(2 * time.Second))
	if changed, err := f.Poll(ctx); err != nil || len(changed) != 0 || len(f.Records()) != 1 {
		t.Fatalf("delta Poll = changed %v, %d records, %v; an unlogged write is invisible to deltas", changed, len(f.Records()), err)
	}
	clk.SetTime(clk.Now().Add(time.Minute))
	if changed, err := f.Poll(ctx); err != nil || len(changed) != 1 || len(f.Records()) != 2 {
		t.Fatalf("resync Poll = changed %v, %d records, %v; want web-1 added", changed, len(f.Records()), err)
	}
}
