package main

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	clocktesting "k8s.io/utils/clock/testing"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/aerostat-io/aerostat/internal/cloud/fake"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
)

// awsTestEnv points the AWS SDK at nothing real: fixed region and static
// credentials, no profile or endpoint from the machine.
func awsTestEnv(t *testing.T) {
	t.Helper()
	for k, v := range map[string]string{
		"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret",
		"AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
		"AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_EC2": "", "AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
}

// TestControllerStandaloneOnce runs `aerostat controller --standalone
// --once` against the fake EC2 server, reached through --ec2-endpoint or
// the SDK's AWS_ENDPOINT_URL_EC2, and checks the names it wrote and the
// metrics it registered on controller-runtime's registry.
func TestControllerStandaloneOnce(t *testing.T) {
	tests := map[string]struct {
		viaEnv bool
	}{
		"--ec2-endpoint":       {viaEnv: false},
		"AWS_ENDPOINT_URL_EC2": {viaEnv: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			awsTestEnv(t)
			fleet := fake.NewFleet(clocktesting.NewFakeClock(seedTime))
			ids := fleet.Launch(3, map[string]string{"aerostat:service": "web"})
			srv := fake.NewServer(fleet)
			defer srv.Close()
			db := ledgertest.Database(t)
			args := []string{"controller", "--standalone", "--once", "--server", ledgertest.URI(t), "--database", db,
				"--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--zap-log-level", "error"}
			if tc.viaEnv {
				t.Setenv("AWS_ENDPOINT_URL_EC2", srv.URL)
			} else {
				args = append(args, "--ec2-endpoint", srv.URL)
			}
			before := counter(t, "aerostat_ec2_requests_total", "success")
			if _, _, err := runCmd(t, args...); err != nil {
				t.Fatalf("controller --once: %v", err)
			}
			if n := srv.Calls("DescribeInstances"); n == 0 {
				t.Fatal("the fake EC2 server saw no DescribeInstances call")
			}
			recs, err := ledgertest.Open(t, ledger.Options{Database: db}).Records(context.Background(), "web")
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, r := range recs {
				got[r.InstanceID] = r.Hostname
			}
			for _, id := range ids {
				if !strings.HasPrefix(got[id], "web-") {
					t.Errorf("instance %s named %q, want web-N (records %v)", id, got[id], got)
				}
			}
			if after := counter(t, "aerostat_ec2_requests_total", "success"); after <= before {
				t.Errorf("aerostat_ec2_requests_total{result=success} = %v after the pass, want more than %v", after, before)
			}
			for _, name := range []string{"aerostat_names_bound", "aerostat_reconcile_duration_seconds", "aerostat_ec2_listings_total", "aerostat_ec2_api_calls_total"} {
				if find(t, name) == nil {
					t.Errorf("%s is not registered on controller-runtime's registry", name)
				}
			}
		})
	}
}

// TestControllerOnceFailsUnobserved: --once exits with an error when EC2
// could not be listed, and writes nothing.
func TestControllerOnceFailsUnobserved(t *testing.T) {
	awsTestEnv(t)
	fleet := fake.NewFleet(clocktesting.NewFakeClock(seedTime))
	fleet.Launch(2, map[string]string{"aerostat:service": "web"})
	srv := fake.NewServer(fleet)
	defer srv.Close()
	// InvalidInstanceID.NotFound is not retried, so the pass fails at once.
	srv.NotFoundNext(100)
	db := ledgertest.Database(t)
	_, _, err := runCmd(t, "controller", "--standalone", "--once", "--server", ledgertest.URI(t), "--database", db,
		"--ec2-endpoint", srv.URL, "--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--zap-log-level", "error")
	if err == nil || !strings.Contains(err.Error(), "listing instances") {
		t.Fatalf("controller --once with EC2 failing: err = %v, want a listing error", err)
	}
	rev, err := ledgertest.Open(t, ledger.Options{Database: db}).Rev(context.Background())
	if err != nil || rev != 0 {
		t.Errorf("ledger rev = %d (%v) after an unobserved pass, want 0", rev, err)
	}
}

// find returns the metric family called name on controller-runtime's registry.
func find(t *testing.T, name string) *dto.MetricFamily {
	t.Helper()
	mfs, err := crmetrics.Registry.(prometheus.Gatherer).Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	return nil
}

// counter sums the counter called name over the series with result=result.
func counter(t *testing.T, name, result string) float64 {
	t.Helper()
	mf := find(t, name)
	if mf == nil {
		return 0
	}
	sum := 0.0
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "result" && l.GetValue() == result {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// A standalone controller whose feed or metrics address is taken fails at
// start with an error naming the server, instead of running on without it.
func TestControllerFailsWhenAServerCannotBind(t *testing.T) {
	awsTestEnv(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	fleet := fake.NewFleet(clocktesting.NewFakeClock(seedTime))
	srv := fake.NewServer(fleet)
	defer srv.Close()
	tests := map[string]struct {
		flags []string
		want  string
	}{
		"metrics": {flags: []string{"--metrics-bind-address", taken.Addr().String()}, want: "metrics server"},
		"feed":    {flags: []string{"--metrics-bind-address", "0", "--feed-bind-address", taken.Addr().String(), "--feed-insecure"}, want: "feed server"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"controller", "--standalone", "--server", ledgertest.URI(t), "--database", ledgertest.Database(t),
				"--ec2-endpoint", srv.URL, "--health-probe-bind-address", "0", "--zap-log-level", "error"}, tt.flags...)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang guard: the error comes at start
			defer cancel()
			root := newRootCmd()
			root.SetOut(io.Discard)
			root.SetErr(io.Discard)
			root.SetArgs(args)
			err := root.ExecuteContext(ctx)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "address already in use") {
				t.Fatalf("controller with %s's address taken: err = %v, want %q and address already in use", name, err, tt.want)
			}
		})
	}
}
