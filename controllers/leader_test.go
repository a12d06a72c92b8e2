package controllers_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	v1alpha1 "github.com/aerostat-io/aerostat/api/v1alpha1"
	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// countingStore counts one replica's ledger calls and signals each one.
type countingStore struct {
	ledger.Store
	calls  atomic.Int64
	writes atomic.Int64
	called chan struct{}
}

func newCountingStore(s ledger.Store) *countingStore {
	return &countingStore{Store: s, called: make(chan struct{}, 1)}
}

func (s *countingStore) touch() {
	s.calls.Add(1)
	select {
	case s.called <- struct{}{}:
	default:
	}
}

func (s *countingStore) Records(ctx context.Context, service string) ([]naming.Record, error) {
	s.touch()
	return s.Store.Records(ctx, service)
}

func (s *countingStore) Apply(ctx context.Context, changes []naming.Change) (int, error) {
	s.writes.Add(1)
	s.touch()
	return s.Store.Apply(ctx, changes)
}

// waitFor fails the test if ch does not deliver in a generous time (a hung
// test, not a speed assertion).
func waitFor[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(2 * time.Minute):
		t.Fatalf("timed out waiting for %s", what)
	}
}

type replica struct {
	mgr    manager.Manager
	store  *countingStore
	cancel context.CancelFunc
	done   <-chan struct{}
}

// TestLeaderElection: two controllers on one API server; only the Lease
// holder reconciles and writes, and the other takes over when it stops.
func TestLeaderElection(t *testing.T) {
	cfg, c := envtestClient(t)
	r := newRig(t)
	const svc = "elected"
	r.launch(5, svc)
	createService(t, c, v1alpha1.NamingServiceSpec{Service: svc})
	const leaseName = "aerostat-leader-test"

	start := func() *replica {
		rp := &replica{store: newCountingStore(r.store)}
		mgr := newTestManager(t, cfg, ctrl.Options{
			LeaderElection:                true,
			LeaderElectionID:              leaseName,
			LeaderElectionNamespace:       "default",
			LeaderElectionReleaseOnCancel: true,
			LeaseDuration:                 ptr.To(3 * time.Second),
			RenewDeadline:                 ptr.To(2 * time.Second),
			RetryPeriod:                   ptr.To(100 * time.Millisecond),
		})
		m, err := controllers.NewMetrics(prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		syncer := controllers.NewSyncer(controllers.SyncerOptions{Cloud: r.ec2, Store: rp.store, Clock: r.clock, Metrics: m})
		poller := controllers.NewPoller(time.Hour, r.clock)
		if err := mgr.Add(poller); err != nil {
			t.Fatal(err)
		}
		rec := &controllers.NamingServiceReconciler{Client: mgr.GetClient(), Syncer: syncer, Recorder: mgr.GetEventRecorderFor("test"), Clock: r.clock}
		if err := rec.SetupWithManager(mgr, poller.Ticks()); err != nil {
			t.Fatal(err)
		}
		rp.mgr = mgr
		rp.cancel, rp.done = startManager(t, mgr)
		return rp
	}
	a, b := start(), start()

	var leader, follower *replica
	select {
	case <-a.mgr.Elected():
		leader, follower = a, b
	case <-b.mgr.Elected():
		leader, follower = b, a
	case <-time.After(2 * time.Minute):
		t.Fatal("timed out waiting for a leader")
	}
	// The leader reconciles the existing NamingService as its controller
	// starts; wait for its writes to land.
	for len(r.bound(svc)) < 5 {
		waitFor(t, leader.store.called, "the leader's ledger calls")
	}
	// A spec change while both run reaches only the leader, which writes
	// the alias it asks for.
	ns := getService(t, c, svc)
	base := ns.DeepCopy()
	ns.Spec.Aliases.ByHostname = map[string][]string{svc + "-0": {svc + "-primary"}}
	// A merge patch: the leader's status writes must not make it conflict.
	if err := c.Patch(context.Background(), ns, client.MergeFrom(base)); err != nil {
		t.Fatalf("updating the NamingService: %v", err)
	}
	for !hasAlias(t, r, svc, svc+"-primary") {
		waitFor(t, leader.store.called, "the leader's pass after a spec change")
	}
	select {
	case <-follower.mgr.Elected():
		t.Fatal("both replicas are elected")
	default:
	}
	if n := follower.store.calls.Load(); n != 0 {
		t.Errorf("the follower made %d ledger calls, want 0", n)
	}
	var lease coordinationv1.Lease
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: leaseName}, &lease); err != nil {
		t.Fatalf("reading the lease: %v", err)
	}
	if ptr.Deref(lease.Spec.HolderIdentity, "") == "" {
		t.Error("the lease has no holder")
	}

	// Hand over: the leader stops (releasing the Lease), the follower is
	// elected and reconciles, and the old leader makes no further calls.
	leader.cancel()
	<-leader.done
	stopped := leader.store.calls.Load()
	waitFor(t, follower.mgr.Elected(), "the follower's election")
	waitFor(t, follower.store.called, "the new leader's pass")
	if n := leader.store.calls.Load(); n != stopped {
		t.Errorf("the stopped leader made %d more ledger calls", n-stopped)
	}
	if w := leader.store.writes.Load() + follower.store.writes.Load(); w < 1 {
		t.Errorf("no replica wrote the ledger")
	}
	if n := len(r.bound(svc)); n != 5 {
		t.Errorf("%d names bound after the handover, want 5", n)
	}
}

// hasAlias reports whether some record of service carries alias.
func hasAlias(t *testing.T, r *rig, service, alias string) bool {
	t.Helper()
	recs, err := r.store.Records(context.Background(), service)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if slices.Contains(rec.Aliases, alias) {
			return true
		}
	}
	return false
}
