package cloud_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/cloud/fake"
	"github.com/aerostat-io/aerostat/internal/fakeclock"
	"github.com/aerostat-io/aerostat/internal/naming"
)

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

// isolateAWS keeps the developer's AWS environment out of the test.
func isolateAWS(t testing.TB) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_PROFILE":                 "",
		"AWS_ENDPOINT_URL":            "",
		"AWS_ENDPOINT_URL_EC2":        "",
		"AWS_REGION":                  "",
		"AWS_EC2_METADATA_DISABLED":   "",
		"AWS_CA_BUNDLE":               "",
	} {
		t.Setenv(k, v)
	}
}

type env struct {
	clock *fakeclock.Clock
	fleet *fake.Fleet
	srv   *fake.Server
}

func newEnv(t testing.TB) *env {
	isolateAWS(t)
	clk := fakeclock.New(t0)
	fleet := fake.NewFleet(clk)
	srv := fake.NewServer(fleet)
	t.Cleanup(srv.Close)
	return &env{clock: clk, fleet: fleet, srv: srv}
}

// client returns an EC2 adapter on the fake server: fast backoff and no
// budget unless opts say otherwise.
func (e *env) client(t testing.TB, opts cloud.EC2Options) *cloud.EC2 {
	t.Helper()
	opts.Region = "eu-west-1"
	if opts.Endpoint == "" {
		opts.Endpoint = e.srv.URL
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = time.Millisecond
	}
	if opts.CallsPerSecond == 0 {
		opts.CallsPerSecond = -1
	}
	if opts.ThrottleBackoff == 0 {
		opts.ThrottleBackoff, opts.MaxThrottleBackoff = time.Millisecond, 4*time.Millisecond
	}
	opts.Credentials = credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")
	c, err := cloud.NewEC2(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestListPaginates(t *testing.T) {
	e := newEnv(t)
	web := e.fleet.Launch(2500, map[string]string{"aerostat:service": "web", "Name": "x"})
	got, err := e.client(t, cloud.EC2Options{}).List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2500 {
		t.Fatalf("listed %d instances, want 2500", len(got))
	}
	if n := e.srv.Calls("DescribeInstances"); n != 3 {
		t.Errorf("DescribeInstances calls = %d, want 3 (MaxResults 1000)", n)
	}
	want, _ := e.fleet.Instance(web[1234])
	var found naming.Instance
	for _, in := range got {
		if in.ID == web[1234] {
			found = in
		}
	}
	if found.ID == "" || found.PrivateIP != want.PrivateIP || found.State != naming.StateRunning ||
		!found.LaunchTime.Equal(t0) || found.Tags["aerostat:service"] != "web" || found.Tags["Name"] != "x" {
		t.Errorf("instance = %+v, want %+v", found, want)
	}
	seen := map[string]bool{}
	for _, in := range got {
		if seen[in.ID] {
			t.Fatalf("instance %s listed twice", in.ID)
		}
		seen[in.ID] = true
	}
}

func TestListFilters(t *testing.T) {
	e := newEnv(t)
	web := e.fleet.Launch(3, map[string]string{"aerostat:service": "web"})
	db := e.fleet.Launch(2, map[string]string{"aerostat:service": "db", "team": "data"})
	e.fleet.Launch(1, nil)
	if err := e.fleet.Stop(web[0]); err != nil {
		t.Fatal(err)
	}
	c := e.client(t, cloud.EC2Options{})
	tests := map[string]struct {
		filters []cloud.Filter
		want    []string
	}{
		"none":        {nil, nil}, // nil: everything
		"tag value":   {[]cloud.Filter{{Name: "tag:aerostat:service", Values: []string{"web"}}}, web},
		"tag values":  {[]cloud.Filter{{Name: "tag:aerostat:service", Values: []string{"web", "db"}}}, append(append([]string{}, web...), db...)},
		"tag glob":    {[]cloud.Filter{{Name: "tag:aerostat:service", Values: []string{"d*"}}}, db},
		"tag key":     {[]cloud.Filter{{Name: "tag-key", Values: []string{"team"}}}, db},
		"state":       {[]cloud.Filter{{Name: "instance-state-name", Values: []string{"stopped"}}}, web[:1]},
		"id":          {[]cloud.Filter{{Name: "instance-id", Values: []string{db[1]}}}, db[1:]},
		"and":         {[]cloud.Filter{{Name: "tag:aerostat:service", Values: []string{"web"}}, {Name: "instance-state-name", Values: []string{"running"}}}, web[1:]},
		"no match":    {[]cloud.Filter{{Name: "tag:aerostat:service", Values: []string{"cache"}}}, []string{}},
		"missing tag": {[]cloud.Filter{{Name: "tag:nope", Values: []string{"web"}}}, []string{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := c.List(context.Background(), tc.filters...)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if want == nil {
				want = ids(e.fleet.Instances())
			}
			if g := ids(got); fmt.Sprint(sorted(g)) != fmt.Sprint(sorted(want)) {
				t.Errorf("got %v, want %v", g, want)
			}
		})
	}
	t.Run("unknown filter", func(t *testing.T) {
		_, err := c.List(context.Background(), cloud.Filter{Name: "bogus", Values: []string{"x"}})
		if err == nil || cloud.IsThrottled(err) {
			t.Errorf("err = %v, want InvalidParameterValue", err)
		}
	})
}

func TestListStates(t *testing.T) {
	e := newEnv(t)
	states := []naming.InstanceState{naming.StatePending, naming.StateRunning, naming.StateStopping,
		naming.StateStopped, naming.StateShuttingDown, naming.StateTerminated}
	ids := e.fleet.Launch(len(states), nil)
	for i, s := range states {
		if err := e.fleet.SetState(ids[i], s); err != nil {
			t.Fatal(err)
		}
	}
	got, err := e.client(t, cloud.EC2Options{}).List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i, in := range got {
		if in.ID != ids[i] || in.State != states[i] {
			t.Errorf("instance %d = %s %s, want %s %s", i, in.ID, in.State, ids[i], states[i])
		}
		if hasIP := in.PrivateIP != ""; hasIP != (in.State != naming.StateTerminated) {
			t.Errorf("%s instance has IP %q", in.State, in.PrivateIP)
		}
	}
}

func TestListFaults(t *testing.T) {
	tests := map[string]struct {
		inject      func(*fake.Server)
		wantN       int // instances returned
		wantErr     bool
		wantThrottl bool
		wantCalls   int // DescribeInstances HTTP calls
	}{
		"throttled twice then ok": {func(s *fake.Server) { s.ThrottleNext(2) }, 2500, false, false, 5},
		"throttling storm":        {func(s *fake.Server) { s.ThrottleNext(100) }, 0, true, true, 3},
		"storm from page 2":       {func(s *fake.Server) { s.ThrottleOnPage(2) }, 1000, true, true, 4},
		"5xx retried":             {func(s *fake.Server) { s.FailNext(2, 503) }, 2500, false, false, 5},
		"500 retried":             {func(s *fake.Server) { s.FailNext(1, 500) }, 2500, false, false, 4},
		"fails on page 3":         {func(s *fake.Server) { s.FailOnPage(3) }, 2000, true, false, 5},
		"not found not retried":   {func(s *fake.Server) { s.NotFoundNext(1) }, 0, true, false, 1},
		"wrong region is empty":   {func(s *fake.Server) { s.EmptyListing(true) }, 0, false, false, 1},
	}
	e := newEnv(t)
	e.fleet.Launch(2500, nil)
	c := e.client(t, cloud.EC2Options{MaxAttempts: 3})
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e.srv.Reset()
			tc.inject(e.srv)
			got, err := c.List(context.Background())
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if cloud.IsThrottled(err) != tc.wantThrottl {
				t.Errorf("IsThrottled(%v) = %v, want %v", err, !tc.wantThrottl, tc.wantThrottl)
			}
			if len(got) != tc.wantN {
				t.Errorf("got %d instances, want %d", len(got), tc.wantN)
			}
			if n := e.srv.Calls("DescribeInstances"); n != tc.wantCalls {
				t.Errorf("DescribeInstances calls = %d, want %d", n, tc.wantCalls)
			}
		})
	}
}

