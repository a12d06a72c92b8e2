package controllers_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zapcore"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	v1alpha1 "github.com/aerostat-io/aerostat/api/v1alpha1"
	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/cloud/fake"
	"github.com/aerostat-io/aerostat/internal/fakeclock"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
	"github.com/aerostat-io/aerostat/internal/store/embedded"
)

// kube is one envtest API server shared by the package's tests, started on
// first use and stopped by TestMain.
var kube struct {
	once   sync.Once
	env    *envtest.Environment
	cfg    *rest.Config
	client client.Client
	scheme *runtime.Scheme
	err    error
}

// TestMain stops the shared envtest and embedded store when the tests end.
// The store is started here (unless AEROSTAT_TEST_MONGODB_URI points at a
// real MongoDB) so this package can stop it alongside envtest.
func TestMain(m *testing.M) {
	logf.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapLevel())))
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if os.Getenv(ledgertest.EnvURI) == "" {
		dir, err := os.MkdirTemp("", "aerostat-controllers-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		srv, err := embedded.Start(context.Background(), embedded.Options{DataDir: dir})
		if err != nil {
			fmt.Fprintln(os.Stderr, "starting embedded store:", err)
			return 1
		}
		defer srv.Close()
		os.Setenv(ledgertest.EnvURI, srv.URI())
	}
	defer func() {
		if kube.env != nil {
			_ = kube.env.Stop()
		}
	}()
	return m.Run()
}

// zapLevel keeps test output to errors unless AEROSTAT_TEST_VERBOSE is set.
func zapLevel() zapcore.Level {
	if os.Getenv("AEROSTAT_TEST_VERBOSE") != "" {
		return zapcore.DebugLevel
	}
	return zapcore.ErrorLevel
}

// envtestClient starts envtest (once) and returns its config and client,
// or skips the test when the API server binaries are not available.
func envtestClient(t testing.TB) (*rest.Config, client.Client) {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is unset: run hack/setup-envtest.sh and export its output (make test does)")
	}
	kube.once.Do(func() {
		kube.scheme = runtime.NewScheme()
		if kube.err = clientgoscheme.AddToScheme(kube.scheme); kube.err != nil {
			return
		}
		if kube.err = v1alpha1.AddToScheme(kube.scheme); kube.err != nil {
			return
		}
		kube.env = &envtest.Environment{
			CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
			ErrorIfCRDPathMissing: true,
		}
		if kube.cfg, kube.err = kube.env.Start(); kube.err != nil {
			return
		}
		kube.client, kube.err = client.New(kube.cfg, client.Options{Scheme: kube.scheme})
	})
	if kube.err != nil {
		t.Fatalf("starting envtest: %v", kube.err)
	}
	return kube.cfg, kube.client
}

// rig is one test's world: a fake EC2 fleet behind the wire-level fake
// server, the real SDK adapter, a fresh ledger database and a fake clock.
type rig struct {
	t      testing.TB
	clock  *fakeclock.Clock
	fleet  *fake.Fleet
	server *fake.Server
	ec2    *cloud.EC2
	store  ledger.Store
}

var epoch = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

func newRig(t testing.TB) *rig {
	t.Helper()
	clk := fakeclock.New(epoch)
	fleet := fake.NewFleet(clk)
	srv := fake.NewServer(fleet)
	t.Cleanup(srv.Close)
	ec2, err := cloud.NewEC2(context.Background(), cloud.EC2Options{
		Region:   "us-east-1",
		Endpoint: srv.URL,
		// One attempt: a throttled call must surface at once, not after
		// the retryer's real-time backoff.
		MaxAttempts:    1,
		CallsPerSecond: -1,
		Credentials:    credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	})
	if err != nil {
		t.Fatalf("ec2 client: %v", err)
	}
	return &rig{t: t, clock: clk, fleet: fleet, server: srv, ec2: ec2, store: ledgertest.New(t)}
}

