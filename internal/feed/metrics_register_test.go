package feed

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aerostat-io/aerostat/internal/feed/feedtest"
)

// TestRegisterMetricsTwiceReportsTheNewest: a second handler registered
// on the same registry (a controller built twice in one process: go test
// -count=20 on controller-runtime's global registry) replaces the first
// instead of failing, and the metrics then read the second handler.
func TestRegisterMetricsTwiceReportsTheNewest(t *testing.T) {
	reg := prometheus.NewRegistry()
	h1, h2 := NewHandler(feedtest.New(), Options{}), NewHandler(feedtest.New(), Options{})
	if err := RegisterMetrics(reg, h1); err != nil {
		t.Fatal(err)
	}
	if err := RegisterMetrics(reg, h2); err != nil {
		t.Fatalf("second RegisterMetrics: %v, want the first replaced", err)
	}
	probe := newConvergenceCollector(h1)
	var are prometheus.AlreadyRegisteredError
	if err := reg.Register(probe); !errors.As(err, &are) {
		t.Fatalf("registering a third = %v, want AlreadyRegisteredError", err)
	}
	if got := are.ExistingCollector.(*convergenceCollector).h; got != h2 {
		t.Errorf("registered collector reads handler %p, want the second (%p), not the first (%p)", got, h2, h1)
	}
	if _, err := reg.Gather(); err != nil {
		t.Errorf("gather: %v", err)
	}
	// Another collector under the same names is still refused.
	if err := reg.Register(prometheus.NewGauge(prometheus.GaugeOpts{Name: "aerostat_hosts_live", Help: "x"})); err == nil {
		t.Error("a gauge named aerostat_hosts_live registered beside the convergence metrics")
	}
}
