package cloud

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/utils/clock"

	"github.com/aerostat-io/aerostat/internal/retry"
)

// Defaults of the throttling back-off.
const (
	DefaultThrottleBackoff    = time.Second
	DefaultMaxThrottleBackoff = 30 * time.Second
)

// budget is a token bucket of calls a second, shared by every call of one
// process, plus a back-off that every call obeys after EC2 said
// RequestLimitExceeded. It reads time from an injected clock (rate.Limiter's
// own Wait uses the real one) so tests can step time instead of sleeping.
type budget struct {
	clock clock.Clock
	lim   *rate.Limiter

	// Back-off after throttling: the n-th throttled call in a row pauses
	// every caller for a random time in [d/2, d], d = base·2^(n-1) capped
	// at maxPause, so a fleet of controllers does not retry in step.
	base, maxPause time.Duration
	mu             sync.Mutex
	streak         int
	pauseUntil     time.Time
}

func newBudget(clk clock.Clock, perSecond float64, burst int, base, maxPause time.Duration) *budget {
	if burst <= 0 {
		burst = 1
	}
	limit := rate.Limit(perSecond)
	if math.IsInf(perSecond, 1) {
		limit = rate.Inf
	}
	if base <= 0 {
		base = DefaultThrottleBackoff
	}
	if maxPause < base {
		maxPause = max(base, DefaultMaxThrottleBackoff)
	}
	return &budget{clock: clk, lim: rate.NewLimiter(limit, burst), base: base, maxPause: maxPause}
}

// limit is the configured calls a second (+Inf: unlimited).
func (b *budget) limit() float64 {
	if b.lim.Limit() == rate.Inf {
		return math.Inf(1)
	}
	return float64(b.lim.Limit())
}

// wait blocks until one call may be made or ctx ends, and returns how long
// it waited (back-off included) and the time the budget granted the call.
func (b *budget) wait(ctx context.Context) (time.Duration, time.Time, error) {
	if err := ctx.Err(); err != nil {
		return 0, time.Time{}, err
	}
	start := b.clock.Now()
	if err := b.sleepUntil(ctx, b.pausedUntil()); err != nil {
		return 0, time.Time{}, err
	}
	now := b.clock.Now()
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		return 0, time.Time{}, errors.New("call budget burst is zero")
	}
	d := max(r.DelayFrom(now), 0)
	if d > 0 {
		if err := b.sleepUntil(ctx, now.Add(d)); err != nil {
			r.CancelAt(b.clock.Now())
			return 0, time.Time{}, err
		}
	}
	return b.clock.Since(start), now.Add(d), nil
}

func (b *budget) sleepUntil(ctx context.Context, until time.Time) error {
	return retry.Sleep(ctx, b.clock, until.Sub(b.clock.Now()))
}

func (b *budget) pausedUntil() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pauseUntil
}

// observe feeds the result of a call back: throttling lengthens the pause
// of every caller, a success ends the streak.
func (b *budget) observe(throttled bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !throttled {
		b.streak = 0
		return
	}
	b.streak++
	d := retry.Nth(retry.Exponential(b.base/2, b.maxPause/2, 1), b.streak)
	if until := b.clock.Now().Add(d); until.After(b.pauseUntil) {
		b.pauseUntil = until
	}
}

// backoff is how much longer callers are held back because of throttling.
func (b *budget) backoff() time.Duration {
	return max(0, b.pausedUntil().Sub(b.clock.Now()))
}