func (r *rig) syncer(store ledger.Store) *controllers.Syncer {
	r.t.Helper()
	m, err := controllers.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		r.t.Fatal(err)
	}
	return controllers.NewSyncer(controllers.SyncerOptions{Cloud: r.ec2, Store: store, Clock: r.clock, Metrics: m})
}

func (r *rig) launch(n int, service string) []string {
	return r.fleet.Launch(n, map[string]string{controllers.TagService: service})
}

// bound returns hostname → instance id of the service's bound records.
func (r *rig) bound(service string) map[string]string {
	r.t.Helper()
	recs, err := r.store.Records(context.Background(), service)
	if err != nil {
		r.t.Fatalf("reading records: %v", err)
	}
	out := map[string]string{}
	for _, rec := range recs {
		if !rec.Free() {
			out[rec.Hostname] = rec.InstanceID
		}
	}
	return out
}

func (r *rig) rev() int64 {
	r.t.Helper()
	rev, err := r.store.Rev(context.Background())
	if err != nil {
		r.t.Fatalf("reading rev: %v", err)
	}
	return rev
}

// checkConsistent fails on a name bound twice or an instance with two
// names in one service.
func checkConsistent(t testing.TB, recs []naming.Record) {
	t.Helper()
	hosts, insts := map[string]bool{}, map[string]string{}
	for _, r := range recs {
		if hosts[r.Hostname] {
			t.Errorf("hostname %s has two records", r.Hostname)
		}
		hosts[r.Hostname] = true
		if r.Free() {
			continue
		}
		if other, ok := insts[r.InstanceID]; ok {
			t.Errorf("instance %s holds %s and %s", r.InstanceID, other, r.Hostname)
		}
		insts[r.InstanceID] = r.Hostname
	}
}

// reconciler is a NamingService reconciler wired to the rig, with a fake
// event recorder, for tests that call Reconcile directly.
type reconciler struct {
	*controllers.NamingServiceReconciler
	events *record.FakeRecorder
}

func (r *rig) reconciler(c client.Client, store ledger.Store) reconciler {
	ev := record.NewFakeRecorder(100000)
	return reconciler{&controllers.NamingServiceReconciler{
		Client: c, Syncer: r.syncer(store), Recorder: ev, Clock: r.clock,
	}, ev}
}

// drainEvents returns the events recorded so far, by reason.
func (rc reconciler) drainEvents() map[string]int {
	out := map[string]int{}
	for {
		select {
		case e := <-rc.events.Events:
			var typ, reason string
			fmt.Sscan(e, &typ, &reason)
			out[reason]++
		default:
			return out
		}
	}
}

func (rc reconciler) pass(t testing.TB, name string) ctrl.Result {
	t.Helper()
	res, err := rc.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Name: name}})
	if err != nil {
		t.Fatalf("reconcile %s: %v", name, err)
	}
	return res
}

// createService creates a NamingService named like its service, with a
// unique name per test so tests can share one API server.
func createService(t testing.TB, c client.Client, spec v1alpha1.NamingServiceSpec) *v1alpha1.NamingService {
	t.Helper()
	ns := &v1alpha1.NamingService{ObjectMeta: metav1.ObjectMeta{Name: spec.Service}, Spec: spec}
	if err := c.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating NamingService %s: %v", spec.Service, err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), ns) })
	return ns
}

func getService(t testing.TB, c client.Client, name string) *v1alpha1.NamingService {
	t.Helper()
	var ns v1alpha1.NamingService
	if err := c.Get(context.Background(), client.ObjectKey{Name: name}, &ns); err != nil {
		t.Fatalf("getting NamingService %s: %v", name, err)
	}
	return &ns
}

func condition(ns *v1alpha1.NamingService, typ string) metav1.Condition {
	for _, c := range ns.Status.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return metav1.Condition{Type: typ, Status: "Unknown"}
}
