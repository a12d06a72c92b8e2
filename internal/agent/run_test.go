package agent

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/feed/feedtest"
	"github.com/aerostat-io/aerostat/internal/ledger"
)

// pushSource is a LedgerSource whose change stream the test drives.
type pushSource struct {
	*LedgerSource
	streams chan chan struct{} // each Notify takes the next stream; none left: unsupported
}

func (p *pushSource) Notify(context.Context) (<-chan struct{}, error) {
	select {
	case ch := <-p.streams:
		return ch, nil
	default:
		return nil, ledger.ErrWatchUnsupported
	}
}

// running starts f.agent.Run and returns a channel that receives the
// result of every SyncOnce Run makes, and a stop function.
func (f *fixture) running(t *testing.T) (syncs <-chan error, stop func()) {
	t.Helper()
	ch := make(chan error, 100)
	f.agent.afterSync = func(err error) { ch <- err }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := f.agent.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	return ch, func() { cancel(); <-done }
}

func next(t *testing.T, syncs <-chan error) error {
	t.Helper()
	select {
	case err := <-syncs:
		return err
	case <-time.After(30 * time.Second): // a hang guard, not a timing assertion
		t.Fatal("no sync happened")
		return nil
	}
}

// waitIdle returns once Run is blocked waiting on the clock.
func (f *fixture) waitIdle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !f.clock.HasWaiters() {
		if time.Now().After(deadline) {
			t.Fatal("Run never waited on the clock")
		}
		time.Sleep(time.Millisecond)
	}
}

