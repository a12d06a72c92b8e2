package controllers

import (
	"errors"
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
	held         *prometheus.GaugeVec
	passDuration prometheus.Histogram
	planChanges  *prometheus.CounterVec
	listings     *prometheus.CounterVec
	passes       *prometheus.CounterVec
}

// NewMetrics registers the metrics with reg (controller-runtime's
// metrics.Registry in the binary, a fresh registry in tests). Calling it
// twice on one registry (a command run twice in one process) shares the
// collectors.
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
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aerostat_names_held", Help: "Names kept from waiting instances by hold-back or the stopped grace period after the last pass, by service.",
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
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aerostat_passes_total", Help: "Standalone passes, by trigger (poll: a full listing; event: instances described by id after events).",
		}, []string{"trigger"}),
	}
	var err error
	m.namesBound, err = register(reg, m.namesBound, err)
	m.namesFree, err = register(reg, m.namesFree, err)
	m.namesUnnamed, err = register(reg, m.namesUnnamed, err)
	m.deferred, err = register(reg, m.deferred, err)
	m.held, err = register(reg, m.held, err)
	m.passDuration, err = register(reg, m.passDuration, err)
	m.planChanges, err = register(reg, m.planChanges, err)
	m.listings, err = register(reg, m.listings, err)
	m.passes, err = register(reg, m.passes, err)
	if err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	return m, nil
}

// register registers c, or returns the collector of the same description
// already registered; it does nothing once err is set.
func register[C prometheus.Collector](reg prometheus.Registerer, c C, err error) (C, error) {
	if err != nil {
		return c, err
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}
