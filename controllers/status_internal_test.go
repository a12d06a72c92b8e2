package controllers

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"

	v1alpha1 "github.com/aerostat-io/aerostat/api/v1alpha1"
	"github.com/aerostat-io/aerostat/internal/fakeclock"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// want is a condition's type, status and reason (messages are prose).
type want struct {
	typ    string
	status metav1.ConditionStatus
	reason string
}

var statusEpoch = time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)

// TestPassConditions: every outcome of a reconcile sets exactly the
// conditions of its row, in order; those it leaves out keep what an
// earlier pass said.
func TestPassConditions(t *testing.T) {
	F, T := metav1.ConditionFalse, metav1.ConditionTrue
	throttled := fmt.Errorf("listing: %w", &smithy.GenericAPIError{Code: "RequestLimitExceeded", Message: "slow down"})
	conflict := fmt.Errorf("applying: %w", ledger.ErrConflict)
	observed := want{v1alpha1.ConditionThrottled, F, v1alpha1.ReasonObserved}
	records := []naming.Record{{Service: "web", Hostname: "web-0", InstanceID: "i-0", Rev: 3}}
	deferred := []naming.Change{{Type: naming.Release, Hostname: "web-1"}, {Type: naming.Release, Hostname: "web-2"}}
	for name, tc := range map[string]struct {
		conds []condition
		want  []want
	}{
		"invalid spec": {
			conds: invalidSpecConditions(errors.New(`spec.scheme: "odd" is not a scheme`)),
			want:  []want{{v1alpha1.ConditionReady, F, v1alpha1.ReasonInvalidSpec}, {v1alpha1.ConditionDegraded, T, v1alpha1.ReasonInvalidSpec}},
		},
		"throttled listing": {
			conds: passConditions(Pass{ObserveErr: throttled}, nil),
			want:  []want{{v1alpha1.ConditionThrottled, T, v1alpha1.ReasonRequestLimit}, {v1alpha1.ConditionReady, F, v1alpha1.ReasonNotObserved}},
		},
		"failed listing": {
			conds: passConditions(Pass{ObserveErr: ErrEmptyListing}, nil),
			want: []want{
				{v1alpha1.ConditionThrottled, F, v1alpha1.ReasonListingFailed},
				{v1alpha1.ConditionDegraded, T, v1alpha1.ReasonListingFailed},
				{v1alpha1.ConditionReady, F, v1alpha1.ReasonNotObserved},
			},
		},
		"lost compare-and-set": {
			conds: passConditions(Pass{Records: records}, conflict),
			want:  []want{observed, {v1alpha1.ConditionReady, F, v1alpha1.ReasonLedgerConflict}},
		},
		"ledger error": {
			conds: passConditions(Pass{}, errors.New("reading records: connection refused")),
			want:  []want{observed, {v1alpha1.ConditionDegraded, T, v1alpha1.ReasonLedgerError}, {v1alpha1.ConditionReady, F, v1alpha1.ReasonLedgerError}},
		},
		"release budget": {
			conds: passConditions(Pass{Records: records, Plan: naming.Result{Deferred: deferred, OverBudget: 1}}, nil),
			want:  []want{observed, {v1alpha1.ConditionDegraded, T, v1alpha1.ReasonReleaseBudget}, {v1alpha1.ConditionReady, F, v1alpha1.ReasonChangesDeferred}},
		},
		"reap cap": {
			conds: passConditions(Pass{Records: records, Plan: naming.Result{Deferred: deferred}}, nil),
			want:  []want{observed, {v1alpha1.ConditionDegraded, T, v1alpha1.ReasonReapCapped}, {v1alpha1.ConditionReady, F, v1alpha1.ReasonChangesDeferred}},
		},
		"plan problems": {
			conds: passConditions(Pass{Records: records, Plan: naming.Result{Problems: []string{"web-0 has two records"}}}, nil),
			want:  []want{observed, {v1alpha1.ConditionDegraded, T, v1alpha1.ReasonPlanProblems}, {v1alpha1.ConditionReady, T, v1alpha1.ReasonSynced}},
		},
		"synced": {
			conds: passConditions(Pass{Records: records}, nil),
			want:  []want{observed, {v1alpha1.ConditionDegraded, F, v1alpha1.ReasonSynced}, {v1alpha1.ConditionReady, T, v1alpha1.ReasonSynced}},
		},
	} {
		t.Run(name, func(t *testing.T) {
			got := make([]want, len(tc.conds))
			for i, c := range tc.conds {
				got[i] = want{c.typ, c.status, c.reason}
				if c.msg == "" {
					t.Errorf("%s has no message", c.typ)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("conditions = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestConditionTransitions: through meta.SetStatusCondition a condition's
// LastTransitionTime moves only when its status flips; a new reason or
// message with the same status keeps it. Each row starts from a synced
// service an hour before the pass it runs.
func TestConditionTransitions(t *testing.T) {
	F, T := metav1.ConditionFalse, metav1.ConditionTrue
	throttled := fmt.Errorf("listing: %w", &smithy.GenericAPIError{Code: "Throttling"})
	records := []naming.Record{{Service: "web", Hostname: "web-0", InstanceID: "i-0", Rev: 3}}
	deferred := []naming.Change{{Type: naming.Release, Hostname: "web-1"}}
	for name, tc := range map[string]struct {
		pass Pass
		err  error
		// moved are the condition types whose LastTransitionTime must be
		// the pass's time; every other one keeps the synced pass's.
		moved []string
		want  []want
	}{
		"synced again": {
			pass: Pass{Records: records},
			want: []want{{v1alpha1.ConditionThrottled, F, v1alpha1.ReasonObserved}, {v1alpha1.ConditionDegraded, F, v1alpha1.ReasonSynced}, {v1alpha1.ConditionReady, T, v1alpha1.ReasonSynced}},
		},
		"synced to throttled": {
			pass:  Pass{ObserveErr: throttled},
			moved: []string{v1alpha1.ConditionThrottled, v1alpha1.ConditionReady},
			want:  []want{{v1alpha1.ConditionThrottled, T, v1alpha1.ReasonRequestLimit}, {v1alpha1.ConditionDegraded, F, v1alpha1.ReasonSynced}, {v1alpha1.ConditionReady, F, v1alpha1.ReasonNotObserved}},
		},
		"synced to failed listing": {
			pass:  Pass{ObserveErr: ErrEmptyListing},
			moved: []string{v1alpha1.ConditionDegraded, v1alpha1.ConditionReady},
			want:  []want{{v1alpha1.ConditionThrottled, F, v1alpha1.ReasonListingFailed}, {v1alpha1.ConditionDegraded, T, v1alpha1.ReasonListingFailed}, {v1alpha1.ConditionReady, F, v1alpha1.ReasonNotObserved}},
		},
		"synced to conflict": {
			pass:  Pass{Records: records},
			err:   fmt.Errorf("applying: %w", ledger.ErrConflict),
			moved: []string{v1alpha1.ConditionReady},
			want:  []want{{v1alpha1.ConditionThrottled, F, v1alpha1.ReasonObserved}, {v1alpha1.ConditionDegraded, F, v1alpha1.ReasonSynced}, {v1alpha1.ConditionReady, F, v1alpha1.ReasonLedgerConflict}},
		},
		"synced to reap cap": {
			pass:  Pass{Records: records, Plan: naming.Result{Deferred: deferred}},
			moved: []string{v1alpha1.ConditionDegraded, v1alpha1.ConditionReady},
			want:  []want{{v1alpha1.ConditionThrottled, F, v1alpha1.ReasonObserved}, {v1alpha1.ConditionDegraded, T, v1alpha1.ReasonReapCapped}, {v1alpha1.ConditionReady, F, v1alpha1.ReasonChangesDeferred}},
		},
		"synced to plan problems": {
			pass:  Pass{Records: records, Plan: naming.Result{Problems: []string{"web-0 has two records"}}},
			moved: []string{v1alpha1.ConditionDegraded},
			want:  []want{{v1alpha1.ConditionThrottled, F, v1alpha1.ReasonObserved}, {v1alpha1.ConditionDegraded, T, v1alpha1.ReasonPlanProblems}, {v1alpha1.ConditionReady, T, v1alpha1.ReasonSynced}},
		},
	} {
		t.Run(name, func(t *testing.T) {
			clk := fakeclock.New(statusEpoch)
			r := &NamingServiceReconciler{Clock: clk}
			ns := &v1alpha1.NamingService{ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: 1}}
			r.setStatus(ns, Pass{Records: records}, nil)
			clk.Step(time.Hour)
			r.setStatus(ns, tc.pass, tc.err)

			if len(ns.Status.Conditions) != len(tc.want) {
				t.Fatalf("conditions = %v, want %d", ns.Status.Conditions, len(tc.want))
			}
			for _, w := range tc.want {
				c := meta.FindStatusCondition(ns.Status.Conditions, w.typ)
				if c == nil {
					t.Errorf("%s missing", w.typ)
					continue
				}
				if c.Status != w.status || c.Reason != w.reason {
					t.Errorf("%s = %s/%s, want %s/%s", w.typ, c.Status, c.Reason, w.status, w.reason)
				}
				wantTime := statusEpoch
				for _, m := range tc.moved {
					if m == w.typ {
						wantTime = statusEpoch.Add(time.Hour)
					}
				}
				if !c.LastTransitionTime.Time.Equal(wantTime) {
					t.Errorf("%s lastTransitionTime = %v, want %v", w.typ, c.LastTransitionTime.Time, wantTime)
				}
			}
		})
	}
}

// TestStatusChanged: what counts as a change worth a status write. An
// idle pass on a fake clock an hour later only moves LastSyncTime, which
// is no change; a count, a condition's reason or the service's rev is.
func TestStatusChanged(t *testing.T) {
	records := []naming.Record{{Service: "web", Hostname: "web-0", InstanceID: "i-0", Rev: 3}}
	idle := func() (before, after v1alpha1.NamingServiceStatus) {
		clk := fakeclock.New(statusEpoch)
		r := &NamingServiceReconciler{Clock: clk}
		ns := &v1alpha1.NamingService{ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: 1}}
		r.setStatus(ns, Pass{Records: records, Rev: 10}, nil)
		before = *ns.Status.DeepCopy()
		clk.Step(time.Hour)
		// Another service wrote meanwhile: the store's rev moved, this
		// service's records did not.
		r.setStatus(ns, Pass{Records: records, Rev: 99}, nil)
		return before, *ns.Status.DeepCopy()
	}
	for name, tc := range map[string]struct {
		edit func(st *v1alpha1.NamingServiceStatus)
		want bool
	}{
		"idle pass":        {edit: func(*v1alpha1.NamingServiceStatus) {}, want: false},
		"bound count":      {edit: func(st *v1alpha1.NamingServiceStatus) { st.Bound++ }, want: true},
		"gaps":             {edit: func(st *v1alpha1.NamingServiceStatus) { st.Gaps++ }, want: true},
		"member":           {edit: func(st *v1alpha1.NamingServiceStatus) { st.Members[0].IP = "10.0.0.9" }, want: true},
		"service rev":      {edit: func(st *v1alpha1.NamingServiceStatus) { st.Rev++ }, want: true},
		"generation":       {edit: func(st *v1alpha1.NamingServiceStatus) { st.ObservedGeneration++ }, want: true},
		"condition reason": {edit: func(st *v1alpha1.NamingServiceStatus) { st.Conditions[0].Reason = "Other" }, want: true},
		"condition message": {
			edit: func(st *v1alpha1.NamingServiceStatus) { st.Conditions[0].Message = "other" }, want: true,
		},
	} {
		t.Run(name, func(t *testing.T) {
			before, after := idle()
			if before.LastSyncTime.Equal(after.LastSyncTime) {
				t.Fatal("the idle pass did not move LastSyncTime: the row proves nothing")
			}
			tc.edit(&after)
			if got := statusChanged(before, after); got != tc.want {
				t.Errorf("statusChanged = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestAliasesRefusedTransitions: AliasesRefused follows the last plan's
// refusals; its LastTransitionTime moves only when it flips, and a
// Warning Event marks refusals that start or change, not each pass. A
// pass that did not plan (failed listing) keeps what the last plan said.
func TestAliasesRefusedTransitions(t *testing.T) {
	F, T := metav1.ConditionFalse, metav1.ConditionTrue
	planned := func(refused ...naming.AliasRefusal) Pass {
		return Pass{Plan: naming.Result{MissingSince: map[string]time.Time{}, RefusedAliases: refused}}
	}
	www := naming.AliasRefusal{Alias: "www", Hostname: "web-0", Reason: "a name of service db"}
	api := naming.AliasRefusal{Alias: "api", Hostname: "web-1", Reason: "localhost"}
	type step struct {
		pass   Pass
		want   metav1.ConditionStatus
		reason string
		moved  bool // LastTransitionTime is this step's time
		events int  // Warning AliasRefused events recorded by this step
	}
	for name, steps := range map[string][]step{
		"none, then refused, then the same, then another, then none": {
			{pass: planned(), want: F, reason: v1alpha1.ReasonAliasesAllowed, moved: true},
			{pass: planned(www), want: T, reason: v1alpha1.ReasonAliasesRefused, moved: true, events: 1},
			{pass: planned(www), want: T, reason: v1alpha1.ReasonAliasesRefused},
			{pass: planned(www, api), want: T, reason: v1alpha1.ReasonAliasesRefused, events: 1},
			{pass: planned(), want: F, reason: v1alpha1.ReasonAliasesAllowed, moved: true},
		},
		"a failed listing keeps the refusal": {
			{pass: planned(www), want: T, reason: v1alpha1.ReasonAliasesRefused, moved: true, events: 1},
			{pass: Pass{ObserveErr: ErrEmptyListing}, want: T, reason: v1alpha1.ReasonAliasesRefused},
		},
	} {
		t.Run(name, func(t *testing.T) {
			clk := fakeclock.New(statusEpoch)
			rec := record.NewFakeRecorder(10)
			r := &NamingServiceReconciler{Clock: clk, Recorder: rec}
			ns := &v1alpha1.NamingService{ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: 1}}
			var lastMove time.Time
			for i, st := range steps {
				clk.Step(time.Minute)
				r.reportRefusedAliases(ns, st.pass)
				c := meta.FindStatusCondition(ns.Status.Conditions, v1alpha1.ConditionAliasesRefused)
				if c == nil {
					t.Fatalf("step %d: no %s condition", i, v1alpha1.ConditionAliasesRefused)
				}
				if c.Status != st.want || c.Reason != st.reason {
					t.Errorf("step %d: %s/%s, want %s/%s", i, c.Status, c.Reason, st.want, st.reason)
				}
				if st.moved {
					lastMove = clk.Now()
				}
				if !c.LastTransitionTime.Time.Equal(lastMove) {
					t.Errorf("step %d: lastTransitionTime %v, want %v", i, c.LastTransitionTime.Time, lastMove)
				}
				if got := len(rec.Events); got != st.events {
					t.Errorf("step %d: %d events, want %d", i, got, st.events)
				}
				for len(rec.Events) > 0 {
					if e := <-rec.Events; !strings.HasPrefix(e, corev1.EventTypeWarning+" "+v1alpha1.EventAliasRefused) {
						t.Errorf("step %d: event %q, want a Warning %s", i, e, v1alpha1.EventAliasRefused)
					}
				}
			}
		})
	}
}
