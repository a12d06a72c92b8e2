package controllers

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the controller's Prometheus metrics. Labels are bounded: a
// service name or a change type, never an instance id or hostname.
type Metrics struct {
	namesBound   *prometheus.GaugeVec
	namesFree    *prometheus.GaugeVec
	namesUnnamed *prometheus.GaugeVec
	deferred     *prometheus.GaugeVec
	passDuration prometheus.Histogram
	planChanges  *prometheus.CounterVec
	listings     *prometheus.CounterVec
}

// NewMetrics registers the metrics with reg (controller-runtime's
// metrics.Registry in the binary, a fresh registry in tests).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		namesBound: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aerostat_names_bound", Help: "Names held by an instance, by service.",
		}, []string{"service"}),
		namesFree: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aerostat_names_free", Help: "Free names (gaps), by service.",
		}, []string{"service"}),
		namesUnnamed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aerostat_names_unnamed", Help: "Live instances without a name after the last pass, by service.",
		}, []string{"service"}),
		deferred: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aerostat_releases_deferred", Help: "Releases held back by the reap cap in the last pass, by service.",
		}, []string{"service"}),
		passDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "aerostat_reconcile_duration_seconds",
			Help:    "Time of one pass for one service: observe, read, plan, apply.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		planChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aerostat_plan_changes_total", Help: "Ledger changes applied, by type.",
		}, []string{"type"}),
		listings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aerostat_ec2_listings_total", Help: "Instance listings, by result (ok, throttled, error, empty: none while names are bound).",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.namesBound, m.namesFree, m.namesUnnamed, m.deferred, m.passDuration, m.planChanges, m.listings} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
	}
	return m, nil
}
