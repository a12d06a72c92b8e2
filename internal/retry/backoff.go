// Package retry paces retries: every exponential backoff in Aerostat is a
// k8s.io/apimachinery wait.Backoff stepped here, with its sleeps on an
// injected clock so tests step time instead of sleeping.
package retry

import (
	"context"
	"math"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"
)

// Exponential is a backoff that doubles from first up to limit, each pause
// lengthened by a random fraction in [0, jitter) of itself. Pass first and
// limit already scaled down when the spread should sit around them, e.g.
// first/2 and jitter 1 for pauses in [first/2, first).
func Exponential(first, limit time.Duration, jitter float64) wait.Backoff {
	return wait.Backoff{Duration: first, Factor: 2, Jitter: jitter, Steps: math.MaxInt32, Cap: limit}
}

// Nth is the pause after the n-th failure in a row (n ≥ 1; n < 1 counts as
// 1), for callers that keep their own failure count. spec needs a Cap or a
// small Steps: past either, every pause is the last one, jittered.
func Nth(spec wait.Backoff, n int) time.Duration {
	for i := 1; i < n && spec.Steps > 0; i++ {
		spec.Step()
	}
	return spec.Step()
}

// Backoff paces one retry loop. It is not safe for concurrent use.
type Backoff struct {
	clock     clock.Clock
	spec, cur wait.Backoff
}

// New returns a Backoff that steps spec and sleeps on clk.
func New(clk clock.Clock, spec wait.Backoff) *Backoff {
	return &Backoff{clock: clk, spec: spec, cur: spec}
}

// Next returns the next pause and advances the backoff.
func (b *Backoff) Next() time.Duration { return b.cur.Step() }

// Reset starts again from the first pause (after a success).
func (b *Backoff) Reset() { b.cur = b.spec }

// Wait sleeps the next pause on the clock. It returns ctx's error when ctx
// ends first, nil otherwise.
func (b *Backoff) Wait(ctx context.Context) error {
	return Sleep(ctx, b.clock, b.Next())
}

// Sleep waits d on clk, or until ctx ends (then it returns ctx's error).
// The timer is stopped either way, so a fake clock is left with no waiter.
func Sleep(ctx context.Context, clk clock.Clock, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}

// Until calls fn until it succeeds, fails with an error retryable refuses,
// or ctx ends, pausing the next backoff between calls, and returns fn's
// last error. onRetry, when not nil, hears each error about to be retried
// and the pause before the next call. A pause cut short by ctx is followed
// by one more call, whose error (ctx's, as fn reports it) is returned.
func (b *Backoff) Until(ctx context.Context, fn func() error, retryable func(error) bool, onRetry func(err error, pause time.Duration)) error {
	for {
		err := fn()
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return err
		}
		pause := b.Next()
		if onRetry != nil {
			onRetry(err, pause)
		}
		_ = Sleep(ctx, b.clock, pause)
	}
}
