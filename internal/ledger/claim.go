package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/utils/clock"

	"github.com/aerostat-io/aerostat/internal/naming"
	"github.com/aerostat-io/aerostat/internal/retry"
)

const (
	// Lost compare-and-sets in a row while nobody else gets anywhere
	// (the records did not change between attempts): something is wrong.
	claimStalled = 10
	// Hard bound on attempts, for a herd that keeps making progress.
	claimAttempts   = 300
	claimBackoffMin = 5 * time.Millisecond
	claimBackoffMax = time.Second
)

// Claim reads the service's records, plans with them and applies the plan,
// re-reading and re-planning when a compare-and-set is lost to another
// writer, with exponential backoff and full jitter so racing writers
// spread out. Many nodes booting at once all plan the same smallest free
// name and only one wins each round, so a loss that comes with progress
// (the records changed since the last attempt) does not count towards the
// 10-losses-in-a-row limit; 300 attempts bound it in all cases.
//
// It returns the plan that was applied; a plan with no changes is returned
// as is. Errors: read, plan and non-conflict write errors at once;
// ErrConflict (wrapped) when it gave up; the context's error.
func Claim(ctx context.Context, store Store, service string, plan func([]naming.Record) (naming.Result, error)) (naming.Result, error) {
	return ClaimWithClock(ctx, clock.RealClock{}, store, service, plan)
}

// ClaimWithClock is Claim with its pauses between attempts on clk.
func ClaimWithClock(ctx context.Context, clk clock.Clock, store Store, service string, plan func([]naming.Record) (naming.Result, error)) (naming.Result, error) {
	var (
		lastErr error
		lastRev int64 = -1
		stalled int
	)
	// Pauses in [d/2, d) for d doubling from claimBackoffMin.
	backoff := retry.New(clk, retry.Exponential(claimBackoffMin/2, claimBackoffMax/2, 1))
	for attempt := 1; attempt <= claimAttempts && stalled < claimStalled; attempt++ {
		recs, err := store.Records(ctx, service)
		if err != nil {
			return naming.Result{}, fmt.Errorf("claiming for service %s: %w", service, err)
		}
		rev := int64(len(recs)) // 1.x records carry no rev; count them too
		for _, r := range recs {
			rev += r.Rev
		}
		if rev == lastRev {
			stalled++
		} else {
			stalled = 0
		}
		lastRev = rev
		res, err := plan(recs)
		if err != nil {
			return naming.Result{}, fmt.Errorf("claiming for service %s: planning: %w", service, err)
		}
		if !res.HasChanges() {
			return res, nil
		}
		_, err = store.Apply(ctx, res.Changes)
		if err == nil {
			return res, nil
		}
		if !errors.Is(err, ErrConflict) {
			return naming.Result{}, fmt.Errorf("claiming for service %s: %w", service, err)
		}
		lastErr = err
		if err := backoff.Wait(ctx); err != nil {
			return naming.Result{}, fmt.Errorf("claiming for service %s: %w (last conflict: %v)", service, err, lastErr)
		}
	}
	return naming.Result{}, fmt.Errorf("claiming for service %s: gave up: %w", service, lastErr)
}
