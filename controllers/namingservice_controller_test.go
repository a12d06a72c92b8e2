package controllers_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/aerostat-io/aerostat/api/v1alpha1"
	"github.com/aerostat-io/aerostat/internal/naming"
)

func hostnames(service string, ords ...int) []string {
	out := make([]string, len(ords))
	for i, n := range ords {
		out[i] = fmt.Sprintf("%s-%d", service, n)
	}
	return out
}

func upTo(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestIterativeLifecycle walks one iterative service through its life:
// a fresh fleet of 20 is named, a steady pass writes nothing, terminated
// instances are released at once and vanished ones after the grace
// period, and new instances fill the smallest gaps.
func TestIterativeLifecycle(t *testing.T) {
	_, c := envtestClient(t)
	r := newRig(t)
	ctx := context.Background()
	const svc = "web"
	ids := r.launch(20, svc)
	createService(t, c, v1alpha1.NamingServiceSpec{Service: svc})
	rc := r.reconciler(c, r.store)

	// Fresh fleet of 20: every instance named web-0…web-19.
	rc.pass(t, svc)
	got := r.bound(svc)
	if !sameSet(keys(got), hostnames(svc, upTo(20)...)) {
		t.Fatalf("bound after first pass = %v, want web-0…web-19", keys(got))
	}
	if ev := rc.drainEvents(); ev[v1alpha1.EventNameBound] != 20 {
		t.Errorf("events = %v, want 20 %s", ev, v1alpha1.EventNameBound)
	}
	ns := getService(t, c, svc)
	if ns.Status.Bound != 20 || ns.Status.Gaps != 0 || ns.Status.Unnamed != 0 || len(ns.Status.Members) != 20 {
		t.Errorf("status counts = bound %d gaps %d unnamed %d members %d, want 20/0/0/20",
			ns.Status.Bound, ns.Status.Gaps, ns.Status.Unnamed, len(ns.Status.Members))
	}
	if cond := condition(ns, v1alpha1.ConditionReady); cond.Status != metav1.ConditionTrue {
		t.Errorf("Ready = %s (%s), want True", cond.Status, cond.Message)
	}
	if ns.Status.ObservedGeneration != ns.Generation {
		t.Errorf("observedGeneration = %d, want %d", ns.Status.ObservedGeneration, ns.Generation)
	}
	byID := map[string]string{}
	for h, id := range got {
		byID[id] = h
	}

	// Steady state: a pass over an unchanged fleet writes nothing.
	before := r.rev()
	rc.pass(t, svc)
	if after := r.rev(); after != before {
		t.Errorf("steady-state pass moved the ledger rev from %d to %d", before, after)
	}

	// 3 terminated (seen terminated: released at once) and 2 gone from
	// listings (released only after the 5 minute grace period).
	terminated, vanished := []string{ids[3], ids[7], ids[12]}, []string{ids[15], ids[18]}
	if err := r.fleet.Terminate(terminated...); err != nil {
		t.Fatal(err)
	}
	r.fleet.Remove(vanished...)
	rc.pass(t, svc)
	if n := len(r.bound(svc)); n != 17 {
		t.Errorf("after terminating 3: %d bound, want 17", n)
	}
	r.clock.Step(4 * time.Minute)
	rc.pass(t, svc)
	if n := len(r.bound(svc)); n != 17 {
		t.Errorf("4m after 2 vanished: %d bound, want 17 (grace not over)", n)
	}
	r.clock.Step(2 * time.Minute)
	rc.pass(t, svc)
	got = r.bound(svc)
	if len(got) != 15 {
		t.Errorf("6m after 2 vanished: %d bound, want 15", len(got))
	}
	ns = getService(t, c, svc)
	if ns.Status.Gaps != 5 {
		t.Errorf("status.gaps = %d, want 5", ns.Status.Gaps)
	}
	if ev := rc.drainEvents(); ev[v1alpha1.EventNameReleased] != 5 {
		t.Errorf("events = %v, want 5 %s", ev, v1alpha1.EventNameReleased)
	}

	// 3 launched: they take the smallest gaps, 3, 7 and 12.
	fresh := r.launch(3, svc)
	rc.pass(t, svc)
	got = r.bound(svc)
	for _, id := range fresh {
		h := ""
		for host, inst := range got {
			if inst == id {
				h = host
			}
		}
		if !slices.Contains([]string{byID[ids[3]], byID[ids[7]], byID[ids[12]]}, h) {
			t.Errorf("new instance %s named %q, want one of the smallest gaps %s %s %s", id, h, byID[ids[3]], byID[ids[7]], byID[ids[12]])
		}
	}
	recs, _ := r.store.Records(ctx, svc)
	checkConsistent(t, recs)
}

// TestMasterfulMasterTerminated: when the master goes, a new node (the
// refill rule puts the master name first) becomes master.
func TestMasterfulMasterTerminated(t *testing.T) {
	_, c := envtestClient(t)
	r := newRig(t)
	const svc = "db"
	first := r.launch(1, svc)
	r.clock.Step(time.Minute)
	r.launch(2, svc)
	createService(t, c, v1alpha1.NamingServiceSpec{Service: svc, Scheme: "Masterful"})
	rc := r.reconciler(c, r.store)
	rc.pass(t, svc)
	got := r.bound(svc)
	if got["db-master"] != first[0] || len(got) != 3 {
		t.Fatalf("bound = %v, want db-master on the oldest instance %s and two slaves", got, first[0])
	}
	if m := getService(t, c, svc).Status.Master; m != first[0] {
		t.Errorf("status.master = %q, want %q", m, first[0])
	}
	rc.drainEvents()

	if err := r.fleet.Terminate(first[0]); err != nil {
		t.Fatal(err)
	}
	rc.pass(t, svc)
	newNode := r.launch(1, svc)
	rc.pass(t, svc)
	got = r.bound(svc)
	if got["db-master"] != newNode[0] {
		t.Errorf("db-master held by %q, want the new node %s (bound: %v)", got["db-master"], newNode[0], got)
	}
	if ev := rc.drainEvents(); ev[v1alpha1.EventMasterMoved] != 1 {
		t.Errorf("events = %v, want one %s", ev, v1alpha1.EventMasterMoved)
	}
	if m := getService(t, c, svc).Status.Master; m != newNode[0] {
		t.Errorf("status.master = %q, want %q", m, newNode[0])
	}
}

// TestUnobservedListingReapsNothing: a throttled listing and a listing that
// fails on its second page change nothing in the ledger and say why.
func TestUnobservedListingReapsNothing(t *testing.T) {
	_, c := envtestClient(t)
	r := newRig(t)
	const svc = "big"
	ids := r.launch(20, svc)
	// 1,000 stopped instances of the service take no name but make the
	// listing two DescribeInstances pages.
	for _, id := range r.launch(1000, svc) {
		if err := r.fleet.SetState(id, naming.StateStopped); err != nil {
			t.Fatal(err)
		}
	}
	createService(t, c, v1alpha1.NamingServiceSpec{Service: svc})
	rc := r.reconciler(c, r.store)
	rc.pass(t, svc)
	if n := len(r.bound(svc)); n != 20 {
		t.Fatalf("%d bound, want 20", n)
	}
	rc.drainEvents()
	r.fleet.Remove(ids[:10]...) // half the service: the default cap allows it
	r.clock.Step(time.Hour)     // long past the grace period

	tests := map[string]struct {
		fault      func()
		condType   string
		wantReason string
	}{
		"throttled": {
			fault:      func() { r.server.ThrottleNext(1) },
			condType:   v1alpha1.ConditionThrottled,
			wantReason: v1alpha1.ReasonRequestLimit,
		},
		"fails on page 2": {
			fault:      func() { r.server.FailOnPage(2) },
			condType:   v1alpha1.ConditionDegraded,
			wantReason: v1alpha1.ReasonListingFailed,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r.server.Reset()
			tc.fault()
			before := r.rev()
			rc.pass(t, svc)
			if after := r.rev(); after != before {
				t.Errorf("ledger rev moved from %d to %d on an unobserved pass", before, after)
			}
			ns := getService(t, c, svc)
			if cond := condition(ns, tc.condType); cond.Status != metav1.ConditionTrue || cond.Reason != tc.wantReason {
				t.Errorf("%s = %s/%s, want True/%s", tc.condType, cond.Status, cond.Reason, tc.wantReason)
			}
			if cond := condition(ns, v1alpha1.ConditionReady); cond.Status != metav1.ConditionFalse {
				t.Errorf("Ready = %s, want False", cond.Status)
			}
			if ev := rc.drainEvents(); ev[v1alpha1.EventObserveFailed] != 1 {
				t.Errorf("events = %v, want one %s", ev, v1alpha1.EventObserveFailed)
			}
		})
	}
	r.server.Reset()
	r.clock.Step(time.Hour)
	rc.pass(t, svc)
	// The first complete listing starts the grace period; the next one
	// past it releases the names.
	r.clock.Step(time.Hour)
	rc.pass(t, svc)
	if n := len(r.bound(svc)); n != 10 {
		t.Errorf("after recovery: %d bound, want 10", n)
	}
	if cond := condition(getService(t, c, svc), v1alpha1.ConditionThrottled); cond.Status != metav1.ConditionFalse {
		t.Errorf("Throttled = %s after a complete listing, want False", cond.Status)
	}
}

