package controllers_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/aerostat-io/aerostat/api/v1alpha1"
	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// TestReleaseBudgetHoldsAcrossPassesAndRestarts: a listing that misses
// most of a service but still looks complete frees at most the budget
// (50 % of the names bound) within the release window, whatever the number
// of passes and however often the controller restarts (a new Syncer, as
// after a crash or a leader change, reading through a new Cache); once the
// window has passed, releases go on.
func TestReleaseBudgetHoldsAcrossPassesAndRestarts(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	const svc = "budget"
	service := minuteGraceService(svc)
	window := service.Policy.Reap.ReleaseWindow
	ids := r.launch(20, svc)

	newSyncer := func() (*controllers.Syncer, *prometheus.Registry) {
		reg := prometheus.NewRegistry()
		m, err := controllers.NewMetrics(reg)
		if err != nil {
			t.Fatal(err)
		}
		store := ledger.NewCache(r.store, ledger.FollowerOptions{})
		return controllers.NewSyncer(controllers.SyncerOptions{Cloud: r.ec2, Store: store, Clock: r.clock, Metrics: m}), reg
	}
	sync := func(s *controllers.Syncer) controllers.Pass {
		t.Helper()
		pass, err := s.Sync(ctx, service)
		if err != nil || pass.ObserveErr != nil {
			t.Fatalf("pass: %v / %v", err, pass.ObserveErr)
		}
		return pass
	}
	s, _ := newSyncer()
	sync(s)
	if n := len(r.bound(svc)); n != 20 {
		t.Fatalf("%d bound after the first pass, want 20", n)
	}

	// The wrong listing: 18 of 20 instances missing, not terminated.
	r.fleet.Remove(ids[2:]...)
	sync(s) // starts the grace period
	r.clock.Step(time.Minute)
	released := r.clock.Now()
	if p := sync(s); p.Plan.Reaped != 10 || p.Plan.OverBudget != 0 {
		t.Fatalf("first pass past the grace period reaped %d (over budget %d), want 10 (0)", p.Plan.Reaped, p.Plan.OverBudget)
	}
	if n := len(r.bound(svc)); n != 10 {
		t.Fatalf("%d bound after the first release, want 10", n)
	}

	// Pass after pass, restart after restart: the per-pass cap alone would
	// free 5, then 3, 1, 1... within minutes.
	passes := 0
	for r.clock.Now().Before(released.Add(window - time.Minute)) {
		s, reg := newSyncer()
		sync(s) // a new controller starts its grace periods again
		r.clock.Step(time.Minute)
		p := sync(s)
		passes++
		if p.Plan.Reaped != 0 || p.Plan.OverBudget != 5 || len(p.Plan.Deferred) != 8 {
			t.Fatalf("pass at +%v: reaped %d, over budget %d, deferred %d; want 0, 5 (the per-pass cap's 5 of 10), 8",
				r.clock.Since(released), p.Plan.Reaped, p.Plan.OverBudget, len(p.Plan.Deferred))
		}
		if v := gauge(t, reg, "aerostat_releases_over_budget", svc); v != 5 {
			t.Fatalf("aerostat_releases_over_budget = %v, want 5", v)
		}
		if n := len(r.bound(svc)); n != 10 {
			t.Fatalf("%d bound at +%v within the window, want 10", n, r.clock.Since(released))
		}
	}
	if passes < 5 {
		t.Fatalf("only %d passes inside the window; the test proves nothing", passes)
	}

	// After the window, the budget is counted afresh from the 10 bound.
	r.clock.SetTime(released.Add(window))
	if p := sync(s); p.Plan.Reaped != 5 {
		t.Fatalf("pass after the window reaped %d, want 5 (50%% of the 10 bound)", p.Plan.Reaped)
	}
	if n := len(r.bound(svc)); n != 5 {
		t.Errorf("%d bound after the window, want 5", n)
	}
}