// A change stream wakes the agent without any clock tick; when the stream
// closes it polls at Interval again.
func TestAgentRunWokenByChangeStream(t *testing.T) {
	st := feedtest.New()
	st.Bind("web-0", "web", "i-0", "10.0.0.1")
	stream := make(chan struct{}, 1)
	var src *pushSource
	f := newFixture(t, func(fc *clocktesting.FakeClock) Source {
		src = &pushSource{LedgerSource: ledgerSource(st)(fc).(*LedgerSource), streams: make(chan chan struct{}, 1)}
		src.streams <- stream
		return src
	}, Options{Interval: time.Second, ReassertEvery: time.Hour})
	syncs, stop := f.running(t)
	defer stop()
	if err := next(t, syncs); err != nil { // first sync
		t.Fatal(err)
	}
	if err := next(t, syncs); err != nil { // at once after the stream opened
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(f.agent.m.pushing); v != 1 {
		t.Errorf("change_stream gauge = %v, want 1", v)
	}
	f.waitIdle(t)
	st.Bind("web-1", "web", "i-1", "10.0.0.2")
	stream <- struct{}{}
	if err := next(t, syncs); err != nil {
		t.Fatal(err)
	}
	if got := f.block(t); got != "10.0.0.1 web-0,10.0.0.2 web-1" {
		t.Fatalf("block after a push = %s", got)
	}
	// Polling the rev counter every Interval would not happen while pushed:
	// only the clock's safety-net timer (ReassertEvery) is pending.
	f.waitIdle(t)
	f.clock.Step(2 * time.Second)
	select {
	case err := <-syncs:
		t.Fatalf("agent polled on the clock while the stream was up (%v)", err)
	default:
	}

	close(stream) // stream lost: back to polling every Interval
	f.waitIdle(t)
	st.Bind("web-2", "web", "i-2", "10.0.0.3")
	f.clock.Step(2 * time.Second)
	if err := next(t, syncs); err != nil {
		t.Fatal(err)
	}
	if got := f.block(t); !strings.Contains(got, "10.0.0.3 web-2") {
		t.Fatalf("block after falling back to polling = %s", got)
	}
	if v := testutil.ToFloat64(f.agent.m.pushing); v != 0 {
		t.Errorf("change_stream gauge = %v after the stream closed", v)
	}
}

// Without change streams (the embedded FerretDB) the agent polls the rev
// counter at Interval and reads only what changed.
func TestAgentPollsWithoutChangeStream(t *testing.T) {
	st := feedtest.New()
	st.Bind("web-0", "web", "i-0", "10.0.0.1")
	f := newFixture(t, ledgerSource(st), Options{Interval: time.Second, ReassertEvery: time.Hour})
	if _, ok := f.agent.opts.Source.(Notifier); !ok {
		t.Fatal("LedgerSource is not a Notifier")
	}
	syncs, stop := f.running(t)
	defer stop()
	if err := next(t, syncs); err != nil {
		t.Fatal(err)
	}
	for range 3 { // settle the follower (follow-up read after Overlap)
		f.waitIdle(t)
		f.clock.Step(2 * time.Second)
		if err := next(t, syncs); err != nil {
			t.Fatal(err)
		}
	}
	fullReads := st.Calls("Records")
	st.Bind("web-1", "web", "i-1", "10.0.0.2")
	f.waitIdle(t)
	f.clock.Step(2 * time.Second)
	if err := next(t, syncs); err != nil {
		t.Fatal(err)
	}
	if got := f.block(t); got != "10.0.0.1 web-0,10.0.0.2 web-1" {
		t.Fatalf("block = %s", got)
	}
	if n := st.Calls("Records"); n != fullReads {
		t.Errorf("a change was read with %d full reads; want a delta (Changes) only", n-fullReads)
	}
	if st.Calls("Changes") == 0 {
		t.Error("no delta read")
	}
}

// One-shot update: a failing legacy updater is an error and the file is
// not touched at all (1.x only replaced the file when the updater worked).
func TestAgentLegacyRequired(t *testing.T) {
	st := feedtest.New()
	st.Bind("web-0", "web", "i-0", "10.0.0.1")
	f := newFixture(t, ledgerSource(st), Options{LegacyRequired: true, Legacy: func(context.Context) ([]byte, error) {
		return nil, errors.New("legacy updater /x: timed out after 1s")
	}})
	err := f.sync(t)
	if err == nil || !strings.Contains(err.Error(), "timed out") || !strings.Contains(err.Error(), "unchanged") {
		t.Fatalf("sync = %v, want the updater's error", err)
	}
	if b, _ := os.ReadFile(f.path); string(b) != userLines {
		t.Errorf("file written although the legacy updater failed: %q", b)
	}
	if v := testutil.ToFloat64(f.agent.m.errors.WithLabelValues("legacy")); v != 1 {
		t.Errorf("errors_total{kind=legacy} = %v", v)
	}
}

func TestAgentHealthz(t *testing.T) {
	st := feedtest.New()
	st.SetDown(true)
	f := newFixture(t, ledgerSource(st), Options{})
	_ = f.sync(t)
	rec := httptest.NewRecorder()
	f.agent.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("/healthz while the source is down = %d; liveness must not depend on the store", rec.Code)
	}
	if code, body := f.readyz(t); code != http.StatusServiceUnavailable || !strings.Contains(body, "memstore: down") {
		t.Errorf("/readyz = %d %q, want 503 naming the error", code, body)
	}
	rec = httptest.NewRecorder()
	f.agent.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{"aerostat_agent_degraded 1", "aerostat_agent_source_up 0", `aerostat_agent_errors_total{kind="source"} 1`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// A hand edit of the block is repaired at the next periodic re-check, and
// the user's own edits outside the block stay.
func TestAgentRepairsHandEdits(t *testing.T) {
	st := feedtest.New()
	st.Bind("web-0", "web", "i-0", "10.0.0.1")
	st.Bind("web-1", "web", "i-1", "10.0.0.2")
	f := newFixture(t, ledgerSource(st), Options{ReassertEvery: time.Minute})
	if err := f.sync(t); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(f.path)
	edited := strings.Replace(string(good), "10.0.0.2 web-1\n", "10.6.6.6 web-1\n", 1) + "10.1.1.1 mine\n"
	if err := os.WriteFile(f.path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.sync(t); err != nil { // not due yet
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(f.path); string(b) != edited {
		t.Fatalf("file rewritten before the re-check was due")
	}
	f.clock.Step(time.Minute)
	if err := f.sync(t); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(f.path); string(b) != string(good)+"10.1.1.1 mine\n" {
		t.Fatalf("after the re-check:\n%s", b)
	}
}
