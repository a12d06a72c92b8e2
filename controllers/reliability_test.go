package controllers_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/aerostat-io/aerostat/api/v1alpha1"
	"github.com/aerostat-io/aerostat/controllers"
)

// TestInvalidSpecsRejected: the API server refuses bad NamingService specs
// (CRD schema validation, no webhook) with an error naming the field and
// the value; nothing is created, so nothing can be written.
func TestInvalidSpecsRejected(t *testing.T) {
	_, c := envtestClient(t)
	tests := map[string]struct {
		spec      v1alpha1.NamingServiceSpec
		wantField string
	}{
		"service with upper case and underscore": {v1alpha1.NamingServiceSpec{Service: "Web_1"}, "spec.service"},
		"empty service":                          {v1alpha1.NamingServiceSpec{Service: ""}, "spec.service"},
		"service longer than a label":            {v1alpha1.NamingServiceSpec{Service: strings.Repeat("a", 64)}, "spec.service"},
		"service ending in a dash":               {v1alpha1.NamingServiceSpec{Service: "web-"}, "spec.service"},
		"unknown scheme":                         {v1alpha1.NamingServiceSpec{Service: "x1", Scheme: "RoundRobin"}, "spec.scheme"},
		"maxReleasePercent 0": {v1alpha1.NamingServiceSpec{Service: "x2",
			ReapPolicy: v1alpha1.ReapPolicy{MaxReleasePercent: ptr.To[int32](0)}}, "spec.reapPolicy.maxReleasePercent"},
		"maxReleasePercent 101": {v1alpha1.NamingServiceSpec{Service: "x3",
			ReapPolicy: v1alpha1.ReapPolicy{MaxReleasePercent: ptr.To[int32](101)}}, "spec.reapPolicy.maxReleasePercent"},
		"negative releaseWindow": {v1alpha1.NamingServiceSpec{Service: "x5",
			ReapPolicy: v1alpha1.ReapPolicy{ReleaseWindow: &metav1.Duration{Duration: -time.Minute}}}, "spec.reapPolicy.releaseWindow"},
		"filter without values": {v1alpha1.NamingServiceSpec{Service: "x4",
			Selector: v1alpha1.InstanceSelector{Filters: []v1alpha1.EC2Filter{{Name: "tag:role"}}}}, "spec.selector.filters[0].values"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			// Named as its service where that is a valid object name, so
			// the only refusal is the one the case is about.
			objName := tc.spec.Service
			if !strings.HasPrefix(objName, "x") {
				objName = "invalid-" + strings.ToLower(strings.ReplaceAll(name, " ", "-"))
			}
			ns := &v1alpha1.NamingService{ObjectMeta: metav1.ObjectMeta{Name: objName}, Spec: tc.spec}
			err := c.Create(context.Background(), ns)
			if err == nil {
				_ = c.Delete(context.Background(), ns)
				t.Fatalf("created %+v", tc.spec)
			}
			if !strings.Contains(err.Error(), tc.wantField) {
				t.Errorf("error %q does not name %s", err, tc.wantField)
			}
		})
	}
	// Two NamingServices for one service would be two policies for one
	// set of names: the object's name must be its service, and names are
	// unique.
	t.Run("name differs from spec.service", func(t *testing.T) {
		createService(t, c, v1alpha1.NamingServiceSpec{Service: "owned"})
		for _, name := range []string{"owned-again", "other"} {
			ns := &v1alpha1.NamingService{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.NamingServiceSpec{Service: "owned"}}
			err := c.Create(context.Background(), ns)
			if err == nil {
				_ = c.Delete(context.Background(), ns)
				t.Fatalf("created NamingService %s for service owned", name)
			}
			if !strings.Contains(err.Error(), "metadata.name must equal spec.service") {
				t.Errorf("creating %s for service owned: err = %v, want the name rule", name, err)
			}
		}
	})
	t.Run("service is immutable", func(t *testing.T) {
		ns := createService(t, c, v1alpha1.NamingServiceSpec{Service: "immutable"})
		ns.Spec.Service = "other"
		if err := c.Update(context.Background(), ns); err == nil || !strings.Contains(err.Error(), "immutable") {
			t.Errorf("changing spec.service: err = %v, want it refused as immutable", err)
		}
	})
}

// TestEC2FaultConditions: every kind of failed or suspicious listing
// leaves the ledger alone and says why in the status conditions.
func TestEC2FaultConditions(t *testing.T) {
	_, c := envtestClient(t)
	r := newRig(t)
	const svc = "faulty"
	ids := r.launch(10, svc)
	createService(t, c, v1alpha1.NamingServiceSpec{Service: svc})
	rc := r.reconciler(c, r.store)
	health := controllers.NewPassHealth(r.clock, time.Minute)
	rc.Health = health
	rc.pass(t, svc)
	if n := len(r.bound(svc)); n != 10 {
		t.Fatalf("%d bound, want 10", n)
	}
	r.fleet.Remove(ids[:5]...)
	rc.pass(t, svc) // their grace period starts
	r.clock.Step(time.Hour)

	tests := map[string]struct {
		fault            func()
		condType, reason string
		msg              string
	}{
		"throttling storm":           {func() { r.server.ThrottleFraction(1, 7) }, v1alpha1.ConditionThrottled, v1alpha1.ReasonRequestLimit, "RequestLimitExceeded"},
		"503":                        {func() { r.server.FailNext(1, http.StatusServiceUnavailable) }, v1alpha1.ConditionDegraded, v1alpha1.ReasonListingFailed, "503"},
		"InvalidInstanceID.NotFound": {func() { r.server.NotFoundNext(1) }, v1alpha1.ConditionDegraded, v1alpha1.ReasonListingFailed, "InvalidInstanceID.NotFound"},
		"empty listing":              {func() { r.server.EmptyListing(true) }, v1alpha1.ConditionDegraded, v1alpha1.ReasonListingFailed, "wrong region"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r.server.Reset()
			tc.fault()
			health = controllers.NewPassHealth(r.clock, time.Minute) // each fault's window on its own
			rc.Health = health
			before := r.rev()
			rc.pass(t, svc)
			if after := r.rev(); after != before {
				t.Errorf("ledger rev moved from %d to %d", before, after)
			}
			ns := getService(t, c, svc)
			cond := condition(ns, tc.condType)
			if cond.Status != metav1.ConditionTrue || cond.Reason != tc.reason || !strings.Contains(cond.Message, tc.msg) {
				t.Errorf("%s = %s/%s %q, want True/%s mentioning %q", tc.condType, cond.Status, cond.Reason, cond.Message, tc.reason, tc.msg)
			}
			if ready := condition(ns, v1alpha1.ConditionReady); ready.Status != metav1.ConditionFalse {
				t.Errorf("Ready = %s, want False while EC2 is not observed", ready.Status)
			}
			// /readyz: not yet failing within the window, failing past it.
			if err := health.Check(nil); err != nil {
				t.Errorf("readiness failed at the first failed pass: %v", err)
			}
			r.clock.Step(2 * time.Minute)
			if err := health.Check(nil); err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("readiness two minutes into failing passes: %v, want an error mentioning %q", err, tc.msg)
			}
		})
	}
	r.server.Reset()
	rc.pass(t, svc)
	if n := len(r.bound(svc)); n != 5 {
		t.Errorf("%d bound after EC2 recovered, want 5 (the vanished ones released)", n)
	}
	if err := health.Check(nil); err != nil {
		t.Errorf("readiness after a passing pass: %v", err)
	}
}
