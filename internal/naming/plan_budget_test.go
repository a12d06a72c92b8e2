package naming

import "testing"

// TestPlanReleaseBudget: Input.ReleaseBudget only ever lowers the per-pass
// cap; what it refuses is deferred and counted in OverBudget, and Reaped
// counts what was released.
func TestPlanReleaseBudget(t *testing.T) {
	tests := map[string]struct {
		dead                 int
		budget               *int
		wantReaped, wantOver int
		wantDeferred         int
	}{
		"no budget: the cap":   {dead: 8, wantReaped: 5, wantDeferred: 3},
		"budget above the cap": {dead: 8, budget: ptr(9), wantReaped: 5, wantDeferred: 3},
		"budget below the cap": {dead: 8, budget: ptr(2), wantReaped: 2, wantOver: 3, wantDeferred: 6},
		"budget spent":         {dead: 8, budget: ptr(0), wantReaped: 0, wantOver: 5, wantDeferred: 8},
		"negative is spent":    {dead: 2, budget: ptr(-3), wantReaped: 0, wantOver: 2, wantDeferred: 2},
		"under both":           {dead: 1, budget: ptr(3), wantReaped: 1},
		"nothing to reap":      {dead: 0, budget: ptr(0)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := Input{Policy: Policy{Service: "web", Scheme: Iterative}, Observed: Observation{Complete: true}, Now: t0, ReleaseBudget: tc.budget}
			addWebFleet(&in, 10, tc.dead)
			res, err := Plan(in)
			if err != nil {
				t.Fatal(err)
			}
			if res.Reaped != tc.wantReaped || len(res.Changes) != tc.wantReaped || res.OverBudget != tc.wantOver || len(res.Deferred) != tc.wantDeferred {
				t.Fatalf("reaped %d (changes %d), over budget %d, deferred %d; want %d, %d, %d",
					res.Reaped, len(res.Changes), res.OverBudget, len(res.Deferred), tc.wantReaped, tc.wantOver, tc.wantDeferred)
			}
		})
	}
}

func ptr(n int) *int { return &n }
