package cloud_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/fakeclock"
)

// recorder keeps the calls an EC2 adapter reports.
type recorder struct {
	mu    sync.Mutex
	calls []cloud.APICall
}

func (r *recorder) hook(c cloud.APICall) {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
}

func (r *recorder) times() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]time.Time, len(r.calls))
	for i, c := range r.calls {
		out[i] = c.At
	}
	slices.SortFunc(out, time.Time.Compare)
	return out
}

// drive steps the fake clock by each timer armed on it, until done is
// closed: time moves only when a caller waits for it, and exactly as far as
// that caller asked. With several callers a step may pass other callers'
// deadlines too; the budget's bounds hold for any such order.
func drive(clk *fakeclock.Clock, done <-chan struct{}) {
	for {
		d, ok := clk.NextArmed(done)
		if !ok {
			return
		}
		clk.Step(d)
	}
}

// A fleet of 10,000: six services list at once through one adapter, four of
// them sharing one sweep. In no window of one second does the adapter make
// more calls than the budget allows (rate·1s + burst), and the whole round
// costs the 10 pages of the sweep plus the pages of the two other listings.
func TestBudgetNeverExceededAt10000(t *testing.T) {
	const perSecond, burst = 2, 2
	e := newEnv(t)
	for svc, n := range map[string]int{"web": 4000, "db": 1000, "cache": 3000, "batch": 2000} {
		e.fleet.Launch(n, map[string]string{"aerostat:service": svc})
	}
	c := e.client(t, cloud.EC2Options{CallsPerSecond: perSecond, Burst: burst, Clock: e.clock})
	var rec recorder
	c.SetAPICallHook(rec.hook)
	shared := cloud.NewShared(c, cloud.SharedOptions{TagKey: "aerostat:service", MaxAge: time.Hour, Clock: e.clock})

	listings := map[string][]cloud.Filter{
		"web":   {{Name: "tag:aerostat:service", Values: []string{"web"}}},
		"db":    {{Name: "tag:aerostat:service", Values: []string{"db"}}},
		"cache": {{Name: "tag:aerostat:service", Values: []string{"cache"}}},
		"batch": {{Name: "tag:aerostat:service", Values: []string{"batch"}}},
		"glob":  {{Name: "tag:aerostat:service", Values: []string{"w*"}}},                                                             // not shareable: 4 pages
		"and":   {{Name: "tag:aerostat:service", Values: []string{"db"}}, {Name: "instance-state-name", Values: []string{"running"}}}, // 1 page
	}
	want := map[string]int{"web": 4000, "db": 1000, "cache": 3000, "batch": 2000, "glob": 4000, "and": 1000}
	done := make(chan struct{})
	go drive(e.clock, done)
	var wg sync.WaitGroup
	errs := make(chan error, len(listings))
	for name, filters := range listings {
		wg.Go(func() {
			got, err := shared.List(context.Background(), filters...)
			if err == nil && len(got) != want[name] {
				err = fmt.Errorf("%s: listed %d, want %d", name, len(got), want[name])
			}
			errs <- err
		})
	}
	wg.Wait()
	close(done)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := e.srv.Calls("DescribeInstances"); n != 10+4+1 {
		t.Errorf("DescribeInstances calls = %d, want 15 (one 10-page sweep, 4 and 1 pages)", n)
	}
	times := rec.times()
	for i, start := range times {
		n := 0
		for _, at := range times[i:] {
			if at.Sub(start) < time.Second {
				n++
			}
		}
		if n > perSecond+burst {
			t.Fatalf("%d calls in the second from %v, budget allows %d", n, start.Sub(t0), perSecond+burst)
		}
	}
	if span, min := times[len(times)-1].Sub(times[0]), time.Duration(len(times)-burst)*time.Second/perSecond; span < min {
		t.Errorf("%d calls in %v, budget needs at least %v", len(times), span, min)
	}
}

