package reliability

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/agent"
	"github.com/aerostat-io/aerostat/internal/ledger"
)

// TestStuckStore: the store accepts connections and requests but never
// answers (a half-open connection, a hung server). The callers' contexts
// carry no deadline, as in production: only the ledger's per-operation
// timeout can end the calls. The controller's pass and the agent's sync
// fail with a timeout, the agent's /readyz says 503 and its file is left
// as it was; once the store answers again the agent is ready again.
// Without ledger.Options.Timeout this test hangs until its guard fails it.
func TestStuckStore(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	proxy, uri := proxied(t)
	const bound = 500 * time.Millisecond
	ctl, err := ledger.Open(ctx, uri, ledger.Options{Database: w.db, Timeout: bound})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctl.Close(ctx) })
	ro, err := ledger.Open(ctx, uri, ledger.Options{Database: w.db, ReadOnly: true, Timeout: bound})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ro.Close(ctx) })
	w.launch(3, "web", "iterative")
	sa := w.standalone(ctl)
	n := newNodeAgent(t, "stuck", func(fc *clocktesting.FakeClock) agent.Source {
		return agent.NewLedgerSource(ro, ledger.FollowerOptions{Clock: fc, Overlap: 3 * time.Second, ResyncEvery: time.Minute})
	})
	if _, err := sa.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n.agent.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if code := readyz(n.agent); code != http.StatusOK {
		t.Fatalf("/readyz = %d before the fault", code)
	}
	before := n.file(t)

	proxy.SetStalled(true)
	w.launch(1, "web", "iterative") // a pass has something to write
	if err := bounded(t, "controller pass", func() error { _, err := sa.Pass(ctx); return err }); !isTimeout(err) {
		t.Errorf("controller pass against a stuck store = %v, want a timeout", err)
	}
	n.clock.Step(time.Minute) // a full resync is due too
	if err := bounded(t, "agent sync", func() error { return n.agent.SyncOnce(ctx) }); !isTimeout(err) {
		t.Errorf("agent sync against a stuck store = %v, want a timeout", err)
	}
	if code := readyz(n.agent); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d while the store is stuck, want 503", code)
	}
	if got := n.file(t); got != before {
		t.Errorf("hosts file changed while the store was stuck:\n%s", got)
	}
	if proxy.Injected() == 0 {
		t.Fatal("the proxy swallowed no request: the fault never fired")
	}

	proxy.SetStalled(false)
	if _, err := sa.Pass(ctx); err != nil {
		t.Fatalf("pass after the store recovered: %v", err)
	}
	if err := n.agent.SyncOnce(ctx); err != nil {
		t.Fatalf("agent sync after the store recovered: %v", err)
	}
	if code := readyz(n.agent); code != http.StatusOK {
		t.Errorf("/readyz = %d after the store recovered", code)
	}
}

// bounded runs f and returns its error; a call still blocked after a
// minute (the store's timeout is half a second) fails the test: a hang
// guard, not a timing assertion.
func bounded(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- f() }()
	select {
	case err := <-done:
		t.Logf("%s returned after %v: %v", what, time.Since(start).Round(time.Millisecond), err)
		return err
	case <-time.After(time.Minute):
		t.Fatalf("%s still blocked after a minute against a stuck store", what)
		return nil
	}
}

func isTimeout(err error) bool {
	return err != nil && (mongo.IsTimeout(err) || errors.Is(err, context.DeadlineExceeded))
}

func readyz(a *agent.Agent) int {
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	return rec.Code
}