// TestReleaseBudgetCondition: releases refused by the budget make the
// NamingService Degraded with reason ReleaseBudget and record a Warning
// Event, as the per-pass cap does with ReapCapped.
func TestReleaseBudgetCondition(t *testing.T) {
	_, c := envtestClient(t)
	r := newRig(t)
	const svc = "overbudget"
	ids := r.launch(20, svc)
	createService(t, c, v1alpha1.NamingServiceSpec{Service: svc, ReapPolicy: v1alpha1.ReapPolicy{MaxReleasePercent: ptr.To[int32](50)}})
	rc := r.reconciler(c, r.store)
	rc.pass(t, svc)
	if err := r.fleet.Terminate(ids[:15]...); err != nil {
		t.Fatal(err)
	}
	rc.pass(t, svc) // releases 10 of 20: the whole budget
	rc.drainEvents()
	r.clock.Step(time.Minute)
	rc.pass(t, svc) // the per-pass cap would release 5 of the 10 left
	if n := len(r.bound(svc)); n != 10 {
		t.Errorf("%d bound, want 10 (the budget spent by the first release)", n)
	}
	ns := getService(t, c, svc)
	if cond := condition(ns, v1alpha1.ConditionDegraded); cond.Status != metav1.ConditionTrue || cond.Reason != v1alpha1.ReasonReleaseBudget {
		t.Errorf("Degraded = %s/%s, want True/%s", cond.Status, cond.Reason, v1alpha1.ReasonReleaseBudget)
	}
	if cond := condition(ns, v1alpha1.ConditionReady); cond.Status != metav1.ConditionFalse {
		t.Errorf("Ready = %s, want False", cond.Status)
	}
	if ev := rc.drainEvents(); ev[v1alpha1.EventReleaseBudget] != 1 || ev[v1alpha1.EventReapCapped] != 0 {
		t.Errorf("events = %v, want one %s and no %s", ev, v1alpha1.EventReleaseBudget, v1alpha1.EventReapCapped)
	}
}

// TestReleaseBudgetAbsentWithoutReleaseLog: through a Cache over a store
// that keeps no release log, passes bind and reap under the per-pass cap
// alone (the documented fallback) instead of failing on the budget read,
// which left every launch unnamed.
func TestReleaseBudgetAbsentWithoutReleaseLog(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	const svc = "nolog"
	service := minuteGraceService(svc)
	ids := r.launch(4, svc)
	storeOnly := struct{ ledger.Store }{r.store} // hides the release log and policies
	s := controllers.NewSyncer(controllers.SyncerOptions{Cloud: r.ec2, Store: ledger.NewCache(storeOnly, ledger.FollowerOptions{}), Clock: r.clock})
	if _, err := s.Sync(ctx, service); err != nil {
		t.Fatalf("first pass: %v", err)
	}
	r.fleet.Remove(ids[:2]...)
	if _, err := s.Sync(ctx, service); err != nil {
		t.Fatalf("pass starting the grace period: %v", err)
	}
	r.clock.Step(time.Minute)
	p, err := s.Sync(ctx, service)
	if err != nil {
		t.Fatalf("reaping pass: %v", err)
	}
	if p.Plan.Reaped != 2 || p.Plan.OverBudget != 0 {
		t.Fatalf("reaped %d (over budget %d), want 2 (0): the per-pass cap alone", p.Plan.Reaped, p.Plan.OverBudget)
	}
	if n := len(r.bound(svc)); n != 2 {
		t.Errorf("%d bound, want 2", n)
	}
}

// minuteGraceService is an iterative service with the default reap policy
// but a one-minute grace period, so that a test frees names with one
// clock step between two passes.
func minuteGraceService(svc string) controllers.Service {
	reap := controllers.DefaultReap()
	reap.GracePeriod = time.Minute
	return controllers.Service{Policy: naming.Policy{Service: svc, Scheme: naming.Iterative, Reap: reap}}
}