// A throttling storm: every call in a row that EC2 refuses lengthens a
// jittered pause that holds back every caller, including the next service;
// the first success ends it.
func TestThrottlingStormBacksOff(t *testing.T) {
	const base, maxPause = time.Second, 8 * time.Second
	e := newEnv(t)
	e.fleet.Launch(1500, nil)
	c := e.client(t, cloud.EC2Options{MaxAttempts: 3, ThrottleBackoff: base, MaxThrottleBackoff: maxPause, Clock: e.clock})
	reg := prometheus.NewRegistry()
	ic := cloud.Instrument(c, reg)
	var rec recorder
	c.SetAPICallHook(rec.hook) // after Instrument, which takes the hook
	e.srv.ThrottleNext(7)

	done := make(chan struct{})
	go drive(e.clock, done)
	var results []error
	for range 3 { // three services' listings, one after the other
		_, err := ic.List(context.Background())
		results = append(results, err)
	}
	close(done)
	if !cloud.IsThrottled(results[0]) || !cloud.IsThrottled(results[1]) || results[2] != nil {
		t.Fatalf("results = %v, want throttled, throttled, ok", results)
	}
	times := rec.times()
	if len(times) != 7+2 {
		t.Fatalf("%d calls, want 7 throttled and 2 pages", len(times))
	}
	jittered := false
	for k := 1; k <= 7; k++ {
		gap := times[k].Sub(times[k-1])
		hi := min(base<<(k-1), maxPause)
		// The clock moves exactly by each pause armed, so gaps are exact.
		if gap < hi/2 || gap > hi {
			t.Errorf("pause after throttled call %d = %v, want within [%v, %v]", k, gap, hi/2, hi)
		}
		jittered = jittered || (gap > hi/2 && gap < hi)
	}
	if !jittered {
		t.Error("no pause was jittered")
	}
	if gap := times[8].Sub(times[7]); gap != 0 {
		t.Errorf("after a success the next call waited %v, want no pause", gap)
	}
	m := gather(t, reg)
	if got, ok := m["aerostat_ec2_throttle_backoff_seconds"]; !ok || got != 0 {
		t.Errorf("backoff gauge after the storm = %v (exported %v), want 0", got, ok)
	}
	if got := m["aerostat_ec2_budget_calls_per_second"]; !math.IsInf(got, 1) {
		t.Errorf("budget gauge = %v, want +Inf (unlimited in this test)", got)
	}
}

// At 10,000 instances one full pass of every service stays within 10
// paginated DescribeInstances calls, however many services share them; the
// sweep is not repeated within MaxAge, and is after it.
func TestSharedSweepAt10000(t *testing.T) {
	e := newEnv(t)
	services := map[string]int{"web": 4000, "db": 1000, "cache": 3000, "batch": 1500, "queue": 500}
	for svc, n := range services {
		e.fleet.Launch(n, map[string]string{"aerostat:service": svc})
	}
	e.fleet.Launch(300, map[string]string{"team": "other"}) // not ours: not listed
	c := e.client(t, cloud.EC2Options{})
	shared := cloud.NewShared(c, cloud.SharedOptions{TagKey: "aerostat:service", MaxAge: 5 * time.Second, Clock: e.clock})
	pass := func() {
		t.Helper()
		for svc, n := range services {
			got, err := shared.List(context.Background(), cloud.Filter{Name: "tag:aerostat:service", Values: []string{svc}})
			if err != nil || len(got) != n {
				t.Fatalf("%s: listed %d, %v; want %d", svc, len(got), err, n)
			}
			for _, in := range got {
				if in.Tags["aerostat:service"] != svc {
					t.Fatalf("%s listing holds %s of %q", svc, in.ID, in.Tags["aerostat:service"])
				}
			}
		}
	}
	pass()
	if n := e.srv.Calls("DescribeInstances"); n != 10 {
		t.Errorf("one pass at 10,000 instances = %d calls, want 10", n)
	}
	e.clock.Step(4 * time.Second)
	pass()
	if n := e.srv.Calls("DescribeInstances"); n != 10 {
		t.Errorf("a second pass within MaxAge made %d more calls", n-10)
	}
	e.clock.Step(2 * time.Second)
	pass()
	if n := e.srv.Calls("DescribeInstances"); n != 20 {
		t.Errorf("after MaxAge: %d calls, want 20", n)
	}

	// A failed sweep is shared as unknown, not as an empty fleet, and not
	// retried once per service.
	e.clock.Step(6 * time.Second)
	e.srv.Reset()
	e.srv.ThrottleOnPage(3)
	for svc := range services {
		_, err := shared.List(context.Background(), cloud.Filter{Name: "tag:aerostat:service", Values: []string{svc}})
		if !cloud.IsThrottled(err) {
			t.Errorf("%s: err = %v, want throttled", svc, err)
		}
	}
	if n := e.srv.Calls("DescribeInstances"); n != 2+3 {
		t.Errorf("failed sweep: %d calls, want 5 (2 pages, 3 attempts at page 3)", n)
	}
}
