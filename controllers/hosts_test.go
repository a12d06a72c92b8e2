package controllers_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	v1alpha1 "github.com/aerostat-io/aerostat/api/v1alpha1"
	"github.com/aerostat-io/aerostat/internal/feed"
	"github.com/aerostat-io/aerostat/internal/ledger"
)

// Three agents follow the controller's feed; one stops writing its hosts
// file. The NamingService status says 2 of 3 hosts hold the service's
// latest change and names the laggard.
func TestStatusHostsConvergence(t *testing.T) {
	_, c := envtestClient(t)
	r := newRig(t)
	ctx := context.Background()
	const svc = "conv"
	r.launch(2, svc)
	createService(t, c, v1alpha1.NamingServiceSpec{Service: svc})
	h := feed.NewHandler(r.store, feed.Options{Clock: r.clock, Follower: ledger.FollowerOptions{Overlap: time.Second, ResyncEvery: time.Hour}})
	srv := httptest.NewServer(h)
	defer srv.Close()
	rc := r.reconciler(c, r.store)
	rc.Hosts = h

	rc.pass(t, svc)
	if err := h.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	var agents []*feed.Client
	for _, name := range []string{"node-a", "node-b", "node-c"} {
		fc, err := feed.NewClient(srv.URL, srv.Client(), 0)
		if err != nil {
			t.Fatal(err)
		}
		fc.SetNode(name)
		agents = append(agents, fc)
	}
	follow := func(stalled string) {
		t.Helper()
		for i, a := range agents {
			if _, err := a.Poll(ctx); err != nil {
				t.Fatal(err)
			}
			if []string{"node-a", "node-b", "node-c"}[i] != stalled {
				a.MarkApplied()
			}
			if _, err := a.Poll(ctx); err != nil { // says what it applied
				t.Fatal(err)
			}
		}
	}
	follow("")
	rc.pass(t, svc)
	hs := getService(t, c, svc).Status.Hosts
	if hs == nil || hs.Total != 3 || hs.AtRev != 3 || len(hs.Laggards) != 0 {
		t.Fatalf("status.hosts = %+v, want 3 of 3", hs)
	}
	before := hs.Rev

	r.launch(1, svc)
	r.clock.Step(2 * time.Second) // past the feed's overlap window
	rc.pass(t, svc)
	if err := h.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	follow("node-c")
	r.clock.Step(30 * time.Second)
	rc.pass(t, svc)
	hs = getService(t, c, svc).Status.Hosts
	if hs == nil || hs.Rev <= before || hs.Total != 3 || hs.AtRev != 2 {
		t.Fatalf("status.hosts = %+v, want 2 of 3 at a rev after %d", hs, before)
	}
	if len(hs.Laggards) != 1 || hs.Laggards[0].Name != "node-c" || hs.Laggards[0].Rev != before || hs.Laggards[0].Behind != hs.Rev-before ||
		hs.Laggards[0].StaleSince == nil {
		t.Errorf("laggards = %+v, want node-c at rev %d", hs.Laggards, before)
	}
}
