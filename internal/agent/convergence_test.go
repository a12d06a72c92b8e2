package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/feed"
	"github.com/aerostat-io/aerostat/internal/hostsfile"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
)

type node struct {
	name  string
	dir   string
	agent *Agent
}

// Three agents follow one feed over the real ledger. One of them can no
// longer write its hosts file (it keeps asking, so it is live): the feed
// reports 2 of 3 hosts at the new rev and names it, with how far behind
// and since when. A node that stops asking drops out after the TTL.
func TestConvergenceThreeAgentsOneStalled(t *testing.T) {
	ctx := context.Background()
	store := ledgertest.New(t)
	fc := clocktesting.NewFakeClock(t0)
	h := feed.NewHandler(store, feed.Options{Clock: fc, NodeTTL: 5 * time.Minute,
		Follower: ledger.FollowerOptions{Overlap: time.Second, ResyncEvery: time.Hour}})
	srv := httptest.NewServer(h)
	defer srv.Close()
	reg := prometheus.NewRegistry()
	if err := feed.RegisterMetrics(reg, h); err != nil {
		t.Fatal(err)
	}

	bind(t, store, "web-0", "i-0", "10.0.0.1")
	if err := h.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	var nodes []*node
	for _, name := range []string{"ip-10-0-1-1", "ip-10-0-1-2", "ip-10-0-1-3"} {
		dir := t.TempDir()
		c, err := feed.NewClient(srv.URL, srv.Client(), 0)
		if err != nil {
			t.Fatal(err)
		}
		c.SetNode(name)
		a, err := New(Options{Source: c, Writer: &hostsfile.Writer{Path: filepath.Join(dir, "hosts")}, Clock: fc, Metrics: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, &node{name: name, dir: dir, agent: a})
	}
	syncAll := func(wantErr map[string]bool) {
		t.Helper()
		for _, n := range nodes {
			// Twice: the second request carries what the first one applied.
			for range 2 {
				if err := n.agent.SyncOnce(ctx); (err != nil) != wantErr[n.name] {
					t.Fatalf("%s: sync err = %v, want error %v", n.name, err, wantErr[n.name])
				}
			}
		}
	}
	syncAll(nil)
	c := getNodes(t, srv.URL)
	if c.Total != 3 || c.AtRev != 3 || c.OldestAppliedAgeSeconds != 0 {
		t.Fatalf("before the change: %+v, want 3 of 3 current", c)
	}
	oldRev := c.Rev

	// node 3's hosts file becomes unwritable; then a name is bound.
	if err := os.RemoveAll(nodes[2].dir); err != nil {
		t.Fatal(err)
	}
	fc.Step(10 * time.Second)
	bind(t, store, "web-1", "i-1", "10.0.0.2")
	fc.Step(2 * time.Second) // past the follower's overlap
	if err := h.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	changedAt := fc.Now()
	fc.Step(45 * time.Second)
	syncAll(map[string]bool{"ip-10-0-1-3": true})

	c = getNodes(t, srv.URL)
	if got, want := c.Summary(), "2 of 3 hosts at rev 2"; got != want || c.Rev != oldRev+1 {
		t.Errorf("summary = %q (rev %d), want %q", got, c.Rev, want)
	}
	lag := c.Laggards()
	if len(lag) != 1 || lag[0].Name != "ip-10-0-1-3" || lag[0].Rev != oldRev || lag[0].Behind != 1 {
		t.Fatalf("laggards = %+v, want ip-10-0-1-3 at rev %d, 1 behind", lag, oldRev)
	}
	if !lag[0].StaleSince.Equal(changedAt) || c.OldestAppliedAgeSeconds != 45 {
		t.Errorf("stale since %v (age %vs), want %v (45s)", lag[0].StaleSince, c.OldestAppliedAgeSeconds, changedAt)
	}
	if !lag[0].LastSeen.Equal(fc.Now()) {
		t.Errorf("laggard last seen %v, want now: it still asks", lag[0].LastSeen)
	}
	want := `
# HELP aerostat_hosts_at_rev Live hosts whose hosts file holds the feed's latest names.
# TYPE aerostat_hosts_at_rev gauge
aerostat_hosts_at_rev 2
# HELP aerostat_hosts_live Hosts whose agent asked the feed within the node TTL.
# TYPE aerostat_hosts_live gauge
aerostat_hosts_live 3
# HELP aerostat_oldest_applied_rev_age_seconds Seconds since the feed first served a change that some live host has not applied yet; 0 when every live host is current.
# TYPE aerostat_oldest_applied_rev_age_seconds gauge
aerostat_oldest_applied_rev_age_seconds 45
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if c.AtLeast(c.Rev) != 2 || c.AtLeast(oldRev) != 3 {
		t.Errorf("AtLeast(%d) = %d, AtLeast(%d) = %d; want 2 and 3", c.Rev, c.AtLeast(c.Rev), oldRev, c.AtLeast(oldRev))
	}

	// The node recovers: 3 of 3.
	if err := os.MkdirAll(nodes[2].dir, 0o755); err != nil {
		t.Fatal(err)
	}
	syncAll(nil)
	if c = getNodes(t, srv.URL); c.Summary() != "3 of 3 hosts at rev 2" {
		t.Errorf("after recovery: %s", c.Summary())
	}

	// Node 1 stops asking: it is gone after the TTL, not a laggard forever.
	fc.Step(4 * time.Minute)
	for _, n := range nodes[1:] {
		if err := n.agent.SyncOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	fc.Step(2 * time.Minute)
	if c = getNodes(t, srv.URL); c.Total != 2 || c.AtRev != 2 {
		t.Errorf("after node 1 went silent: %+v, want 2 of 2", c)
	}
}

func getNodes(t *testing.T, base string) feed.Convergence {
	t.Helper()
	resp, err := http.Get(base + feed.NodesPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", feed.NodesPath, resp.Status)
	}
	var c feed.Convergence
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// Two controller replicas serve the feed; agents spread over them. Through
// the node reports in the ledger each replica reports all three nodes and
// names the stalled one, whichever replica it talks to.
func TestConvergenceAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	store := ledgertest.New(t)
	fc := clocktesting.NewFakeClock(t0)
	newFeed := func(replica string) (*feed.Handler, *httptest.Server) {
		h := feed.NewHandler(store, feed.Options{Clock: fc, Share: store, Replica: replica,
			Follower: ledger.FollowerOptions{Overlap: time.Second, ResyncEvery: time.Hour}})
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return h, srv
	}
	ha, srvA := newFeed("controller-a")
	hb, srvB := newFeed("controller-b")
	bind(t, store, "web-0", "i-0", "10.0.0.1")
	syncFeeds := func() {
		t.Helper()
		for _, h := range []*feed.Handler{ha, hb} {
			if err := h.SyncOnce(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	syncFeeds()
	var agents []*Agent
	var dirs []string
	for i, base := range []string{srvA.URL, srvA.URL, srvB.URL} {
		dir := t.TempDir()
		c, err := feed.NewClient(base, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		c.SetNode(fmt.Sprintf("node-%d", i+1))
		a, err := New(Options{Source: c, Writer: &hostsfile.Writer{Path: filepath.Join(dir, "hosts")}, Clock: fc, Metrics: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		agents, dirs = append(agents, a), append(dirs, dir)
	}
	syncAgents := func() {
		for _, a := range agents {
			_ = a.SyncOnce(ctx)
			_ = a.SyncOnce(ctx)
		}
	}
	syncAgents()
	share := func() {
		t.Helper()
		for _, h := range []*feed.Handler{ha, hb, ha} {
			if err := h.ShareOnce(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	share()
	for name, h := range map[string]*feed.Handler{"a": ha, "b": hb} {
		if c := h.Convergence(); c.Total != 3 || c.AtRev != 3 {
			t.Fatalf("replica %s before the change: %s", name, c.Summary())
		}
	}

	if err := os.RemoveAll(dirs[2]); err != nil { // node-3, on replica b, stalls
		t.Fatal(err)
	}
	bind(t, store, "web-1", "i-1", "10.0.0.2")
	fc.Step(2 * time.Second)
	syncFeeds()
	fc.Step(10 * time.Second)
	syncAgents()
	share()
	for name, h := range map[string]*feed.Handler{"a": ha, "b": hb} {
		c := h.Convergence()
		lag := c.Laggards()
		if c.Total != 3 || c.AtRev != 2 || len(lag) != 1 || lag[0].Name != "node-3" || lag[0].Behind != 1 {
			t.Errorf("replica %s: %s, laggards %+v; want 2 of 3, node-3 one behind", name, c.Summary(), lag)
		}
	}
}
