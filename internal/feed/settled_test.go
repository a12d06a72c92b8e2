package feed

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/feed/feedtest"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// settledSources are the two ways a feed follows the ledger: a follower
// of its own, or the controller's Cache, whose plans poll the shared copy
// between the feed's syncs (plan; a no-op for the feed's own follower).
var settledSources = map[string]func(t *testing.T, st *feedtest.MemStore, fo ledger.FollowerOptions) (Options, func()){
	"own follower": func(_ *testing.T, _ *feedtest.MemStore, fo ledger.FollowerOptions) (Options, func()) {
		return Options{Follower: fo}, func() {}
	},
	"controller's cache": func(t *testing.T, st *feedtest.MemStore, fo ledger.FollowerOptions) (Options, func()) {
		cache := ledger.NewCache(st, fo)
		return Options{Source: cache.Feed()}, func() {
			t.Helper()
			if _, err := cache.Records(context.Background(), ""); err != nil {
				t.Fatal(err)
			}
		}
	},
}

// settledFeed is a handler over st with one client, node-a.
type settledFeed struct {
	h    *Handler
	c    *Client
	plan func()
}

func newSettledFeed(t *testing.T, st *feedtest.MemStore, fc *clocktesting.FakeClock, overlap time.Duration,
	source func(*testing.T, *feedtest.MemStore, ledger.FollowerOptions) (Options, func())) *settledFeed {
	t.Helper()
	opts, plan := source(t, st, ledger.FollowerOptions{Clock: fc, Overlap: overlap, ResyncEvery: 24 * time.Hour})
	opts.Clock = fc
	h := NewHandler(st, opts)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.URL, srv.Client(), 0)
	if err != nil {
		t.Fatal(err)
	}
	c.SetNode("node-a")
	return &settledFeed{h: h, c: c, plan: plan}
}

func (f *settledFeed) sync(t *testing.T) {
	t.Helper()
	if err := f.h.SyncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// apply fetches the feed, applies it and says so on a second request.
func (f *settledFeed) apply(t *testing.T) {
	t.Helper()
	for range 2 {
		if _, err := f.c.Poll(context.Background()); err != nil {
			t.Fatal(err)
		}
		f.c.MarkApplied()
	}
}

func (f *settledFeed) nodeRev(t *testing.T) int64 {
	t.Helper()
	conv := f.h.Convergence()
	if len(conv.Nodes) != 1 {
		t.Fatalf("nodes = %+v, want node-a", conv.Nodes)
	}
	return conv.Nodes[0].Rev
}

// A writer takes rev 2 and stalls before committing while another commits
// rev 3. The feed serves rev 3's name; an agent that writes it must not be
// reported at rev 3, since its file lacks rev 2's name (the demo's
// TestLive saw all agents "at rev 15" with record 15 still missing). It is
// at the settled rev 1 until rev 2 commits and the feed re-reads it, also
// when the controller's plans read the late commit first.
func TestNodeRevIsSettledRev(t *testing.T) {
	for name, source := range settledSources {
		t.Run(name, func(t *testing.T) {
			fc := clocktesting.NewFakeClock(t0)
			st := feedtest.New()
			st.Bind("web-0", "web", "i-0", "10.0.0.1") // rev 1
			// An overlap far longer than the test: only the store's settled
			// rev can move the node's rev.
			f := newSettledFeed(t, st, fc, time.Hour, source)
			f.plan()
			f.sync(t)
			f.apply(t)
			if got := f.nodeRev(t); got != 1 {
				t.Fatalf("node rev = %d, want 1", got)
			}

			held := st.TakeRev()                       // rev 2: in flight
			st.Bind("web-1", "web", "i-1", "10.0.0.2") // rev 3: committed
			f.plan()
			f.sync(t)
			f.apply(t)
			if len(f.c.Records()) != 2 {
				t.Fatalf("client records = %+v, want web-0 and web-1", f.c.Records())
			}
			if got := f.nodeRev(t); got != 1 {
				t.Fatalf("node rev = %d with rev %d in flight, want the settled rev 1", got, held)
			}

			st.Commit(naming.Record{Hostname: "web-2", Service: "web", InstanceID: "i-2", IP: "10.0.0.3"}, held)
			fc.Step(time.Second) // the follower's first re-read of an unchanged window
			f.plan()
			f.sync(t)
			if got := f.nodeRev(t); got != 1 {
				t.Fatalf("node rev = %d before it applied web-2, want 1", got)
			}
			f.apply(t)
			if got := f.nodeRev(t); got != 3 {
				t.Fatalf("node rev = %d after it applied web-2, want 3", got)
			}
			if len(f.c.Records()) != 3 {
				t.Errorf("client records = %+v, want web-0, web-1 and web-2", f.c.Records())
			}
		})
	}
}

// A rev taken and never committed (a writer that lost its compare-and-set
// or died) holds the settled rev until the follower's overlap has passed;
// then the nodes that applied the feed's names are at the counter, with no
// new feed rev.
func TestAbandonedRevSettlesAfterOverlap(t *testing.T) {
	for name, source := range settledSources {
		t.Run(name, func(t *testing.T) {
			fc := clocktesting.NewFakeClock(t0)
			st := feedtest.New()
			st.Bind("web-0", "web", "i-0", "10.0.0.1") // rev 1
			const overlap = 10 * time.Second
			f := newSettledFeed(t, st, fc, overlap, source)
			st.TakeRev()                               // rev 2: never commits
			st.Bind("web-1", "web", "i-1", "10.0.0.2") // rev 3
			f.sync(t)
			f.apply(t)
			conv := f.h.Convergence()
			if len(conv.Nodes) != 1 || conv.Nodes[0].Rev != 1 || conv.Rev != 1 {
				t.Fatalf("convergence = %+v, want node-a and the feed at the settled rev 1", conv)
			}
			seq := f.c.Rev()
			fc.Step(overlap + time.Second)
			f.plan()
			f.sync(t)
			conv = f.h.Convergence()
			if conv.Nodes[0].Rev != 3 || !conv.Nodes[0].Current() || conv.Rev != 3 {
				t.Fatalf("convergence = %+v, want node-a current at rev 3", conv)
			}
			if _, err := f.c.Poll(context.Background()); err != nil || f.c.Rev() != seq {
				t.Errorf("feed rev %d -> %d (%v), want no new feed rev", seq, f.c.Rev(), err)
			}
		})
	}
}
