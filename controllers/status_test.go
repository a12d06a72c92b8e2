package controllers_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1alpha1 "github.com/aerostat-io/aerostat/api/v1alpha1"
)

// statusWrites counts the status updates and patches sent to the API
// server, by object name.
type statusWrites struct {
	mu     sync.Mutex
	byName map[string]int
}

func (w *statusWrites) count(name string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.byName[name]
}

// countingClient is an envtest client that counts status writes.
func countingClient(t *testing.T) (client.Client, *statusWrites) {
	t.Helper()
	cfg, _ := envtestClient(t)
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: kube.scheme})
	if err != nil {
		t.Fatalf("envtest client: %v", err)
	}
	w := &statusWrites{byName: map[string]int{}}
	note := func(obj client.Object) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.byName[obj.GetName()]++
	}
	return interceptor.NewClient(c, interceptor.Funcs{
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			note(obj)
			return c.SubResource(sub).Update(ctx, obj, opts...)
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			note(obj)
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	}), w
}

// TestIdlePassesWriteNoStatus: a pass that changes nothing a user sees
// sends no status write, even while time passes and another service's
// writes move the store's rev (neither is shown to a user); the first
// pass after a real change writes once.
func TestIdlePassesWriteNoStatus(t *testing.T) {
	c, writes := countingClient(t)
	r := newRig(t)
	const quiet, busy = "quietsvc", "busysvc"
	r.launch(3, quiet)
	r.launch(1, busy)
	createService(t, c, v1alpha1.NamingServiceSpec{Service: quiet})
	createService(t, c, v1alpha1.NamingServiceSpec{Service: busy})
	rc := r.reconciler(c, r.store)

	rc.pass(t, quiet)
	rc.pass(t, busy)
	if n := writes.count(quiet); n != 1 {
		t.Fatalf("first pass wrote the status %d times, want 1", n)
	}
	before := getService(t, c, quiet)

	const idle = 10
	for range idle {
		r.clock.Step(time.Minute)
		r.launch(1, busy)
		storeRev := r.rev()
		rc.pass(t, busy)
		if r.rev() == storeRev {
			t.Fatal("the busy service's pass wrote nothing: the store's rev did not move, so the idle passes prove nothing")
		}
		rc.pass(t, quiet)
	}
	if n := writes.count(quiet) - 1; n != 0 {
		t.Errorf("%d idle passes wrote the status %d times, want 0", idle, n)
	}
	after := getService(t, c, quiet)
	if after.ResourceVersion != before.ResourceVersion {
		t.Errorf("resourceVersion moved over idle passes: %s -> %s", before.ResourceVersion, after.ResourceVersion)
	}
	if got := writes.count(busy); got != 1+idle {
		t.Errorf("busy service's status written %d times over %d changing passes, want %d", got, idle+1, 1+idle)
	}

	// A real change: one more instance is named, and the next pass writes
	// the status once, with the new count and the service's own rev.
	r.launch(1, quiet)
	rc.pass(t, quiet)
	if n := writes.count(quiet) - 1; n != 1 {
		t.Errorf("the pass that named a new instance wrote the status %d times, want 1", n)
	}
	ns := getService(t, c, quiet)
	if ns.Status.Bound != 4 {
		t.Errorf("status.bound = %d, want 4", ns.Status.Bound)
	}
	if ns.Status.Rev <= before.Status.Rev {
		t.Errorf("status.rev = %d, want above %d after the service's own write", ns.Status.Rev, before.Status.Rev)
	}
	if !ns.Status.LastSyncTime.After(before.Status.LastSyncTime.Time) {
		t.Errorf("lastSyncTime = %v, want after %v (stamped on the write)", ns.Status.LastSyncTime, before.Status.LastSyncTime)
	}
	rc.pass(t, quiet)
	if n := writes.count(quiet) - 2; n != 0 {
		t.Errorf("the idle pass after the change wrote the status %d times, want 0", n)
	}
}

// TestEventsHealthyCondition: with events, a pass reports the event
// source's health in EventsHealthy. Changes no event announced (the queue
// silent) turn it False/EventsFailing, and that is a status write even on
// an otherwise idle pass; an event arriving turns it True again.
func TestEventsHealthyCondition(t *testing.T) {
	c, writes := countingClient(t)
	w := newWakerRig(t, c)
	const svc = "healthsvc"
	w.launch(1, svc)
	createService(t, c, v1alpha1.NamingServiceSpec{Service: svc})
	rc := w.reconciler(c, w.store)
	rc.Events = w.waker
	w.run(t)

	rc.pass(t, svc)
	if cond := condition(getService(t, c, svc), v1alpha1.ConditionEventsHealthy); cond.Status != metav1.ConditionTrue {
		t.Fatalf("EventsHealthy after the first pass = %+v, want True", cond)
	}
	// The poll keeps finding changes no event announced.
	for i := 0; ; i++ {
		if ok, _ := w.src.Health(); !ok {
			break
		}
		if i == 10 {
			t.Fatal("the source stayed healthy through 10 unannounced changes")
		}
		w.src.Observed(context.Background(), []string{fmt.Sprintf("i-unannounced%d", i)})
	}
	w.clock.Step(time.Minute)
	before := writes.count(svc)
	rc.pass(t, svc)
	if n := writes.count(svc) - before; n != 1 {
		t.Errorf("the pass that saw the source fail wrote the status %d times, want 1", n)
	}
	cond := condition(getService(t, c, svc), v1alpha1.ConditionEventsHealthy)
	if cond.Status != metav1.ConditionFalse || cond.Reason != v1alpha1.ReasonEventsFailing {
		t.Errorf("EventsHealthy = %s/%s, want False/%s", cond.Status, cond.Reason, v1alpha1.ReasonEventsFailing)
	}
	if !cond.LastTransitionTime.Time.Equal(w.clock.Now()) {
		t.Errorf("lastTransitionTime = %v, want the failing pass's %v", cond.LastTransitionTime.Time, w.clock.Now())
	}

	// An event arrives: the queue delivers again.
	w.sqs.Follow(w.fleet)
	w.launch(1, svc)
	until(t, "the source healthy again", func() bool { ok, _ := w.src.Health(); return ok })
	w.clock.Step(time.Minute)
	rc.pass(t, svc)
	cond = condition(getService(t, c, svc), v1alpha1.ConditionEventsHealthy)
	if cond.Status != metav1.ConditionTrue || cond.Reason != v1alpha1.ReasonEventsReceived {
		t.Errorf("EventsHealthy after an event = %s/%s, want True/%s", cond.Status, cond.Reason, v1alpha1.ReasonEventsReceived)
	}
	if !cond.LastTransitionTime.Time.Equal(w.clock.Now()) {
		t.Errorf("lastTransitionTime = %v, want the recovering pass's %v", cond.LastTransitionTime.Time, w.clock.Now())
	}
}
