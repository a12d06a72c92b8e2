package controllers_test

import (
	"testing"

	ctrl "sigs.k8s.io/controller-runtime"

	v1alpha1 "github.com/aerostat-io/aerostat/api/v1alpha1"
	"github.com/aerostat-io/aerostat/controllers"
)

// TestPollTickReconcilesEveryService: under a running manager, one poll
// tick (the channel source) re-runs the pass of every NamingService, so
// instances launched since the last pass get names without any change to
// the NamingServices.
func TestPollTickReconcilesEveryService(t *testing.T) {
	cfg, c := envtestClient(t)
	r := newRig(t)
	services := []string{"polled-a", "polled-b"}
	for _, svc := range services {
		r.launch(2, svc)
		createService(t, c, v1alpha1.NamingServiceSpec{Service: svc})
	}
	mgr := newTestManager(t, cfg, ctrl.Options{})
	store := newCountingStore(r.store)
	poller := controllers.NewPoller(controllers.DefaultPollInterval, r.clock)
	if err := mgr.Add(poller); err != nil {
		t.Fatal(err)
	}
	rec := &controllers.NamingServiceReconciler{Client: mgr.GetClient(), Syncer: r.syncer(store), Clock: r.clock}
	if err := rec.SetupWithManager(mgr, poller.Ticks()); err != nil {
		t.Fatal(err)
	}
	startManager(t, mgr)

	named := func(n int) bool {
		for _, svc := range services {
			if len(r.bound(svc)) != n {
				return false
			}
		}
		return true
	}
	// The manager's first passes (one per NamingService as the controller
	// starts) name the first instances.
	for !named(2) {
		waitFor(t, store.called, "the first passes")
	}
	for _, svc := range services {
		r.launch(1, svc)
	}
	// No NamingService changed: only a tick can name the new instances.
	// Step the fake clock once the poller's ticker exists (the rig's
	// clock may hold other timers, so any waiter is not enough).
	r.clock.WaitArmed(t, controllers.DefaultPollInterval)
	r.clock.Step(controllers.DefaultPollInterval)
	for !named(3) {
		waitFor(t, store.called, "the passes after a poll tick")
	}
}
