package retry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/fakeclock"
	"github.com/aerostat-io/aerostat/internal/retry"
)

func TestNth(t *testing.T) {
	tests := map[string]struct {
		spec   wait.Backoff
		n      int
		lo, hi time.Duration
	}{
		"first":           {retry.Exponential(time.Second, 8*time.Second, 0), 1, time.Second, time.Second},
		"zero is first":   {retry.Exponential(time.Second, 8*time.Second, 0), 0, time.Second, time.Second},
		"third doubles":   {retry.Exponential(time.Second, 8*time.Second, 0), 3, 4 * time.Second, 4 * time.Second},
		"capped":          {retry.Exponential(time.Second, 8*time.Second, 0), 5, 8 * time.Second, 8 * time.Second},
		"long streak":     {retry.Exponential(time.Second, 8*time.Second, 0), 1 << 30, 8 * time.Second, 8 * time.Second},
		"jitter above":    {retry.Exponential(time.Second, 8*time.Second, 0.5), 2, 2 * time.Second, 3 * time.Second},
		"jittered cap":    {retry.Exponential(time.Second, 8*time.Second, 1), 50, 8 * time.Second, 16 * time.Second},
		"few steps, flat": {wait.Backoff{Duration: time.Second, Factor: 2, Steps: 2}, 10, 4 * time.Second, 4 * time.Second},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for range 50 { // jitter is random: every draw must be in range
				if d := retry.Nth(tc.spec, tc.n); d < tc.lo || d > tc.hi {
					t.Fatalf("Nth(%d) = %v, want in [%v, %v]", tc.n, d, tc.lo, tc.hi)
				}
			}
		})
	}
}

func TestBackoffStepsAndResets(t *testing.T) {
	b := retry.New(clocktesting.NewFakeClock(time.Unix(0, 0)), retry.Exponential(10*time.Millisecond, 40*time.Millisecond, 0))
	var got []time.Duration
	for range 4 {
		got = append(got, b.Next())
	}
	want := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 40 * time.Millisecond}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("pauses = %v, want %v", got, want)
		}
	}
	b.Reset()
	if d := b.Next(); d != 10*time.Millisecond {
		t.Errorf("after Reset: %v, want 10ms", d)
	}
}

// Wait returns when the clock reaches the pause, not before, and leaves no
// timer behind.
func TestBackoffWaitsOnTheClock(t *testing.T) {
	clk := fakeclock.New(time.Unix(0, 0))
	b := retry.New(clk, retry.Exponential(time.Second, time.Minute, 0))
	done := make(chan error, 1)
	go func() { done <- b.Wait(context.Background()) }()
	clk.WaitArmed(t, time.Second)
	clk.Step(time.Second - time.Nanosecond)
	select {
	case err := <-done:
		t.Fatalf("Wait returned %v before its pause", err)
	default:
	}
	clk.Step(time.Nanosecond)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if clk.HasWaiters() {
		t.Error("a timer was left armed")
	}
}

func TestBackoffWaitEndsWithContext(t *testing.T) {
	clk := fakeclock.New(time.Unix(0, 0))
	b := retry.New(clk, retry.Exponential(time.Hour, time.Hour, 0))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Wait(ctx) }()
	clk.WaitArmed(t, time.Hour)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
	if clk.HasWaiters() {
		t.Error("the timer was not stopped")
	}
	if err := retry.Sleep(ctx, clk, time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep on an ended context = %v, want context.Canceled", err)
	}
}

// Until retries what retryable accepts, with the backoff's pauses on the
// clock, and stops at a success, a final error or the context's end.
func TestUntil(t *testing.T) {
	errBusy, errBad := errors.New("busy"), errors.New("bad input")
	tests := map[string]struct {
		results    []error // fn's results in turn; the last repeats
		cancelAt   int     // cancel the context during this pause (1-based; 0 never)
		want       error
		wantCalls  int
		wantPauses []time.Duration
	}{
		"success at once":                   {results: []error{nil}, wantCalls: 1},
		"success after two busy":            {results: []error{errBusy, errBusy, nil}, wantCalls: 3, wantPauses: []time.Duration{time.Second, 2 * time.Second}},
		"a final error is not retried":      {results: []error{errBad}, want: errBad, wantCalls: 1},
		"busy, then final":                  {results: []error{errBusy, errBad}, want: errBad, wantCalls: 2, wantPauses: []time.Duration{time.Second}},
		"context ends during the 2nd pause": {results: []error{errBusy}, cancelAt: 2, want: errBusy, wantCalls: 3, wantPauses: []time.Duration{time.Second, 2 * time.Second}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			clk := fakeclock.New(time.Unix(0, 0))
			b := retry.New(clk, retry.Exponential(time.Second, time.Minute, 0))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			calls := 0
			fn := func() error {
				calls++
				return tc.results[min(calls, len(tc.results))-1]
			}
			var pauses []time.Duration
			done := make(chan error, 1)
			go func() {
				done <- b.Until(ctx, fn, func(err error) bool { return errors.Is(err, errBusy) },
					func(_ error, d time.Duration) { pauses = append(pauses, d) })
			}()
			for i, d := range tc.wantPauses {
				clk.WaitArmed(t, d)
				if i+1 == tc.cancelAt {
					cancel()
					break
				}
				clk.Step(d)
			}
			if err := <-done; !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Errorf("Until = %v, want %v", err, tc.want)
			}
			if calls != tc.wantCalls || len(pauses) != len(tc.wantPauses) {
				t.Fatalf("%d calls, pauses %v; want %d calls, pauses %v", calls, pauses, tc.wantCalls, tc.wantPauses)
			}
			for i := range pauses {
				if pauses[i] != tc.wantPauses[i] {
					t.Errorf("pauses %v, want %v", pauses, tc.wantPauses)
				}
			}
			if clk.HasWaiters() {
				t.Error("a timer was left armed")
			}
		})
	}
}
