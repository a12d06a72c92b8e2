package feed

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aerostat-io/aerostat/internal/fakeclock"
	"github.com/aerostat-io/aerostat/internal/feed/feedtest"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// TestHandlerSharedSource: a feed following the controller's Cache
// (Options.Source) serves what a feed with its own follower serves, while
// the controller's plans poll the same copy between the feed's syncs.
func TestHandlerSharedSource(t *testing.T) {
	ctx := context.Background()
	st := feedtest.New()
	st.Bind("web-0", "web", "i-0", "10.0.0.1", "www")
	st.Bind("web-1", "web", "i-1", "10.0.0.2")
	st.Put(naming.Record{Hostname: "web-2", Service: "web"})
	fc := fakeclock.New(t0)
	cache := ledger.NewCache(st, ledger.FollowerOptions{Clock: fc})
	plan := func() {
		t.Helper()
		if _, err := cache.Records(ctx, "web"); err != nil {
			t.Fatal(err)
		}
	}
	plan()
	own := NewHandler(st, Options{Clock: fc})
	shared := NewHandler(st, Options{Clock: fc, Source: cache.Feed()})
	ownSrv, sharedSrv := httptest.NewServer(own), httptest.NewServer(shared)
	t.Cleanup(ownSrv.Close)
	t.Cleanup(sharedSrv.Close)
	same := func(step string) {
		t.Helper()
		for _, h := range []*Handler{own, shared} {
			if err := h.SyncOnce(ctx); err != nil {
				t.Fatal(err)
			}
		}
		_, a := get(t, ownSrv.URL+Path)
		_, b := get(t, sharedSrv.URL+Path)
		if names(a.Entries) != names(b.Entries) || a.StoreRev != b.StoreRev {
			t.Fatalf("%s: own follower serves %s (store rev %d), shared %s (%d)", step, names(a.Entries), a.StoreRev, names(b.Entries), b.StoreRev)
		}
		for i := range a.Entries {
			if a.Entries[i].IP != b.Entries[i].IP {
				t.Errorf("%s: %s at %s, shared %s", step, a.Entries[i].Hostname, a.Entries[i].IP, b.Entries[i].IP)
			}
		}
	}
	same("first sync")

	st.Release("web-1")
	st.Bind("web-3", "web", "i-3", "10.0.0.4")
	fc.Step(time.Second)
	plan() // the controller reads the change before the feed does
	same("after a release and a bind")

	st.Bind("web-1", "web", "i-5", "10.0.0.6")
	fc.Step(time.Second)
	same("after a rebind")
	if _, b := get(t, sharedSrv.URL+Path); names(b.Entries) != "web-0,web-1,web-2(released),web-3" {
		t.Errorf("shared feed serves %s", names(b.Entries))
	}
}
