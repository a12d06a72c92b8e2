package feed

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aerostat-io/aerostat/internal/fakeclock"
	"github.com/aerostat-io/aerostat/internal/feed/feedtest"
)

// TestFullResponseCarriesReleases: a client that only ever gets full
// responses (an agent back after the controller restarted, or restarted
// itself) still learns which names were released, so its shrink guard can
// tell a release from a listing that lost documents.
func TestFullResponseCarriesReleases(t *testing.T) {
	ctx := context.Background()
	st := feedtest.New()
	for _, h := range []string{"web-0", "web-1", "web-2", "web-3"} {
		st.Bind(h, "web", "i-"+h, "10.0.0.1")
	}
	h, _, srv := newFeed(t, st, Options{})
	if err := h.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	away, err := NewClient(srv.URL, srv.Client(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := away.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	// While the agent is away, three of four names are freed and the
	// controller restarts: its new feed has a new epoch, so the agent's
	// next answer is a full one.
	for _, n := range []string{"web-1", "web-2", "web-3"} {
		st.Release(n)
	}
	h2 := NewHandler(st, Options{Clock: fakeclock.New(t0.Add(time.Hour))})
	srv2 := httptest.NewServer(h2)
	t.Cleanup(srv2.Close)
	if err := h2.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	// The same client, now talking to the new replica (same Service
	// address in a cluster).
	away.base, away.http = srv2.URL, srv2.Client()
	restarted, err := NewClient(srv2.URL, srv2.Client(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*Client{"returning agent": away, "restarted agent": restarted} {
		if _, err := c.Poll(ctx); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := hostnames(c.Records(), true); got != "web-0" {
			t.Errorf("%s: records %s, want web-0", name, got)
		}
		for _, n := range []string{"web-1", "web-2", "web-3"} {
			if !c.Released(n) {
				t.Errorf("%s: %s not known as released after a full response", name, n)
			}
		}
		if c.Released("web-0") {
			t.Errorf("%s: bound web-0 reported released", name)
		}
	}
}