func TestListLatencyHonoursContext(t *testing.T) {
	e := newEnv(t)
	e.fleet.Launch(10, nil)
	e.srv.SetLatency(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	got, err := e.client(t, cloud.EC2Options{}).List(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want deadline exceeded", err)
	}
	if len(got) != 0 {
		t.Errorf("got %d instances from a timed-out listing", len(got))
	}
}

func TestEndpointFromEnvironment(t *testing.T) {
	e := newEnv(t)
	e.fleet.Launch(7, nil)
	t.Setenv("AWS_ENDPOINT_URL_EC2", e.srv.URL)
	c, err := cloud.NewEC2(context.Background(), cloud.EC2Options{
		Region:      "eu-west-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.List(context.Background())
	if err != nil || len(got) != 7 {
		t.Fatalf("List via AWS_ENDPOINT_URL_EC2 = %d instances, %v", len(got), err)
	}
}

func TestNewEC2NeedsRegion(t *testing.T) {
	isolateAWS(t)
	_, err := cloud.NewEC2(context.Background(), cloud.EC2Options{})
	if err == nil {
		t.Fatal("NewEC2 without a region succeeded")
	}
}

func TestTag(t *testing.T) {
	e := newEnv(t)
	ids := e.fleet.Launch(3, nil)
	c := e.client(t, cloud.EC2Options{})
	if err := c.Tag(context.Background(), ids[:2], map[string]string{"Name": "web-0", "aerostat:hostname": "web-0"}); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		in, _ := e.fleet.Instance(id)
		if got, want := in.Tags["Name"] == "web-0", i < 2; got != want {
			t.Errorf("instance %d tagged = %v, want %v", i, got, want)
		}
	}
	if n := e.srv.Calls("CreateTags"); n != 1 {
		t.Errorf("CreateTags calls = %d, want 1", n)
	}
	if err := c.Tag(context.Background(), []string{"i-00000000000000bad"}, map[string]string{"a": "b"}); err == nil {
		t.Error("tagging an unknown instance succeeded")
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	e.fleet.Launch(2500, nil)
	reg := prometheus.NewRegistry()
	c := cloud.Instrument(e.client(t, cloud.EC2Options{MaxAttempts: 2}), reg)
	if _, ok := c.(cloud.Tagger); !ok {
		t.Error("instrumented EC2 lost Tagger")
	}
	e.srv.ThrottleNext(1)
	if _, err := c.List(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.srv.Reset()
	e.srv.ThrottleNext(10)
	if _, err := c.List(context.Background()); !cloud.IsThrottled(err) {
		t.Fatalf("err = %v, want throttled", err)
	}
	// Instrumenting again on the same registry shares the collectors.
	cloud.Instrument(e.fleet, reg)

	want := map[string]float64{
		`aerostat_ec2_requests_total{operation="DescribeInstances",result="success"}`:    1,
		`aerostat_ec2_requests_total{operation="DescribeInstances",result="throttled"}`:  1,
		`aerostat_ec2_api_calls_total{operation="DescribeInstances",result="success"}`:   3,
		`aerostat_ec2_api_calls_total{operation="DescribeInstances",result="throttled"}`: 3,
		`aerostat_ec2_request_duration_seconds{operation="DescribeInstances"}`:           2, // sample count
	}
	got := gather(t, reg)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for k := range got {
		if contains(k, "i-") {
			t.Errorf("metric %s has an instance id label", k)
		}
	}
}

func TestBudget(t *testing.T) {
	e := newEnv(t)
	e.fleet.Launch(2500, nil)
	c := e.client(t, cloud.EC2Options{CallsPerSecond: 1, Clock: e.clock})
	calls := make(chan cloud.APICall, 10)
	c.SetAPICallHook(func(call cloud.APICall) { calls <- call })
	done := make(chan error, 1)
	go func() {
		_, err := c.List(context.Background())
		done <- err
	}()
	for page := 1; page <= 3; page++ {
		if page > 1 {
			e.clock.WaitArmed(t, time.Second) // the budget's wait for this page
			e.clock.Step(999 * time.Millisecond)
			if n := e.srv.Calls("DescribeInstances"); n != page-1 {
				t.Fatalf("page %d: %d calls before the budget allowed it", page, n)
			}
			e.clock.Step(time.Millisecond)
		}
		call := <-calls
		if want := time.Duration(min(page-1, 1)) * time.Second; call.BudgetWait != want {
			t.Errorf("page %d waited %v, want %v", page, call.BudgetWait, want)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The budget is shared: a second listing right after waits too, and
	// gives up when its context ends.
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, err := c.List(ctx)
		done <- err
	}()
	e.clock.WaitArmed(t, time.Second) // the second listing waits for the budget
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want canceled", err)
	}
	if n := e.srv.Calls("DescribeInstances"); n != 3 {
		t.Errorf("calls = %d, want 3", n)
	}
}

func TestIsThrottled(t *testing.T) {
	tests := map[string]struct {
		err  error
		want bool
	}{
		"nil":                  {nil, false},
		"plain":                {errors.New("RequestLimitExceeded"), false},
		"request limit":        {apiErr("RequestLimitExceeded"), true},
		"throttling":           {apiErr("Throttling"), true},
		"wrapped":              {fmt.Errorf("describing: %w", apiErr("RequestLimitExceeded")), true},
		"joined":               {errors.Join(errors.New("quota"), apiErr("Throttling")), true},
		"not found":            {apiErr("InvalidInstanceID.NotFound"), false},
		"unauthorized":         {apiErr("UnauthorizedOperation"), false},
		"context cancellation": {context.Canceled, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := cloud.IsThrottled(tc.err); got != tc.want {
				t.Errorf("IsThrottled(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func BenchmarkListEC2(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			e := newEnv(b)
			e.fleet.Launch(n, map[string]string{"aerostat:service": "web"})
			c := e.client(b, cloud.EC2Options{})
			b.ResetTimer()
			for b.Loop() {
				got, err := c.List(context.Background(), cloud.Filter{Name: "tag:aerostat:service", Values: []string{"web"}})
				if err != nil || len(got) != n {
					b.Fatalf("listed %d, %v", len(got), err)
				}
			}
			b.ReportMetric(float64(e.srv.Calls("DescribeInstances"))/float64(b.N), "calls/op")
		})
	}
}

func apiErr(code string) error { return &smithyErr{code} }

type smithyErr struct{ code string }

func (e *smithyErr) Error() string                 { return e.code }
func (e *smithyErr) ErrorCode() string             { return e.code }
func (e *smithyErr) ErrorMessage() string          { return e.code }
func (e *smithyErr) ErrorFault() smithy.ErrorFault { return smithy.FaultUnknown }

func ids(in []naming.Instance) []string {
	out := make([]string, 0, len(in))
	for _, i := range in {
		out = append(out, i.ID)
	}
	return out
}

func sorted(s []string) []string {
	s = append([]string{}, s...)
	sort.Strings(s)
	return s
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// gather flattens a registry to "name{labels}" → value (histograms: sample count).
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName() + labels(m.GetLabel())
			switch {
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Histogram != nil:
				out[key] = float64(m.GetHistogram().GetSampleCount())
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

func labels(ls []*dto.LabelPair) string {
	if len(ls) == 0 {
		return ""
	}
	s := "{"
	for i, l := range ls {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprintf("%s=%q", l.GetName(), l.GetValue())
	}
	return s + "}"
}
