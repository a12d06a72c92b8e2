package promreg_test

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/aerostat-io/aerostat/internal/promreg"
)

func TestRegister(t *testing.T) {
	opts := prometheus.CounterOpts{Name: "aerostat_test_total", Help: "A test counter."}
	tests := map[string]struct {
		first   prometheus.Collector // registered before; nil for none
		wantErr bool
		shared  bool // the first collector is returned
	}{
		"empty registry":               {},
		"same description, same type":  {first: prometheus.NewCounter(opts), shared: true},
		"same name, other help":        {first: prometheus.NewCounter(prometheus.CounterOpts{Name: opts.Name, Help: "Other."}), wantErr: true},
		"same description, other type": {first: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: opts.Name, Help: opts.Help}, func() float64 { return 0 }), wantErr: true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			if tt.first != nil {
				reg.MustRegister(tt.first)
			}
			c := prometheus.NewCounter(opts)
			got, err := promreg.Register(reg, c)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Register error = %v, want error %v", err, tt.wantErr)
			}
			want := prometheus.Collector(c)
			if tt.shared {
				want = tt.first
			}
			if prometheus.Collector(got) != want {
				t.Errorf("Register returned the wrong collector (shared want %v)", tt.shared)
			}
		})
	}
}

// Two instances on one registry count into one series.
func TestReuseSharesTheFirstCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "aerostat_test_total", Help: "A test counter."}
	a, b := prometheus.NewCounter(opts), prometheus.NewCounter(opts)
	if err := errors.Join(promreg.Reuse(reg, &a), promreg.Reuse(reg, &b)); err != nil {
		t.Fatal(err)
	}
	a.Inc()
	b.Inc()
	if got := testutil.ToFloat64(a); got != 2 {
		t.Errorf("counter = %v after one Inc on each instance, want 2", got)
	}
}

// Replace puts the newest instance in place of an earlier one of the same
// type, and still refuses a clash with another type.
func TestReplace(t *testing.T) {
	opts := prometheus.GaugeOpts{Name: "aerostat_test_value", Help: "A test value."}
	newFunc := func(v float64) prometheus.GaugeFunc {
		return prometheus.NewGaugeFunc(opts, func() float64 { return v })
	}
	reg := prometheus.NewRegistry()
	if err := errors.Join(promreg.Replace(reg, newFunc(1)), promreg.Replace(reg, newFunc(2))); err != nil {
		t.Fatal(err)
	}
	if got, err := testutil.GatherAndCount(reg, opts.Name); err != nil || got != 1 {
		t.Fatalf("series after two Replace = %d, %v; want 1", got, err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if got := mfs[0].GetMetric()[0].GetGauge().GetValue(); got != 2 {
		t.Errorf("value = %v, want 2 (the second instance's)", got)
	}
	if err := promreg.Replace(reg, prometheus.NewGauge(opts)); err == nil {
		t.Error("Replace of a GaugeFunc by a Gauge under the same description succeeded, want the clash refused")
	}
}
