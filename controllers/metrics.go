package controllers

import (
	"errors"
	"fmt"

	"github.com/aerostat-io/aerostat/internal/promreg"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the controller's Prometheus metrics. Labels are bounded: a
// service name or a change type, never an instance id or hostname.
type Metrics struct {
	namesBound   *prometheus.GaugeVec
	namesFree    *prometheus.GaugeVec
	namesUnnamed *prometheus.GaugeVec
	deferred     *prometheus.GaugeVec
	overBudget   *prometheus.GaugeVec
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
		overBudget: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aerostat_releases_over_budget", Help: "Releases refused by the release budget over its time window in the last pass, by service (also counted in aerostat_releases_deferred).",
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
	err := errors.Join(
		promreg.Reuse(reg, &m.namesBound), promreg.Reuse(reg, &m.namesFree), promreg.Reuse(reg, &m.namesUnnamed),
		promreg.Reuse(reg, &m.deferred), promreg.Reuse(reg, &m.overBudget), promreg.Reuse(reg, &m.held), promreg.Reuse(reg, &m.passDuration),
		promreg.Reuse(reg, &m.planChanges), promreg.Reuse(reg, &m.listings), promreg.Reuse(reg, &m.passes),
	)
	if err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	return m, nil
}
