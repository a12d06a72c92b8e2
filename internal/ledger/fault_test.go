package ledger_test

import (
	"context"
	"testing"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
	"github.com/aerostat-io/aerostat/internal/store/embedded"
)

// Store faults: the store stops between two passes. Writes and
// reads fail with an error (never partial data), nothing half-written is
// left, and after a restart the ledger holds exactly what was committed.
func TestStoreStoppedMidPass(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	srv, err := embedded.Start(ctx, embedded.Options{DataDir: dir})
	if err != nil {
		t.Fatalf("starting store: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	// Fail fast once the store is gone instead of the 5s default.
	uri := srv.URI() + "?serverSelectionTimeoutMS=300&connectTimeoutMS=300"
	m, err := ledger.Open(ctx, uri, ledger.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = m.Close(ctx) })
	mustApply(t, m, bind("web-0", 0, "i-0", "10.0.0.1"))

	if err := srv.Close(); err != nil {
		t.Fatalf("stopping store: %v", err)
	}
	n, err := m.Apply(ctx, []naming.Change{
		bind("web-1", 1, "i-1", "10.0.0.2"),
		{Type: naming.Release, Hostname: "web-0", ExpectExists: true, ExpectInstanceID: "i-0", ExpectRev: 1},
	})
	if err == nil || n != 0 {
		t.Fatalf("Apply on a stopped store = %d, %v; want 0 and an error", n, err)
	}
	if recs, err := m.Records(ctx, "web"); err == nil || recs != nil {
		t.Errorf("Records on a stopped store = %v, %v; want nil and an error", recs, err)
	}
	if recs, _, err := m.Changes(ctx, 0); err == nil || recs != nil {
		t.Errorf("Changes on a stopped store = %v, %v; want nil and an error", recs, err)
	}

	srv2, err := embedded.Start(ctx, embedded.Options{DataDir: dir})
	if err != nil {
		t.Fatalf("restarting store: %v", err)
	}
	t.Cleanup(func() { _ = srv2.Close() })
	m2, err := ledger.Open(ctx, srv2.URI(), ledger.Options{})
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	t.Cleanup(func() { _ = m2.Close(ctx) })
	got := mustRecords(t, m2, "web")
	if len(got) != 1 || got["web-0"].InstanceID != "i-0" || got["web-0"].Rev != 1 {
		t.Errorf("after restart: %+v; want only web-0 bound to i-0 at rev 1", got)
	}
	// And the ledger works again: the interrupted pass can be replayed.
	mustApply(t, m2, bind("web-1", 1, "i-1", "10.0.0.2"))
	if rev, err := m2.Rev(ctx); err != nil || rev != 2 {
		t.Errorf("Rev after replay = %d, %v; want 2", rev, err)
	}
}
