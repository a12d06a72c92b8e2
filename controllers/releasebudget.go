package controllers

import (
	"context"
	"fmt"
	"time"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// DefaultReleaseWindow is the window of the release budget: within any
// ten minutes a service releases at most maxReleasePercent of the names it
// had bound, however many passes, restarts or leader changes happen.
const DefaultReleaseWindow = 10 * time.Minute

// releaseBudget is what a pass may still release of a service's names
// under its budget over ReapPolicy.ReleaseWindow, counted from the ledger.
type releaseBudget struct {
	log     ledger.ReleaseLog
	window  ledger.ReleaseWindow // as read, entries trimmed to the window
	now     time.Time
	allowed int
	used    int // released within the window before this pass
}

// releaseBudget reads the service's recent releases. It returns nil (no
// budget, the per-pass cap only) when the policy sets no window or the
// store keeps no release log.
func (s *Syncer) releaseBudget(ctx context.Context, p naming.Policy, records []naming.Record) (*releaseBudget, error) {
	rl, ok := ledger.ReleaseLogOf(s.store)
	span := p.Reap.ReleaseWindow
	if !ok || span <= 0 {
		return nil, nil
	}
	w, err := rl.ReleaseWindow(ctx, p.Service)
	if err != nil {
		return nil, fmt.Errorf("reading the release budget of service %q: %w", p.Service, err)
	}
	b := &releaseBudget{log: rl, window: w, now: s.clock.Now()}
	b.window.Entries = nil
	for _, e := range w.Entries {
		// An entry in the future (another controller's clock) still counts.
		if e.At.After(b.now.Add(-span)) {
			b.window.Entries = append(b.window.Entries, e)
			b.used += e.Count
		}
	}
	frac := p.Reap.MaxReleaseFraction
	if frac == 0 {
		frac = naming.DefaultMaxReleaseFraction
	}
	// Names bound now plus those released in the window are the names
	// bound when the window started: the budget does not shrink as it is
	// spent.
	b.allowed = max(0, max(1, int(float64(boundNames(records)+b.used)*frac))-b.used)
	return b, nil
}

// plan plans in; a plan that reaps reads the release budget (a pass that
// releases nothing costs no ledger read) and is planned again under it
// when it reaps more than the budget allows.
func (s *Syncer) plan(ctx context.Context, in naming.Input) (naming.Result, *releaseBudget, error) {
	res, err := naming.Plan(in)
	if err != nil || res.Reaped == 0 {
		return res, nil, planErr(in, err)
	}
	b, err := s.releaseBudget(ctx, in.Policy, in.Records)
	if err != nil || b == nil || b.allowed >= res.Reaped {
		return res, b, err
	}
	in.ReleaseBudget = &b.allowed
	res, err = naming.Plan(in)
	return res, b, planErr(in, err)
}

func planErr(in naming.Input, err error) error {
	if err != nil {
		return fmt.Errorf("planning service %q: %w", in.Policy.Service, err)
	}
	return nil
}

// reserve charges n releases to the budget in the ledger before they are
// written: a crash after it leaves the budget under-spent, never
// over-spent. Another controller's reservation in between is a conflict
// (the pass is re-planned).
func (b *releaseBudget) reserve(ctx context.Context, n int) error {
	if b == nil || n == 0 {
		return nil
	}
	w := b.window
	w.Entries = append(w.Entries[:len(w.Entries):len(w.Entries)], ledger.ReleaseEntry{At: b.now, Count: n})
	if err := b.log.PutReleaseWindow(ctx, w); err != nil {
		return fmt.Errorf("reserving %d releases in the release budget of service %q: %w", n, w.Service, err)
	}
	return nil
}

// overBudgetMessage explains a pass's releases refused by the budget.
func overBudgetMessage(pass Pass) string {
	return fmt.Sprintf("%d releases refused by the release budget (maxReleasePercent of the names bound within reapPolicy.releaseWindow); "+
		"a listing missing many instances at once is more often wrong than true; they are released as the window allows", pass.Plan.OverBudget)
}
