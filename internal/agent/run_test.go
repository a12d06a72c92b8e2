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

// run is an Agent.Run under test: every SyncOnce result in order, and
// every timer Run arms before it blocks.
type run struct {
	syncs <-chan error
	armed <-chan armedWait
}

type armedWait struct {
	wait   time.Duration
	pushed bool
}

// running starts f.agent.Run and returns what it does and a stop function.
func (f *fixture) running(t *testing.T) (r run, stop func()) {
	t.Helper()
	syncs := make(chan error, 100)
	armed := make(chan armedWait, 100)
	f.agent.afterSync = func(err error) { syncs <- err }
	f.agent.armed = func(d time.Duration, pushed bool) { armed <- armedWait{d, pushed} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := f.agent.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	return run{syncs, armed}, func() { cancel(); <-done }
}

// next returns the result of Run's next SyncOnce.
func (r run) next(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.syncs:
		return err
	case <-time.After(30 * time.Second): // a hang guard, not a timing assertion
		t.Fatal("no sync happened")
		return nil
	}
}

// idle returns once Run has armed the timer it will wait on next (so a
// clock step from now on reaches that timer) and what that timer is.
func (r run) idle(t *testing.T) armedWait {
	t.Helper()
	select {
	case a := <-r.armed:
		return a
	case <-time.After(30 * time.Second): // a hang guard
		t.Fatal("Run never waited on the clock")
		return armedWait{}
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
	r, stop := f.running(t)
	defer stop()
	if err := r.next(t); err != nil { // first sync
		t.Fatal(err)
	}
	if err := r.next(t); err != nil { // at once after the stream opened
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(f.agent.m.pushing); v != 1 {
		t.Errorf("change_stream gauge = %v, want 1", v)
	}
	// While pushed, the agent does not poll the rev counter every Interval:
	// its only timer is the safety net (ReassertEvery, ±20% jitter).
	if a := r.idle(t); !a.pushed || a.wait < 48*time.Minute {
		t.Fatalf("while the stream is up Run waits %v (pushed %v), want the ReassertEvery safety net", a.wait, a.pushed)
	}
	st.Bind("web-1", "web", "i-1", "10.0.0.2")
	stream <- struct{}{}
	if err := r.next(t); err != nil {
		t.Fatal(err)
	}
	if got := f.block(t); got != "10.0.0.1 web-0,10.0.0.2 web-1" {
		t.Fatalf("block after a push = %s", got)
	}
	if a := r.idle(t); !a.pushed || a.wait < 48*time.Minute {
		t.Fatalf("after a push Run waits %v (pushed %v), want the ReassertEvery safety net", a.wait, a.pushed)
	}

	close(stream) // stream lost: sync once, then back to polling every Interval
	if err := r.next(t); err != nil {
		t.Fatal(err)
	}
	if a := r.idle(t); a.pushed || a.wait > 1200*time.Millisecond {
		t.Fatalf("after the stream closed Run waits %v (pushed %v), want Interval", a.wait, a.pushed)
	}
	st.Bind("web-2", "web", "i-2", "10.0.0.3")
	f.clock.Step(2 * time.Second)
	if err := r.next(t); err != nil {
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
	r, stop := f.running(t)
	defer stop()
	if err := r.next(t); err != nil {
		t.Fatal(err)
	}
	for range 3 { // settle the follower (follow-up read after Overlap)
		r.idle(t)
		f.clock.Step(2 * time.Second)
		if err := r.next(t); err != nil {
			t.Fatal(err)
		}
	}
	fullReads := st.Calls("Records")
	st.Bind("web-1", "web", "i-1", "10.0.0.2")
	r.idle(t)
	f.clock.Step(2 * time.Second)
	if err := r.next(t); err != nil {
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

// hangingSource is a LedgerSource whose Poll blocks until ctx ends when
// the test asks, as a read on a half-open connection without a deadline
// would.
type hangingSource struct {
	*LedgerSource
	stuck   chan struct{} // receives when a Poll starts hanging
	hanging chan bool     // the next Poll hangs when it receives true
}

func (h *hangingSource) Poll(ctx context.Context) (bool, error) {
	select {
	case hang := <-h.hanging:
		if hang {
			h.stuck <- struct{}{}
			<-ctx.Done()
			return false, ctx.Err()
		}
	default:
	}
	return h.LedgerSource.Poll(ctx)
}

// A sync stuck without an error (a half-open connection) fails /readyz
// once the last success is older than StaleAfter; until then, and before
// the sync hangs, the agent is ready.
func TestAgentReadyzFailsWhenSyncsStall(t *testing.T) {
	st := feedtest.New()
	st.Bind("web-0", "web", "i-0", "10.0.0.1")
	var src *hangingSource
	f := newFixture(t, func(fc *clocktesting.FakeClock) Source {
		src = &hangingSource{LedgerSource: ledgerSource(st)(fc).(*LedgerSource), stuck: make(chan struct{}), hanging: make(chan bool, 1)}
		return src
	}, Options{Interval: time.Second, ReassertEvery: time.Minute})
	if f.agent.opts.StaleAfter != 3*time.Minute {
		t.Errorf("default StaleAfter = %v, want 3m (3 × ReassertEvery, at least 3m)", f.agent.opts.StaleAfter)
	}
	r, stop := f.running(t)
	defer stop()
	if err := r.next(t); err != nil {
		t.Fatal(err)
	}
	r.idle(t)
	src.hanging <- true
	f.clock.Step(2 * time.Second) // the Interval timer: the next Poll hangs
	<-src.stuck
	if code, body := f.readyz(t); code != http.StatusOK {
		t.Fatalf("readyz with a sync just started = %d %q", code, body)
	}
	f.clock.Step(3*time.Minute - 3*time.Second) // 2m59s since the last success
	if code, body := f.readyz(t); code != http.StatusOK {
		t.Fatalf("readyz 2m59s after the last success = %d %q, want 200 within StaleAfter", code, body)
	}
	f.clock.Step(2 * time.Second)
	code, body := f.readyz(t)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "stale: last successful sync 3m1s ago") {
		t.Fatalf("readyz with a sync hanging past StaleAfter = %d %q, want 503 naming the stale sync", code, body)
	}
}