// TestReapCap: losing more than maxReleasePercent of a service in one pass
// releases only up to the cap and marks the service Degraded.
func TestReapCap(t *testing.T) {
	_, c := envtestClient(t)
	r := newRig(t)
	const svc = "capped"
	ids := r.launch(20, svc)
	createService(t, c, v1alpha1.NamingServiceSpec{Service: svc, ReapPolicy: v1alpha1.ReapPolicy{MaxReleasePercent: ptr.To[int32](25)}})
	rc := r.reconciler(c, r.store)
	rc.pass(t, svc)
	if err := r.fleet.Terminate(ids[:15]...); err != nil {
		t.Fatal(err)
	}
	rc.pass(t, svc)
	if n := len(r.bound(svc)); n != 15 {
		t.Errorf("%d bound after losing 15 of 20 with a 25%% cap, want 15 (5 released)", n)
	}
	ns := getService(t, c, svc)
	if cond := condition(ns, v1alpha1.ConditionDegraded); cond.Status != metav1.ConditionTrue || cond.Reason != v1alpha1.ReasonReapCapped {
		t.Errorf("Degraded = %s/%s, want True/%s", cond.Status, cond.Reason, v1alpha1.ReasonReapCapped)
	}
	if ev := rc.drainEvents(); ev[v1alpha1.EventReapCapped] != 1 {
		t.Errorf("events = %v, want one %s", ev, v1alpha1.EventReapCapped)
	}
}

// TestInvalidSpecWritesNothing: a spec the planner refuses is reported and
// nothing is written.
func TestInvalidSpecWritesNothing(t *testing.T) {
	_, c := envtestClient(t)
	r := newRig(t)
	const svc = "bad-alias"
	r.launch(2, svc)
	createService(t, c, v1alpha1.NamingServiceSpec{Service: svc, Aliases: v1alpha1.AliasPolicy{
		ByHostname: map[string][]string{"bad-alias-0": {"not a hostname!"}},
	}})
	rc := r.reconciler(c, r.store)
	before := r.rev()
	rc.pass(t, svc)
	if after := r.rev(); after != before {
		t.Errorf("ledger rev moved from %d to %d", before, after)
	}
	cond := condition(getService(t, c, svc), v1alpha1.ConditionDegraded)
	if cond.Status != metav1.ConditionTrue || cond.Reason != v1alpha1.ReasonInvalidSpec {
		t.Errorf("Degraded = %s/%s, want True/%s", cond.Status, cond.Reason, v1alpha1.ReasonInvalidSpec)
	}
}
