package cloud

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aerostat-io/aerostat/internal/naming"
	"github.com/aerostat-io/aerostat/internal/promreg"
)

// metrics are the EC2 collectors; labels never hold instance ids.
type metrics struct {
	requests  *prometheus.CounterVec   // one per List / Tag
	duration  *prometheus.HistogramVec // of List / Tag, retries and budget waits included
	apiCalls  *prometheus.CounterVec   // one per HTTP call, retries included
	waitTotal prometheus.Counter       // seconds spent waiting for the call budget
}

// Instrument returns c with Prometheus metrics registered on reg (e.g.
// controller-runtime's metrics.Registry). Instrumenting twice on one
// registry shares the collectors. If c implements Tagger, so does the
// result; if c implements APICallReporter, its hook is taken over to count
// every HTTP call.
func Instrument(c Cloud, reg prometheus.Registerer) Cloud {
	m := &metrics{
		requests: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aerostat_ec2_requests_total",
			Help: "EC2 operations (a whole paginated listing counts once) by result: success, throttled or error.",
		}, []string{"operation", "result"})),
		duration: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "aerostat_ec2_request_duration_seconds",
			Help:    "Duration of EC2 operations, all pages, retries and budget waits included.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}, []string{"operation"})),
		apiCalls: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aerostat_ec2_api_calls_total",
			Help: "HTTP calls to the EC2 API (pages and retries) by result; spends the client-side call budget.",
		}, []string{"operation", "result"})),
		waitTotal: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aerostat_ec2_budget_wait_seconds_total",
			Help: "Time EC2 calls spent waiting for the client-side call budget.",
		})),
	}
	if r, ok := c.(APICallReporter); ok {
		r.SetAPICallHook(func(call APICall) {
			m.apiCalls.WithLabelValues(call.Operation, call.Result).Inc()
			m.waitTotal.Add(call.BudgetWait.Seconds())
		})
	}
	if b, ok := c.(BudgetReporter); ok {
		registerFunc(reg, prometheus.GaugeOpts{
			Name: "aerostat_ec2_budget_calls_per_second",
			Help: "Client-side budget of EC2 API calls a second, shared by all services (+Inf: unlimited). Budget use: rate(aerostat_ec2_api_calls_total[5m]) / this.",
		}, b.BudgetLimit)
		registerFunc(reg, prometheus.GaugeOpts{
			Name: "aerostat_ec2_throttle_backoff_seconds",
			Help: "How much longer every EC2 call is held back because EC2 throttled the last ones (RequestLimitExceeded).",
		}, func() float64 { return b.ThrottleBackoff().Seconds() })
	}
	ic := instrumented{c: c, m: m}
	if t, ok := c.(Tagger); ok {
		return instrumentedTagger{ic, t}
	}
	return ic
}

// register is promreg.Register for Instrument, which has no error to
// return: a clash with a collector of another type is a programming error.
func register[C prometheus.Collector](reg prometheus.Registerer, col C) C {
	col, err := promreg.Register(reg, col)
	if err != nil {
		panic(err)
	}
	return col
}

// registerFunc registers a gauge read at scrape time; a second Instrument
// on the same registry keeps the first one's.
func registerFunc(reg prometheus.Registerer, opts prometheus.GaugeOpts, fn func() float64) {
	register(reg, prometheus.NewGaugeFunc(opts, fn))
}

type instrumented struct {
	c Cloud
	m *metrics
}

func (i instrumented) List(ctx context.Context, filters ...Filter) ([]naming.Instance, error) {
	start := time.Now()
	out, err := i.c.List(ctx, filters...)
	i.observe("DescribeInstances", start, err)
	return out, err
}

func (i instrumented) observe(op string, start time.Time, err error) {
	i.m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	i.m.requests.WithLabelValues(op, ResultOf(err)).Inc()
}

type instrumentedTagger struct {
	instrumented
	t Tagger
}

func (i instrumentedTagger) Tag(ctx context.Context, ids []string, tags map[string]string) error {
	start := time.Now()
	err := i.t.Tag(ctx, ids, tags)
	i.observe("CreateTags", start, err)
	return err
}
