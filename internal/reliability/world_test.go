package reliability

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	clocktesting "k8s.io/utils/clock/testing"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/cloud/fake"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
)

func TestMain(m *testing.M) {
	// The controller logs through controller-runtime's root logger; keep
	// the suite's output to the tests' own lines.
	logf.SetLogger(logr.Discard())
	ledgertest.Main(m)
}

var epoch = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

// world is one test's fleet behind the wire-level fake EC2 server, the
// real SDK adapter, a fresh ledger database and a fake clock.
type world struct {
	t      testing.TB
	clock  *clocktesting.FakeClock
	fleet  *fake.Fleet
	server *fake.Server
	ec2    *cloud.EC2
	store  *ledger.Mongo
	db     string
	reg    *prometheus.Registry
}

func newWorld(t testing.TB) *world {
	t.Helper()
	clk := clocktesting.NewFakeClock(epoch)
	fleet := fake.NewFleet(clk)
	srv := fake.NewServer(fleet)
	t.Cleanup(srv.Close)
	ec2, err := cloud.NewEC2(context.Background(), cloud.EC2Options{
		Region: "us-east-1", Endpoint: srv.URL,
		// One attempt: a fault must surface at once, not after the
		// retryer's real-time backoff.
		MaxAttempts: 1, CallsPerSecond: -1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	})
	if err != nil {
		t.Fatalf("ec2 client: %v", err)
	}
	db := ledgertest.Database(t)
	return &world{t: t, clock: clk, fleet: fleet, server: srv, ec2: ec2, db: db,
		store: ledgertest.Open(t, ledger.Options{Database: db}), reg: prometheus.NewRegistry()}
}

// standalone returns a controller (Syncer + Standalone loop) writing to store.
func (w *world) standalone(store ledger.Store) *controllers.Standalone {
	w.t.Helper()
	m, err := controllers.NewMetrics(w.reg)
	if err != nil {
		// A second controller in one world shares the first one's metrics.
		m = nil
	}
	s := controllers.NewSyncer(controllers.SyncerOptions{Cloud: w.ec2, Store: store, Clock: w.clock, Metrics: m})
	return controllers.NewStandalone(controllers.StandaloneOptions{Syncer: s, Cloud: w.ec2, Store: store, Clock: w.clock})
}

func (w *world) launch(n int, service, scheme string) []string {
	tags := map[string]string{controllers.TagService: service}
	if scheme != "" {
		tags[controllers.TagServiceType] = scheme
	}
	return w.fleet.Launch(n, tags)
}

func (w *world) records() []naming.Record {
	w.t.Helper()
	recs, err := w.store.Records(context.Background(), "")
	if err != nil {
		w.t.Fatalf("reading records: %v", err)
	}
	return recs
}

func (w *world) rev() int64 {
	w.t.Helper()
	rev, err := w.store.Rev(context.Background())
	if err != nil {
		w.t.Fatalf("reading rev: %v", err)
	}
	return rev
}

// live maps every pending or running instance to its service tag; dead
// holds the shutting-down and terminated ones.
func (w *world) live() (live map[string]string, dead map[string]bool) {
	live, dead = map[string]string{}, map[string]bool{}
	for _, in := range w.fleet.Instances() {
		switch in.State {
		case naming.StateRunning, naming.StatePending:
			live[in.ID] = in.Tags[controllers.TagService]
		case naming.StateShuttingDown, naming.StateTerminated:
			dead[in.ID] = true
		}
	}
	return live, dead
}

// checkRaw fails on any hostname held by two documents.
func (w *world) checkRaw() {
	w.t.Helper()
	docs, err := ReadDocs(context.Background(), w.store.Client().Database(w.db))
	if err != nil {
		w.t.Fatal(err)
	}
	for _, v := range CheckUnique(docs) {
		w.t.Error(v)
	}
}

// checkSettled fails unless every live instance holds exactly one name.
func (w *world) checkSettled() {
	w.t.Helper()
	live, dead := w.live()
	for _, v := range CheckSettled(w.records(), live, dead) {
		w.t.Error(v)
	}
}

// bound returns hostname → instance of the bound records.
func (w *world) bound() map[string]string {
	out := map[string]string{}
	for _, r := range w.records() {
		if !r.Free() {
			out[r.Hostname] = r.InstanceID
		}
	}
	return out
}

// counter reads a counter of w.reg with the given label value.
func (w *world) counter(name, label, value string) float64 {
	w.t.Helper()
	mfs, err := w.reg.Gather()
	if err != nil {
		w.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == label && l.GetValue() == value }) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
