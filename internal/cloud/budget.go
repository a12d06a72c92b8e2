package cloud

import (
	"context"
	"errors"
	"math"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/utils/clock"
)

// budget is a token bucket of calls a second. It reads time from an
// injected clock (rate.Limiter's own Wait uses the real one) so tests can
// step time instead of sleeping.
type budget struct {
	clock clock.Clock
	lim   *rate.Limiter
}

func newBudget(clk clock.Clock, perSecond float64, burst int) *budget {
	if burst <= 0 {
		burst = 1
	}
	limit := rate.Limit(perSecond)
	if math.IsInf(perSecond, 1) {
		limit = rate.Inf
	}
	return &budget{clock: clk, lim: rate.NewLimiter(limit, burst)}
}

// wait blocks until one call may be made or ctx ends, and returns how long
// it waited.
func (b *budget) wait(ctx context.Context) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	now := b.clock.Now()
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		return 0, errors.New("call budget burst is zero")
	}
	d := r.DelayFrom(now)
	if d <= 0 {
		return 0, nil
	}
	t := b.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return d, nil
	case <-ctx.Done():
		r.CancelAt(b.clock.Now())
		return 0, ctx.Err()
	}
}
