package ledger_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
)

// TestReleaseWindowCompareAndSet: two controllers that read the same
// window cannot both reserve: the second write is a conflict and leaves
// the first one's entries in place.
func TestReleaseWindowCompareAndSet(t *testing.T) {
	ctx := context.Background()
	m := ledgertest.New(t)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	empty, err := m.ReleaseWindow(ctx, "web")
	if err != nil || empty.Version != 0 || len(empty.Entries) != 0 || empty.Service != "web" {
		t.Fatalf("window of a new service = %+v, %v; want empty, version 0", empty, err)
	}
	a, b := empty, empty
	a.Entries = []ledger.ReleaseEntry{{At: t0, Count: 3}}
	b.Entries = []ledger.ReleaseEntry{{At: t0, Count: 7}}
	if err := m.PutReleaseWindow(ctx, a); err != nil {
		t.Fatalf("first creation: %v", err)
	}
	if err := m.PutReleaseWindow(ctx, b); !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("racing creation = %v, want a conflict", err)
	}
	got, err := m.ReleaseWindow(ctx, "web")
	if err != nil || got.Version != 1 || len(got.Entries) != 1 || got.Entries[0].Count != 3 || !got.Entries[0].At.Equal(t0) {
		t.Fatalf("window = %+v, %v; want version 1 with the first writer's 3 releases", got, err)
	}

	c, d := got, got
	c.Entries = append(c.Entries, ledger.ReleaseEntry{At: t0.Add(time.Minute), Count: 1})
	d.Entries = nil
	if err := m.PutReleaseWindow(ctx, c); err != nil {
		t.Fatalf("update at version 1: %v", err)
	}
	if err := m.PutReleaseWindow(ctx, d); !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("stale update = %v, want a conflict", err)
	}
	if got, err = m.ReleaseWindow(ctx, "web"); err != nil || got.Version != 2 || len(got.Entries) != 2 {
		t.Fatalf("window = %+v, %v; want version 2 with 2 entries", got, err)
	}
	if other, err := m.ReleaseWindow(ctx, "db"); err != nil || other.Version != 0 {
		t.Fatalf("another service's window = %+v, %v; want its own, empty", other, err)
	}
}
