package ledger_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
)

// The embedded FerretDB has no change streams: Watch must say so with
// ErrWatchUnsupported (agents then poll the rev counter), not hang or
// return a channel that never fires.
func TestWatchUnsupportedOnEmbedded(t *testing.T) {
	if os.Getenv(ledgertest.EnvURI) != "" {
		t.Skip("runs against the embedded FerretDB only; " + ledgertest.EnvURI + " is set")
	}
	m := ledgertest.New(t)
	ch, err := m.Watch(context.Background())
	if !errors.Is(err, ledger.ErrWatchUnsupported) {
		t.Fatalf("Watch on FerretDB = %v, %v; want ErrWatchUnsupported", ch, err)
	}
}

// On a MongoDB replica set every write wakes a watcher; the channel closes
// when the context ends.
func TestWatchWakesOnWrite(t *testing.T) {
	m := ledgertest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := m.Watch(ctx)
	if errors.Is(err, ledger.ErrWatchUnsupported) {
		t.Skipf("the test store has no change streams (set %s to a replica set to run this): %v", ledgertest.EnvURI, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, m, bind("web-0", 0, "i-0", "10.0.0.1"))
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatal("stream closed instead of reporting the write")
		}
	case <-time.After(30 * time.Second): // hang guard
		t.Fatal("no event for a committed write")
	}
	cancel()
	for range ch { // drains, then sees the close
	}
}
