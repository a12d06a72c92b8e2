package reliability

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// TestEC2FaultsReapNothing: with names due for release (instances
// terminated, and others gone from listings for an hour), a pass whose
// listing was throttled, failed, stopped on page k, hit the eventual
// consistency error, or came back empty (wrong region or credentials)
// releases nothing, fails (so `controller --once` exits non-zero), and the
// listings metric says why. Once EC2 answers again, the names are released.
func TestEC2FaultsReapNothing(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	web := w.launch(20, "web", "")
	// Stopped instances of another service fill three DescribeInstances
	// pages (1,000 each) so page faults can hit every page.
	for _, id := range w.launch(2050, "bulk", "") {
		if err := w.fleet.SetState(id, naming.StateStopped); err != nil {
			t.Fatal(err)
		}
	}
	sa := w.standalone(w.store)
	if _, err := sa.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(w.bound()); n != 20 {
		t.Fatalf("%d names bound, want 20", n)
	}
	if err := w.fleet.Terminate(web[:4]...); err != nil {
		t.Fatal(err)
	}
	w.fleet.Remove(web[4:8]...)
	if _, err := sa.Pass(ctx); err != nil { // starts the vanished ones' grace period
		t.Fatal(err)
	}
	w.clock.Step(2 * time.Hour)

	tests := map[string]struct {
		fault  func()
		metric string
	}{
		"throttling storm":           {func() { w.server.ThrottleFraction(1, 1) }, "throttled"},
		"throttled from page 2":      {func() { w.server.ThrottleOnPage(2) }, "throttled"},
		"500":                        {func() { w.server.FailNext(1, http.StatusInternalServerError) }, "error"},
		"503":                        {func() { w.server.FailNext(1, http.StatusServiceUnavailable) }, "error"},
		"page 1 fails":               {func() { w.server.FailOnPage(1) }, "error"},
		"page 2 fails":               {func() { w.server.FailOnPage(2) }, "error"},
		"page 3 fails":               {func() { w.server.FailOnPage(3) }, "error"},
		"InvalidInstanceID.NotFound": {func() { w.server.NotFoundNext(1) }, "error"},
		"empty listing":              {func() { w.server.EmptyListing(true) }, "empty"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w.server.Reset()
			tc.fault()
			before, metric := w.rev(), w.counter("aerostat_ec2_listings_total", "result", tc.metric)
			_, err := sa.Pass(ctx)
			if err == nil {
				t.Error("pass on a faulty listing returned no error")
			}
			if after := w.rev(); after != before {
				t.Errorf("ledger rev moved from %d to %d on an unknown listing", before, after)
			}
			if got := w.counter("aerostat_ec2_listings_total", "result", tc.metric); got <= metric {
				t.Errorf("aerostat_ec2_listings_total{result=%q} stayed at %v", tc.metric, got)
			}
			if w.server.Injected() == 0 {
				t.Error("no fault was injected")
			}
			t.Logf("error: %v", err)
		})
	}

	w.server.Reset()
	for range 3 { // the reap cap releases half the bound names per pass
		if _, err := sa.Pass(ctx); err != nil {
			t.Fatal(err)
		}
	}
	w.checkSettled()
	for _, id := range web[:8] {
		for h, holder := range w.bound() {
			if holder == id {
				t.Errorf("%s still held by %s after EC2 recovered", h, id)
			}
		}
	}
}
