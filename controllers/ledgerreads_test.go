package controllers_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// readCounter counts the calls a pass makes to the ledger. Records and
// Changes scan the whole collection on the embedded store; Rev reads one
// counter document.
type readCounter struct {
	ledger.Store
	records, changes, revs, writes atomic.Int64
}

func (c *readCounter) Records(ctx context.Context, service string) ([]naming.Record, error) {
	c.records.Add(1)
	return c.Store.Records(ctx, service)
}

func (c *readCounter) Changes(ctx context.Context, since int64) ([]naming.Record, int64, error) {
	c.changes.Add(1)
	return c.Store.Changes(ctx, since)
}

func (c *readCounter) Rev(ctx context.Context) (int64, error) {
	c.revs.Add(1)
	return c.Store.Rev(ctx)
}

func (c *readCounter) Apply(ctx context.Context, changes []naming.Change) (int, error) {
	n, err := c.Store.Apply(ctx, changes)
	c.writes.Add(int64(n))
	return n, err
}

func (c *readCounter) reset() {
	c.records.Store(0)
	c.changes.Store(0)
	c.revs.Store(0)
	c.writes.Store(0)
}

// TestStandaloneIdlePassReadsLedgerOnce: a standalone pass over a fleet
// that did not change reads the records once for all its services (each
// read scans the whole collection on the embedded store) and writes
// nothing; a pass that writes reads again only the services it wrote.
func TestStandaloneIdlePassReadsLedgerOnce(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.launch(3, "api")
	r.launch(2, "web")
	store := &readCounter{Store: r.store}
	syncer := r.syncer(store)
	sa := controllers.NewStandalone(controllers.StandaloneOptions{Syncer: syncer, Cloud: r.ec2, Store: store, Clock: r.clock})

	sum, err := sa.Pass(ctx)
	if err != nil {
		t.Fatalf("first pass: %v", err)
	}
	if sum.Changes != 5 {
		t.Fatalf("first pass applied %d changes, want 5 binds", sum.Changes)
	}
	// The initial read, then one re-read and one rev read per service written.
	if got := store.records.Load(); got != 3 {
		t.Errorf("naming pass: %d record reads, want 3 (1 + 1 per service written)", got)
	}
	rev := r.rev()

	for i := range 3 {
		store.reset()
		sum, err := sa.Pass(ctx)
		if err != nil {
			t.Fatalf("idle pass %d: %v", i, err)
		}
		if n := store.writes.Load(); n != 0 {
			t.Errorf("idle pass %d wrote %d records, want 0", i, n)
		}
		if n := store.records.Load() + store.changes.Load(); n != 1 {
			t.Errorf("idle pass %d read the records %d times, want 1", i, n)
		}
		if n := store.revs.Load(); n != 1 {
			t.Errorf("idle pass %d read the rev %d times, want 1", i, n)
		}
		for _, svc := range []string{"api", "web"} {
			p := sum.Passes[svc]
			if p.Rev != rev || len(p.Records) != map[string]int{"api": 3, "web": 2}[svc] {
				t.Errorf("idle pass %d, service %s: rev %d, %d records; want rev %d and its own records", i, svc, p.Rev, len(p.Records), rev)
			}
		}
	}
}
