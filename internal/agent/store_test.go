package agent

import (
	"context"
	"net"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/feed"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
	"github.com/aerostat-io/aerostat/internal/store/embedded"
)

func TestMain(m *testing.M) { ledgertest.Main(m) }

func bind(t *testing.T, store ledger.Store, host, id, ip string, aliases ...string) {
	t.Helper()
	_, err := store.Apply(context.Background(), []naming.Change{{Type: naming.Bind, Hostname: host, Service: "web",
		Scheme: naming.Iterative, InstanceID: id, IP: ip, Aliases: aliases, Reason: "test"}})
	if err != nil {
		t.Fatal(err)
	}
}

func readOnlySource(t *testing.T, db string) func(*clocktesting.FakeClock) Source {
	ro := ledgertest.Open(t, ledger.Options{Database: db, ReadOnly: true})
	return func(fc *clocktesting.FakeClock) Source {
		return NewLedgerSource(ro, ledger.FollowerOptions{Clock: fc, Overlap: 5 * time.Second, ResyncEvery: time.Hour})
	}
}

// 1.x documents (no rev, lower-case service_type, gaps with empty
// instance_id) are read and rendered.
func TestAgentRenders1xData(t *testing.T) {
	ctx := context.Background()
	db := ledgertest.Database(t)
	w := ledgertest.Open(t, ledger.Options{Database: db})
	_, err := w.Client().Database(db).Collection("servers").InsertMany(ctx, []any{
		bson.M{"hostname": "web-0", "ip": "10.1.0.1", "service": "web", "service_type": "iterative", "instance_id": "i-1", "aliases": bson.A{"www"}},
		bson.M{"hostname": "web-1", "ip": "", "service": "web", "service_type": "iterative", "instance_id": "", "aliases": bson.A{}},
		bson.M{"hostname": "db-master", "ip": "10.1.0.3", "service": "db", "service_type": "masterful", "instance_id": "i-3", "aliases": bson.A{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, readOnlySource(t, db), Options{})
	if err := f.sync(t); err != nil {
		t.Fatal(err)
	}
	if got := f.block(t); got != "10.1.0.3 db-master,10.1.0.1 web-0,10.1.0.1 www" {
		t.Errorf("block = %s", got)
	}
}

// A writer takes a rev, another commits a higher one, the agent reads it,
// then the first commits: the agent must still get it from deltas.
func TestAgentLedgerOutOfOrderWriters(t *testing.T) {
	ctx := context.Background()
	db := ledgertest.Database(t)
	w := ledgertest.Open(t, ledger.Options{Database: db})
	bind(t, w, "web-0", "i-0", "10.0.0.1")
	f := newFixture(t, readOnlySource(t, db), Options{})
	for range 7 { // past the startup follow-up read
		if err := f.sync(t); err != nil {
			t.Fatal(err)
		}
	}
	// Writer A takes its rev the way the ledger does, and stalls.
	revA, err := w.TakeRev(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bind(t, w, "web-2", "i-2", "10.0.0.3") // writer B commits a higher rev
	if err := f.sync(t); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteWithRev(ctx, naming.Change{Type: naming.Bind, Hostname: "web-1", Service: "web", Scheme: naming.Iterative,
		Ordinal: 1, InstanceID: "i-1", IP: "10.0.0.2"}, revA); err != nil {
		t.Fatal(err)
	}
	for range 7 {
		if err := f.sync(t); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.block(t); got != "10.0.0.1 web-0,10.0.0.2 web-1,10.0.0.3 web-2" {
		t.Fatalf("block = %s", got)
	}
}

// The agent follows the controller's feed served over the same store.
func TestAgentFeedOverLedger(t *testing.T) {
	ctx := context.Background()
	store := ledgertest.New(t)
	bind(t, store, "web-0", "i-0", "10.0.0.1", "www")
	h := feed.NewHandler(store, feed.Options{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	if err := h.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(*clocktesting.FakeClock) Source {
		c, err := feed.NewClient(srv.URL, srv.Client(), 0)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}, Options{})
	if err := f.sync(t); err != nil {
		t.Fatal(err)
	}
	bind(t, store, "web-1", "i-1", "10.0.0.2")
	if _, err := store.Apply(ctx, []naming.Change{{Type: naming.Release, Hostname: "web-0", Service: "web", Scheme: naming.Iterative,
		ExpectExists: true, ExpectInstanceID: "i-0", ExpectRev: 1, Reason: "test"}}); err != nil {
		t.Fatal(err)
	}
	if err := h.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.sync(t); err != nil {
		t.Fatal(err)
	}
	if got := f.block(t); got != "10.0.0.2 web-1" {
		t.Fatalf("block = %s", got)
	}
}

// The store is stopped mid-run: the file stays as it was and the agent
// catches up when the store is back on the same address.
func TestAgentStoreRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	srv, err := embedded.Start(ctx, embedded.Options{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Skipf("embedded store unavailable: %v", err)
	}
	defer func() { _ = srv.Close() }()
	u, err := url.Parse(srv.URI())
	if err != nil {
		t.Fatal(err)
	}
	w, err := ledger.Open(ctx, srv.URI(), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close(ctx) }()
	ro, err := ledger.Open(ctx, srv.URI()+"/?serverSelectionTimeoutMS=1000", ledger.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ro.Close(ctx) }()
	bind(t, w, "web-0", "i-0", "10.0.0.1")
	f := newFixture(t, func(fc *clocktesting.FakeClock) Source {
		return NewLedgerSource(ro, ledger.FollowerOptions{Clock: fc, Overlap: 5 * time.Second, ResyncEvery: time.Hour})
	}, Options{})
	if err := f.sync(t); err != nil {
		t.Fatal(err)
	}
	before := f.block(t)

	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := f.sync(t); err == nil {
			t.Fatal("sync succeeded with the store stopped")
		}
	}
	f.clock.Step(2 * time.Hour) // a due full resync fails too, without touching the file
	if err := f.sync(t); err == nil {
		t.Fatal("sync succeeded with the store stopped")
	}
	if got := f.block(t); got != before {
		t.Fatalf("block changed while the store was down: %s", got)
	}

	srv2, err := embedded.Start(ctx, embedded.Options{DataDir: dir, Listen: net.JoinHostPort("127.0.0.1", u.Port())})
	if err != nil {
		t.Skipf("restarting the embedded store on %s: %v", u.Host, err)
	}
	defer func() { _ = srv2.Close() }()
	// A fresh writer: w's pooled connection died with the first server, and
	// the write that finds it so fails (FerretDB has no retryable writes).
	w2, err := ledger.Open(ctx, srv2.URI(), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w2.Close(ctx) }()
	bind(t, w2, "web-1", "i-1", "10.0.0.2")
	var lastErr error
	for range 10 { // the driver reconnects on its own schedule
		if lastErr = f.sync(t); lastErr == nil && f.block(t) != before {
			break
		}
	}
	if got := f.block(t); got != "10.0.0.1 web-0,10.0.0.2 web-1" {
		t.Fatalf("block after restart = %s (last error %v)", got, lastErr)
	}
}
