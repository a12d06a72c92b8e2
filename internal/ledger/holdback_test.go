package ledger_test

import (
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// TestReleaseStampsHoldBack: a Release of a bound name stores the
// planner's time (not the store's clock) and the holder, so hold-back is
// measured on the controller's clock; tidying a gap keeps them.
func TestReleaseStampsHoldBack(t *testing.T) {
	storeClock := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	m := ledgertest.Open(t, ledger.Options{Database: ledgertest.Database(t), Clock: storeClock})
	mustApply(t, m, bind("web-0", 0, "i-0", "10.0.0.1"))
	planned := time.Date(2026, 11, 23, 12, 34, 56, 789e6, time.UTC)
	mustApply(t, m, naming.Change{Type: naming.Release, Hostname: "web-0", ExpectExists: true, ExpectInstanceID: "i-0", ExpectRev: 1, ReleasedAt: planned})
	r := mustRecords(t, m, "web")["web-0"]
	if !r.ReleasedAt.Equal(planned) || r.LastInstanceID != "i-0" || !r.Free() {
		t.Fatalf("released web-0 = %+v, want released_at %v by i-0", r, planned)
	}
	mustApply(t, m, naming.Change{Type: naming.Release, Hostname: "web-0", ExpectExists: true, ExpectRev: r.Rev, ReleasedAt: planned.Add(time.Hour)})
	if r := mustRecords(t, m, "web")["web-0"]; !r.ReleasedAt.Equal(planned) || r.LastInstanceID != "i-0" {
		t.Errorf("tidying the gap moved its release stamp: %+v", r)
	}
}
