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
