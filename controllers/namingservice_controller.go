package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1alpha1 "github.com/aerostat-io/aerostat/api/v1alpha1"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// maxMembers bounds status.members so a large fleet stays well under the
// object size limit; status.bound has the full count.
const maxMembers = 1000

// NamingServiceReconciler keeps one NamingService's names true to EC2.
type NamingServiceReconciler struct {
	Client   client.Client
	Syncer   *Syncer
	Recorder record.EventRecorder
	Clock    clock.PassiveClock
	// Hosts reports the nodes' convergence into status.hosts; nil leaves
	// it out (no feed).
	Hosts HostsReporter
	// ConflictBackoff is how soon a pass that lost a compare-and-set runs
	// again (default one second).
	ConflictBackoff time.Duration
	// Events, when set, wakes passes for the services EC2 events name,
	// hears of every pass (to delete the messages a pass covered) and is
	// reported in the EventsHealthy condition; nil: no events.
	Events *EventWaker
	// Health hears of every pass, for /readyz; nil: not reported.
	Health *PassHealth
}

// +kubebuilder:rbac:groups=aerostat.io,resources=namingservices,verbs=get;list;watch
// +kubebuilder:rbac:groups=aerostat.io,resources=namingservices/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete

// Reconcile runs one pass for a NamingService and reports it in its status.
func (r *NamingServiceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var ns v1alpha1.NamingService
	if err := r.Client.Get(ctx, req.NamespacedName, &ns); err != nil {
		if apierrors.IsNotFound(err) {
			// Deleted: its names stay in the ledger, but what the Syncer
			// remembers (missing-since times, refused aliases) would
			// outlive it and come back stale if it is created again.
			r.Syncer.Forget(req.Name)
			if r.Health != nil {
				r.Health.Forget(req.Name)
			}
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	res, _, err := r.reconcile(ctx, &ns)
	return res, err
}

// Once runs one pass for every NamingService, as `controller --once` does.
// It fails if any service could not be observed or applied.
func (r *NamingServiceReconciler) Once(ctx context.Context) error {
	var list v1alpha1.NamingServiceList
	if err := r.Client.List(ctx, &list); err != nil {
		return fmt.Errorf("listing naming services: %w", err)
	}
	var errs []error
	for i := range list.Items {
		_, pass, err := r.reconcile(ctx, &list.Items[i])
		errs = append(errs, err, pass.ObserveErr)
	}
	return errors.Join(errs...)
}

func (r *NamingServiceReconciler) reconcile(ctx context.Context, ns *v1alpha1.NamingService) (_ ctrl.Result, pass Pass, retErr error) {
	base := ns.DeepCopy()
	defer func() { retErr = errors.Join(retErr, r.writeStatus(ctx, base, ns)) }()

	svc, err := ServiceFromSpec(ns)
	if err != nil {
		r.setConditions(ns, invalidSpecConditions(err))
		return ctrl.Result{}, pass, nil // only a spec change can help, and it triggers a reconcile
	}
	done := func(context.Context, Pass, error) {}
	if r.Events != nil {
		done = r.Events.BeginPass(ns.Name)
	}
	pass, err = r.Syncer.Sync(ctx, svc)
	done(ctx, pass, err)
	r.observeHealth(ns.Name, pass, err)
	r.emitEvents(ns, pass)
	r.setStatus(ns, pass, err)
	r.reportRefusedAliases(ns, pass)
	r.reportEvents(ns)
	if IsConflict(err) {
		return ctrl.Result{RequeueAfter: r.conflictBackoff()}, pass, nil
	}
	return ctrl.Result{}, pass, err
}

// observeHealth reports a pass to Health: failed when it could not list
// or apply; a lost compare-and-set proves nothing either way.
func (r *NamingServiceReconciler) observeHealth(service string, pass Pass, err error) {
	if r.Health == nil || IsConflict(err) {
		return
	}
	r.Health.Observe(service, errors.Join(err, pass.ObserveErr))
}

// SetupWithManager registers the reconciler: NamingService spec changes and
// every poll tick (which re-queues all NamingServices) trigger passes, and
// so do the services events name (with Events). Add r.Events to the
// manager too: it runs the event source.
func (r *NamingServiceReconciler) SetupWithManager(mgr ctrl.Manager, ticks <-chan event.TypedGenericEvent[time.Time]) error {
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.NamingService{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesRawSource(source.Channel(ticks, handler.TypedEnqueueRequestsFromMapFunc(r.all)))
	if r.Events != nil {
		b = b.WatchesRawSource(source.Channel(r.Events.Requests(), handler.TypedEnqueueRequestsFromMapFunc(named)))
	}
	return b.Named("namingservice").Complete(r)
}

// named maps a woken service to its NamingService.
func named(_ context.Context, name string) []ctrl.Request {
	return []ctrl.Request{{NamespacedName: client.ObjectKey{Name: name}}}
}

// all maps a poll tick to every NamingService.
func (r *NamingServiceReconciler) all(ctx context.Context, _ time.Time) []ctrl.Request {
	var list v1alpha1.NamingServiceList
	if err := r.Client.List(ctx, &list); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing naming services for a poll")
		return nil
	}
	reqs := make([]ctrl.Request, len(list.Items))
	for i := range list.Items {
		reqs[i].Name = list.Items[i].Name
	}
	return reqs
}

func (r *NamingServiceReconciler) emitEvents(ns *v1alpha1.NamingService, pass Pass) {
	if r.Recorder == nil {
		return
	}
	if pass.ObserveErr != nil {
		r.Recorder.Event(ns, corev1.EventTypeWarning, v1alpha1.EventObserveFailed, pass.ObserveErr.Error())
	}
	for _, c := range pass.AppliedChanges() {
		switch {
		case c.Type == naming.Bind && c.Role == naming.RoleMaster:
			r.Recorder.Eventf(ns, corev1.EventTypeNormal, v1alpha1.EventMasterMoved, "%s bound to %s (%s): %s", c.Hostname, c.InstanceID, c.IP, c.Reason)
		case c.Type == naming.Bind:
			r.Recorder.Eventf(ns, corev1.EventTypeNormal, v1alpha1.EventNameBound, "%s bound to %s (%s): %s", c.Hostname, c.InstanceID, c.IP, c.Reason)
		case c.Type == naming.Release:
			r.Recorder.Eventf(ns, corev1.EventTypeNormal, v1alpha1.EventNameReleased, "%s released (was %s): %s", c.Hostname, c.ExpectInstanceID, c.Reason)
		}
	}
	if n := pass.Plan.OverBudget; n > 0 {
		r.Recorder.Event(ns, corev1.EventTypeWarning, v1alpha1.EventReleaseBudget, overBudgetMessage(pass))
	}
	if n := len(pass.Plan.Deferred) - pass.Plan.OverBudget; n > 0 {
		r.Recorder.Eventf(ns, corev1.EventTypeWarning, v1alpha1.EventReapCapped, "%d releases held back by maxReleasePercent", n)
	}
}

// writeStatus writes the status a pass left in ns when it differs from
// base in something a user sees, as cluster-api's deferred patch helper
// compares before and after: an idle pass writes nothing. LastSyncTime
// alone is no change (it moves every pass); it goes out with the next
// write that carries one.
func (r *NamingServiceReconciler) writeStatus(ctx context.Context, base, ns *v1alpha1.NamingService) error {
	if !statusChanged(base.Status, ns.Status) {
		return nil
	}
	// An update, not a merge patch: a patch from base omits counts that
	// stay zero, and the printer columns would show <none>. A conflict
	// (the object changed meanwhile) requeues the pass.
	if err := r.Client.Status().Update(ctx, ns); err != nil {
		return fmt.Errorf("updating status of %s: %w", ns.Name, err)
	}
	return nil
}

// statusChanged reports whether after differs from before in anything but
// LastSyncTime. Conditions compare whole: meta.SetStatusCondition keeps a
// condition's LastTransitionTime while its status stays.
func statusChanged(before, after v1alpha1.NamingServiceStatus) bool {
	before.LastSyncTime, after.LastSyncTime = nil, nil
	return !equality.Semantic.DeepEqual(before, after)
}

func (r *NamingServiceReconciler) setStatus(ns *v1alpha1.NamingService, pass Pass, err error) {
	st := &ns.Status
	if pass.Records != nil {
		c := Count(pass)
		st.Bound, st.Gaps, st.Unnamed, st.Master = int32(c.Bound), int32(c.Gaps), int32(c.Unnamed), c.Master
		st.Members = members(pass.Records)
	}
	r.setConditions(ns, passConditions(pass, err))
	if pass.ObserveErr != nil || err != nil {
		return
	}
	now := metav1.NewTime(r.clock().Now())
	st.LastSyncTime, st.ObservedGeneration = &now, ns.Generation
	if pass.Records != nil {
		// The service's own rev, not the store's: another service's
		// write must not make this status change.
		st.Rev = serviceRev(pass.Records)
	}
	if r.Hosts != nil && pass.Records != nil {
		st.Hosts = hostsStatus(r.Hosts.Convergence(), pass.Records)
	}
}

// condition is one condition a reconcile sets.
type condition struct {
	typ    string
	status metav1.ConditionStatus
	reason string
	msg    string
}

// invalidSpecConditions are set when the planner refuses the spec.
func invalidSpecConditions(err error) []condition {
	return []condition{
		{v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, err.Error()},
		{v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonInvalidSpec, err.Error()},
	}
}

// passConditions is the decision table from a pass (and its ledger error)
// to the conditions it sets, in order. A condition left out keeps what an
// earlier pass said: e.g. a throttled listing says nothing new about
// Degraded.
func passConditions(pass Pass, err error) []condition {
	F, T := metav1.ConditionFalse, metav1.ConditionTrue
	switch {
	case pass.Throttled():
		return []condition{
			{v1alpha1.ConditionThrottled, T, v1alpha1.ReasonRequestLimit, pass.ObserveErr.Error()},
			{v1alpha1.ConditionReady, F, v1alpha1.ReasonNotObserved, "EC2 throttled the listing; nothing was released"},
		}
	case pass.ObserveErr != nil:
		return []condition{
			{v1alpha1.ConditionThrottled, F, v1alpha1.ReasonListingFailed, "listing failed without throttling"},
			{v1alpha1.ConditionDegraded, T, v1alpha1.ReasonListingFailed, pass.ObserveErr.Error()},
			{v1alpha1.ConditionReady, F, v1alpha1.ReasonNotObserved, "EC2 listing failed or was partial; nothing was released"},
		}
	}
	observed := condition{v1alpha1.ConditionThrottled, F, v1alpha1.ReasonObserved, "listing complete"}
	switch {
	case IsConflict(err):
		return []condition{observed, {v1alpha1.ConditionReady, F, v1alpha1.ReasonLedgerConflict, err.Error()}}
	case err != nil:
		return []condition{observed,
			{v1alpha1.ConditionDegraded, T, v1alpha1.ReasonLedgerError, err.Error()},
			{v1alpha1.ConditionReady, F, v1alpha1.ReasonLedgerError, err.Error()},
		}
	case pass.Plan.OverBudget > 0:
		msg := overBudgetMessage(pass)
		return []condition{observed,
			{v1alpha1.ConditionDegraded, T, v1alpha1.ReasonReleaseBudget, msg},
			{v1alpha1.ConditionReady, F, v1alpha1.ReasonChangesDeferred, msg},
		}
	case len(pass.Plan.Deferred) > 0:
		msg := fmt.Sprintf("%d releases held back by maxReleasePercent; they are retried each pass", len(pass.Plan.Deferred))
		return []condition{observed,
			{v1alpha1.ConditionDegraded, T, v1alpha1.ReasonReapCapped, msg},
			{v1alpha1.ConditionReady, F, v1alpha1.ReasonChangesDeferred, msg},
		}
	}
	synced := condition{v1alpha1.ConditionReady, T, v1alpha1.ReasonSynced, "ledger matches EC2"}
	if len(pass.Plan.Problems) > 0 {
		return []condition{observed, {v1alpha1.ConditionDegraded, T, v1alpha1.ReasonPlanProblems, joinProblems(pass.Plan.Problems)}, synced}
	}
	return []condition{observed, {v1alpha1.ConditionDegraded, F, v1alpha1.ReasonSynced, "ledger matches EC2"}, synced}
}

// reportRefusedAliases sets AliasesRefused from a pass that planned, with
// a Warning Event when the refusals start or change (not every pass).
func (r *NamingServiceReconciler) reportRefusedAliases(ns *v1alpha1.NamingService, pass Pass) {
	if pass.ObserveErr != nil || pass.Plan.MissingSince == nil {
		return // nothing was planned: keep what the last plan said
	}
	msg := truncate(RefusedMessage(pass.Plan.RefusedAliases), 1024)
	if msg == "" {
		r.setCondition(ns, v1alpha1.ConditionAliasesRefused, metav1.ConditionFalse, v1alpha1.ReasonAliasesAllowed, "no alias refused")
		return
	}
	prev := meta.FindStatusCondition(ns.Status.Conditions, v1alpha1.ConditionAliasesRefused)
	if r.Recorder != nil && (prev == nil || prev.Status != metav1.ConditionTrue || prev.Message != msg) {
		r.Recorder.Event(ns, corev1.EventTypeWarning, v1alpha1.EventAliasRefused, msg)
	}
	r.setCondition(ns, v1alpha1.ConditionAliasesRefused, metav1.ConditionTrue, v1alpha1.ReasonAliasesRefused, msg)
}

// reportEvents sets EventsHealthy when the controller receives events.
func (r *NamingServiceReconciler) reportEvents(ns *v1alpha1.NamingService) {
	if r.Events == nil {
		return
	}
	if ok, why := r.Events.Health(); ok {
		r.setCondition(ns, v1alpha1.ConditionEventsHealthy, metav1.ConditionTrue, v1alpha1.ReasonEventsReceived, why)
	} else {
		r.setCondition(ns, v1alpha1.ConditionEventsHealthy, metav1.ConditionFalse, v1alpha1.ReasonEventsFailing, why)
	}
}

func (r *NamingServiceReconciler) setConditions(ns *v1alpha1.NamingService, conds []condition) {
	for _, c := range conds {
		r.setCondition(ns, c.typ, c.status, c.reason, c.msg)
	}
}

func (r *NamingServiceReconciler) setCondition(ns *v1alpha1.NamingService, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&ns.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: truncate(msg, 1024),
		ObservedGeneration: ns.Generation, LastTransitionTime: metav1.NewTime(r.clock().Now()),
	})
}

func (r *NamingServiceReconciler) clock() clock.PassiveClock {
	if r.Clock == nil {
		return clock.RealClock{}
	}
	return r.Clock
}

func (r *NamingServiceReconciler) conflictBackoff() time.Duration {
	if r.ConflictBackoff <= 0 {
		return time.Second
	}
	return r.ConflictBackoff
}

func members(records []naming.Record) []v1alpha1.Member {
	var out []v1alpha1.Member
	for _, rec := range records {
		if rec.Free() {
			continue
		}
		m := v1alpha1.Member{Hostname: rec.Hostname, InstanceID: rec.InstanceID, IP: rec.IP}
		if !rec.ClaimedAt.IsZero() {
			t := metav1.NewTime(rec.ClaimedAt.UTC().Truncate(time.Second))
			m.Since = &t
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b v1alpha1.Member) int { return naming.CompareHostnames(a.Hostname, b.Hostname) })
	if len(out) > maxMembers {
		out = out[:maxMembers]
	}
	return out
}

func joinProblems(ps []string) string {
	if len(ps) > 5 {
		return fmt.Sprintf("%s; and %d more", strings.Join(ps[:5], "; "), len(ps)-5)
	}
	return strings.Join(ps, "; ")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
