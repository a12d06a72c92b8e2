package reliability

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/agent"
	"github.com/aerostat-io/aerostat/internal/feed"
	"github.com/aerostat-io/aerostat/internal/hostsfile"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
)

const userHead = "127.0.0.1 localhost\n::1 localhost ip6-localhost\n# my own line\n10.9.9.9 printer\n"

// proxied returns the test store's URI rewritten to go through a new
// fault proxy, with timeouts short enough that a fault surfaces at once.
func proxied(t *testing.T) (*Proxy, string) {
	t.Helper()
	u, err := url.Parse(ledgertest.URI(t))
	if err != nil || u.Scheme != "mongodb" || strings.Contains(u.Host, ",") {
		t.Skipf("store URI %s cannot be proxied (one mongodb:// host needed)", ledgertest.URI(t))
	}
	p, err := NewProxy(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	u.Host = p.Addr()
	q := u.Query()
	q.Set("serverSelectionTimeoutMS", "500")
	q.Set("connectTimeoutMS", "500")
	q.Set("directConnection", "true")
	u.RawQuery = q.Encode()
	return p, u.String()
}

// nodeAgent is one node: an agent writing its own hosts file.
type nodeAgent struct {
	name  string
	agent *agent.Agent
	clock *clocktesting.FakeClock
	path  string
}

func newNodeAgent(t *testing.T, name string, src func(*clocktesting.FakeClock) agent.Source) *nodeAgent {
	t.Helper()
	fc := clocktesting.NewFakeClock(epoch)
	path := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(path, []byte(userHead), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Options{Source: src(fc), Writer: &hostsfile.Writer{Path: path}, Clock: fc, Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return &nodeAgent{name: name, agent: a, clock: fc, path: path}
}

func (n *nodeAgent) sync() error {
	n.clock.Step(2 * time.Second)
	// No deadline here, as in production: the ledger's own per-operation
	// timeout (ledger.Options.Timeout) is what bounds a sync.
	return n.agent.SyncOnce(context.Background())
}

func (n *nodeAgent) file(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(n.path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestStoreFaults: the controller and the agents reach the store through
// fault proxies. The store goes down before a pass, goes down after the
// second write of a pass, loses the reply of a write (executed, not
// acknowledged), slows down past the callers' deadlines, and loses the
// reply of an agent's delta read. Throughout, every agent's file keeps the
// user's lines, parses, lists no name twice and no address under two
// names; a failed sync leaves it byte for byte as it was; and after the
// store recovers the controller converges and every agent's block is the
// ledger's.
func TestStoreFaults(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	ctlProxy, ctlURI := proxied(t)
	agtProxy, agtURI := proxied(t)
	ctl, err := ledger.Open(ctx, ctlURI, ledger.Options{Database: w.db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctl.Close(ctx) })
	ro, err := ledger.Open(ctx, agtURI, ledger.Options{Database: w.db, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ro.Close(ctx) })

	followOpts := func(fc *clocktesting.FakeClock) ledger.FollowerOptions {
		return ledger.FollowerOptions{Clock: fc, Overlap: 3 * time.Second, ResyncEvery: time.Minute}
	}
	var nodes []*nodeAgent
	for i := range 3 {
		ro := ro
		if i == 2 {
			// A node with its own connection pool.
			var err error
			if ro, err = ledger.Open(ctx, agtURI, ledger.Options{Database: w.db, ReadOnly: true}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ro.Close(ctx) })
		}
		nodes = append(nodes, newNodeAgent(t, fmt.Sprintf("ledger-%d", i), func(fc *clocktesting.FakeClock) agent.Source {
			return agent.NewLedgerSource(ro, followOpts(fc))
		}))
	}
	// A node following the controller's HTTP feed, itself reading the
	// store through the agents' proxy.
	feedClock := clocktesting.NewFakeClock(epoch)
	h := feed.NewHandler(ro, feed.Options{Clock: feedClock, Follower: followOpts(feedClock)})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	feedSync := func() error {
		feedClock.Step(2 * time.Second)
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return h.SyncOnce(c)
	}
	nodes = append(nodes, newNodeAgent(t, "feed", func(*clocktesting.FakeClock) agent.Source {
		c, err := feed.NewClient(srv.URL, srv.Client(), 0)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}))

	sa := w.standalone(ctl)
	pass := func(timeout time.Duration, store ledger.Store) error {
		c, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if store == nil {
			_, err := sa.Pass(c)
			return err
		}
		_, err := w.standalone(store).Pass(c)
		return err
	}
	check := func(phase string) {
		t.Helper()
		for _, n := range nodes {
			for _, v := range CheckHostsFile(n.path, userHead, nil) {
				t.Errorf("%s: node %s: %s", phase, n.name, v)
			}
			lines, _ := BlockOf(n.path)
			byIP := map[string]string{}
			for _, l := range lines {
				ip, host, _ := strings.Cut(l, " ")
				if other, dup := byIP[ip]; dup {
					t.Errorf("%s: node %s: %s listed as %s and %s", phase, n.name, ip, other, host)
				}
				byIP[ip] = host
			}
		}
	}
	// converge: the store is healthy; after a pass and a few syncs (past
	// the followers' overlap) every agent holds the ledger's names.
	converge := func(phase string) {
		t.Helper()
		if err := pass(10*time.Second, nil); err != nil {
			t.Fatalf("%s: pass after recovery: %v", phase, err)
		}
		want := Want(w.records())
		for range 4 {
			if err := feedSync(); err != nil {
				t.Fatalf("%s: feed after recovery: %v", phase, err)
			}
			for _, n := range nodes {
				if err := n.sync(); err != nil {
					t.Fatalf("%s: node %s after recovery: %v", phase, n.name, err)
				}
			}
		}
		for _, n := range nodes {
			got, err := BlockOf(n.path)
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("%s: node %s did not converge:\n got %v (%v)\nwant %v", phase, n.name, got, err, want)
			}
		}
		w.checkRaw()
		w.checkSettled()
		check(phase)
	}
	// faulty: agents sync during a fault; a failed sync must leave the
	// file exactly as it was.
	faulty := func(phase string, wantErr bool) {
		t.Helper()
		_ = feedSync() // may fail: the feed keeps serving its last good state
		failed := 0
		for _, n := range nodes {
			before := n.file(t)
			if err := n.sync(); err != nil {
				failed++
				if after := n.file(t); after != before {
					t.Errorf("%s: node %s changed its file on a failed sync: %v", phase, n.name, err)
				}
			}
		}
		if wantErr && failed < len(nodes)-1 { // the feed node reads no store
			t.Errorf("%s: only %d of %d ledger agents saw the fault", phase, failed, len(nodes)-1)
		}
		check(phase)
	}

	w.launch(10, "web", "")
	w.launch(4, "db", "masterful")
	converge("start")
	churn := func() {
		ids := slices.Collect(func(yield func(string) bool) {
			for id, svc := range func() map[string]string { l, _ := w.live(); return l }() {
				if svc == "web" && !yield(id) {
					return
				}
			}
		})
		slices.Sort(ids)
		if err := w.fleet.Terminate(ids[:2]...); err != nil {
			t.Fatal(err)
		}
		w.launch(3, "web", "")
		w.launch(1, "db", "masterful")
	}

	t.Run("store down before a pass", func(t *testing.T) {
		churn()
		ctlProxy.SetDown(true)
		agtProxy.SetDown(true)
		if err := pass(5*time.Second, nil); err == nil {
			t.Error("pass with the store down returned no error")
		}
		faulty("down", true)
		ctlProxy.SetDown(false)
		agtProxy.SetDown(false)
		converge("after down")
	})
	t.Run("store down after two writes", func(t *testing.T) {
		churn()
		stop := &StopAfter{Store: ctl, K: 2, Stop: func() { ctlProxy.SetDown(true); agtProxy.SetDown(true) }}
		if err := pass(5*time.Second, stop); err == nil {
			t.Error("pass cut off after two writes returned no error")
		}
		w.checkRaw()
		faulty("down mid-pass", true)
		ctlProxy.SetDown(false)
		agtProxy.SetDown(false)
		converge("after down mid-pass")
	})
	t.Run("reply of a write lost", func(t *testing.T) {
		churn()
		lose := &StopAfter{Store: ctl, K: 1, Stop: func() { ctlProxy.DropReplyAfter(1, 1) }, KeepGoing: true}
		injected := ctlProxy.Injected()
		// The reply after the next (the next takes a rev) is the write's.
		err := pass(5*time.Second, lose)
		t.Logf("pass with a lost reply: %v", err)
		if ctlProxy.Injected() == injected {
			t.Fatal("no reply was lost: the fault never fired")
		}
		w.checkRaw()
		faulty("lost reply", false)
		converge("after lost reply")
	})
	t.Run("slow store", func(t *testing.T) {
		churn()
		ctlProxy.SetLatency(400 * time.Millisecond)
		agtProxy.SetLatency(400 * time.Millisecond)
		if err := pass(time.Second, nil); err == nil {
			t.Error("pass against a store slower than its deadline returned no error")
		}
		for _, n := range nodes[:len(nodes)-1] {
			before := n.file(t)
			n.clock.Step(2 * time.Second)
			c, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			if err := n.agent.SyncOnce(c); err != nil && n.file(t) != before {
				t.Errorf("node %s changed its file on a timed-out sync", n.name)
			}
			cancel()
		}
		check("slow")
		ctlProxy.SetLatency(0)
		agtProxy.SetLatency(0)
		converge("after slow")
	})
	t.Run("reply of a delta read lost", func(t *testing.T) {
		churn()
		if err := pass(10*time.Second, nil); err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes[:len(nodes)-1] {
			before, injected := n.file(t), agtProxy.Injected()
			agtProxy.DropReplies(1)
			if err := n.sync(); err != nil && n.file(t) != before {
				t.Errorf("node %s changed its file on a failed delta read", n.name)
			}
			if agtProxy.Injected() == injected {
				t.Errorf("node %s: no reply was lost: the fault never fired", n.name)
			}
		}
		agtProxy.DropReplies(0)
		check("lost delta")
		converge("after lost delta")
	})
	t.Logf("faults injected: controller proxy %d, agent proxy %d", ctlProxy.Injected(), agtProxy.Injected())
}
