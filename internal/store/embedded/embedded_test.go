package embedded

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func TestStartServesAndCloseFreesPort(t *testing.T) {
	ctx := context.Background()
	s, c := startAndConnect(t, Options{})
	u, err := url.Parse(s.URI())
	if err != nil {
		t.Fatalf("parsing URI %q: %v", s.URI(), err)
	}
	if _, port, _ := net.SplitHostPort(u.Host); port == "0" || port == "" {
		t.Fatalf("URI %q does not carry the bound port", s.URI())
	}

	coll := c.Database("t").Collection("c")
	if _, err := coll.InsertOne(ctx, bson.M{"hostname": "web-0"}); err != nil {
		t.Fatalf("insert: %v", err)
	}
	var got bson.M
	if err := coll.FindOne(ctx, bson.M{"hostname": "web-0"}).Decode(&got); err != nil {
		t.Fatalf("find: %v", err)
	}
	_ = c.Disconnect(ctx)

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	l, err := net.Listen("tcp", u.Host)
	if err != nil {
		t.Fatalf("port %s still held after Close: %v", u.Host, err)
	}
	_ = l.Close()
}

func TestStartKeepsDataAcrossRestarts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for i, want := range []int64{1, 2} {
		s, c := startAndConnect(t, Options{DataDir: dir})
		coll := c.Database("t").Collection("c")
		if _, err := coll.InsertOne(ctx, bson.M{"n": i}); err != nil {
			t.Fatalf("insert: %v", err)
		}
		n, err := coll.CountDocuments(ctx, bson.M{})
		if err != nil {
			t.Fatalf("count: %v", err)
		}
		if n != want {
			t.Errorf("start %d: %d documents, want %d", i, n, want)
		}
		_ = c.Disconnect(ctx)
		_ = s.Close()
	}
}

func TestStartErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := map[string]Options{
		"no data dir": {},
		"port in use": {DataDir: t.TempDir(), Listen: busy.Addr().String()},
		"bad address": {DataDir: t.TempDir(), Listen: "not-an-address"},
	}
	for name, opts := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := Start(context.Background(), opts)
			if err == nil {
				_ = s.Close()
				t.Fatalf("Start(%+v) succeeded, want error", opts)
			}
		})
	}
}

// FerretDB v1 alone lets several concurrent compare-and-set updates of one
// document succeed; through the serializer exactly one must win, and a
// counter bumped concurrently must hand out distinct values.
func TestSingleDocumentWritesAreAtomic(t *testing.T) {
	ctx := context.Background()
	_, c := startAndConnect(t, Options{})
	db := c.Database("atomic")
	if _, err := db.Collection("meta").InsertOne(ctx, bson.M{"_id": "rev", "n": int64(0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Collection("servers").InsertOne(ctx, bson.M{"hostname": "web-0", "instance_id": "", "rev": int64(1)}); err != nil {
		t.Fatal(err)
	}

	const n = 30
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		wins int
		revs = map[int64]bool{}
		errs []error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var d struct {
				N int64 `bson:"n"`
			}
			errInc := db.Collection("meta").FindOneAndUpdate(ctx, bson.M{"_id": "rev"},
				bson.M{"$inc": bson.M{"n": int64(1)}},
				options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&d)
			r, errCAS := db.Collection("servers").UpdateOne(ctx,
				bson.M{"hostname": "web-0", "instance_id": "", "rev": int64(1)},
				bson.M{"$set": bson.M{"instance_id": fmt.Sprint("i-", i), "rev": int64(2)}})
			mu.Lock()
			defer mu.Unlock()
			if err := errors.Join(errInc, errCAS); err != nil {
				errs = append(errs, err)
				return
			}
			revs[d.N] = true
			if r.MatchedCount == 1 {
				wins++
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("writes failed: %v", errs)
	}
	if wins != 1 {
		t.Errorf("%d concurrent compare-and-set updates won, want 1", wins)
	}
	if len(revs) != n {
		t.Errorf("counter handed out %d distinct values to %d callers", len(revs), n)
	}
}
