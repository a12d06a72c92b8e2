// Package controllers keeps the ledger (desired names) true to EC2 (observed
// instances): the NamingService reconciler for Kubernetes, the standalone
// loop for plain EC2 hosts, and the pass they share. Naming rules live in
// internal/naming; this package only observes, plans, applies and reports.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// Tag keys 1.x-style fleets use to describe themselves (standalone mode and
// the default selector).
const (
	TagService     = "aerostat:service"
	TagServiceType = "aerostat:service-type"
	TagAliases     = "aerostat:aliases"
)

// Service is what one pass needs to know about a service.
type Service struct {
	Policy naming.Policy
	// Filters select the service's instances; empty means
	// tag:aerostat:service=<service>.
	Filters []cloud.Filter
	// AliasTag is the instance tag listing extra names an instance asks
	// for; empty means none.
	AliasTag string
	// PolicySource says where the policy comes from (SourceStandalone,
	// SourceNamingService+name) in the ledger's copy of it.
	PolicySource string
	// AllowedSuffixes narrow the domains the service's aliases may be in
	// (spec.aliases.allowedSuffixes); empty leaves the AliasGuard's.
	AllowedSuffixes []string
}

// Pass is what one pass for one service saw and did.
type Pass struct {
	Observed naming.Observation
	// ObserveErr is set when the listing failed, was throttled or stopped
	// mid-pagination. Then nothing was planned or written.
	ObserveErr error
	Plan       naming.Result
	// Applied is how many of Plan.Changes were committed, in order.
	Applied int
	// Records is the service's ledger after the pass (nil if it could not
	// be read).
	Records []naming.Record
	// Rev is the ledger revision after the pass.
	Rev int64
	// TagsWritten is how many instances got their name tags (tag write-back).
	TagsWritten int
	// Partial is set for a pass on some instances only (described by id
	// after an event): absent instances were unknown, not gone.
	Partial bool
	// Repaired is how many documents without a hostname Sync removed.
	Repaired int
}

// Throttled reports whether EC2 refused the listing for its request rate.
func (p Pass) Throttled() bool { return p.ObserveErr != nil && cloud.IsThrottled(p.ObserveErr) }

// AppliedChanges are the changes committed by the pass.
func (p Pass) AppliedChanges() []naming.Change { return p.Plan.Changes[:p.Applied] }

// SyncerOptions configure a Syncer.
type SyncerOptions struct {
	Cloud   cloud.Cloud
	Store   ledger.Store
	Clock   clock.PassiveClock // default: the real clock
	Metrics *Metrics           // nil: no metrics
	// OnApplied is called after a pass committed changes (e.g. to wake the
	// agents' feed); it must not block.
	OnApplied func()
	// DryRun plans and writes nothing (`aerostat plan`): Pass.Plan is what
	// the pass would apply.
	DryRun bool
	// Tags writes names back to instance tags after each complete pass;
	// nil: no tag write-back.
	Tags *TagWriter
	// Aliases refuses aliases that shadow names of other services,
	// localhost or the cluster; nil refuses only the hostnames in the
	// service's own records.
	Aliases *naming.AliasGuard
	// Unnamed repairs documents without a hostname (1.x change-master
	// leftovers) after complete passes (Sync, Standalone.Pass; never a
	// dry run, a failed listing or an event's partial pass); nil leaves
	// them.
	Unnamed UnnamedStore
	// UnnamedEvery is how often Unnamed is read while the last read found
	// no document (see scheduledUnnamed); 0: every pass. `aerostat
	// controller` sets ledger.DefaultResyncEvery.
	UnnamedEvery time.Duration
}

// Syncer runs passes: observe, read the ledger, plan, apply. It is shared by
// the Kubernetes reconciler and the standalone loop, and safe for
// concurrent use on different services.
type Syncer struct {
	cloud   cloud.Cloud
	store   ledger.Store
	clock   clock.PassiveClock
	metrics *Metrics
	applied func()
	dryRun  bool
	tags    *TagWriter
	aliases *naming.AliasGuard
	unnamed UnnamedStore

	mu sync.Mutex
	// missing is the planner's MissingSince per service. It lives in memory
	// only: losing it (restart, new leader) restarts grace periods, which
	// delays releases but never releases early.
	missing map[string]map[string]time.Time
	// published is the policy last stored per service (publishPolicy).
	published map[string]ledger.Policy
	// refused is the last refused-aliases report per service, so a
	// refusal is logged when it starts or changes, not every pass.
	refused map[string]string
}

// NewSyncer returns a Syncer.
func NewSyncer(o SyncerOptions) *Syncer {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Unnamed != nil && o.UnnamedEvery > 0 {
		o.Unnamed = &scheduledUnnamed{UnnamedStore: o.Unnamed, clock: o.Clock, every: o.UnnamedEvery}
	}
	return &Syncer{cloud: o.Cloud, store: o.Store, clock: o.Clock, metrics: o.Metrics, applied: o.OnApplied, dryRun: o.DryRun, tags: o.Tags, aliases: o.Aliases, unnamed: o.Unnamed,
		missing: map[string]map[string]time.Time{}, refused: map[string]string{},
		published: map[string]ledger.Policy{}}
}

// Sync lists the service's instances and runs a pass on what it saw. With
// an UnnamedStore, the service's documents without a hostname are read
// first: their live listed instances are named by the pass like any
// unnamed node, and the leftovers no longer needed are removed after a
// complete pass that wrote without error (see repairUnnamed).
func (s *Syncer) Sync(ctx context.Context, svc Service) (Pass, error) {
	service := svc.Policy.Service
	docs, err := s.unnamedOf(ctx, service)
	if err != nil {
		return Pass{}, err
	}
	filters := svc.Filters
	if len(filters) == 0 {
		filters = DefaultFilters(service)
	}
	instances, listErr := s.cloud.List(ctx, filters...)
	if listErr != nil {
		listErr = fmt.Errorf("listing instances of service %q: %w", service, listErr)
	}
	pass, err := s.SyncObserved(ctx, svc, instances, listErr)
	if err != nil || pass.ObserveErr != nil || pass.Records == nil || len(docs) == 0 || s.dryRun {
		return pass, err
	}
	byID := make(map[string]naming.Instance, len(instances))
	for _, in := range instances {
		byID[in.ID] = in
	}
	named := map[string]bool{}
	for _, r := range pass.Records {
		named[r.InstanceID] = !r.Free() || named[r.InstanceID]
	}
	pass.Repaired, err = s.repairUnnamed(ctx, docs, byID, named)
	return pass, err
}

// SyncObserved runs a pass on instances already listed; listErr is the
// listing's error. A failed or partial listing plans and writes nothing: an
// instance missing from it is unknown, not gone. The returned error is a
// ledger failure (wrapping ledger.ErrConflict when a compare-and-set was
// lost and the caller should re-run the pass soon).
func (s *Syncer) SyncObserved(ctx context.Context, svc Service, instances []naming.Instance, listErr error) (pass Pass, err error) {
	return s.syncObserved(ctx, svc, instances, listErr, nil, false)
}

// SyncInstances runs a pass on a partial observation: instances described
// by id after events named them. Names of instances not among them are
// kept (they are unknown, not gone); a described instance seen
// terminated, shutting down or stopped is reaped as in a full pass, and
// a live unnamed one is named.
func (s *Syncer) SyncInstances(ctx context.Context, svc Service, instances []naming.Instance, listErr error) (Pass, error) {
	return s.syncObserved(ctx, svc, instances, listErr, nil, true)
}

// snapshot is a ledger read a pass may start from instead of reading its
// service's records again: on the embedded store every read scans the
// whole collection, so the standalone loop reads once for all services.
// A stale snapshot is safe: the writes are compare-and-set, and a lost one
// is a conflict.
type snapshot struct {
	records []naming.Record // the service's records, in store order
	rev     int64           // the store rev, read before the records
	all     []naming.Record // every service's records, for alias rules
}

// syncObserved is SyncObserved starting from snap when it is not nil.
func (s *Syncer) syncObserved(ctx context.Context, svc Service, instances []naming.Instance, listErr error, snap *snapshot, partial bool) (pass Pass, err error) {
	start := s.clock.Now()
	service := svc.Policy.Service
	defer func() { s.record(service, start, pass) }()
	s.publishPolicy(ctx, svc)

	if listErr != nil {
		pass.ObserveErr = listErr
		return pass, nil
	}
	pass.Observed = naming.Observation{Instances: instances, Complete: !partial}
	pass.Partial = partial
	if snap != nil {
		pass.Records, pass.Rev = snap.records, snap.rev
	} else if pass.Records, err = s.store.Records(ctx, service); err != nil {
		return pass, fmt.Errorf("reading ledger records of service %q: %w", service, err)
	}
	if n := boundNames(pass.Records); !partial && len(instances) == 0 && n > 0 {
		// Every instance of a service gone at once and unseen (terminated
		// ones stay listed for about an hour) is far less likely than a
		// wrong region, account or credentials: release nothing.
		pass.ObserveErr = fmt.Errorf("listing instances of service %q: %w while %d of its names are bound; nothing released (wrong region, account or credentials?)",
			service, ErrEmptyListing, n)
		pass.Observed = naming.Observation{}
		return pass, nil
	}

	budget, err := s.planPass(ctx, svc, &pass, snap)
	if err != nil {
		return pass, err
	}
	if pass.Plan.HasChanges() && !s.dryRun {
		if err := s.applyPlan(ctx, service, &pass, budget); err != nil {
			return pass, err
		}
		snap = nil // the records were read again; so is the rev
	}
	if snap == nil {
		if pass.Rev, err = s.store.Rev(ctx); err != nil {
			return pass, fmt.Errorf("reading ledger rev: %w", err)
		}
	}
	if s.tags != nil && !s.dryRun {
		var terr error
		if pass.TagsWritten, terr = s.tags.Write(ctx, pass.Records, instances); terr != nil {
			log.FromContext(ctx).Error(terr, "tag write-back failed; retried next pass", "service", service)
		}
	}
	return pass, nil
}

// planPass plans the pass on its observation and records, with the
// service's alias rules and the missing-since times the last pass left,
// and keeps the times this plan leaves. It returns the release budget the
// plan's releases must be reserved in before they are written.
func (s *Syncer) planPass(ctx context.Context, svc Service, pass *Pass, snap *snapshot) (*releaseBudget, error) {
	service := svc.Policy.Service
	policy := svc.Policy
	if svc.AliasTag != "" {
		policy.InstanceAliases = instanceAliases(pass.Observed.Instances, svc.AliasTag)
	}
	in := naming.Input{Policy: policy, Records: pass.Records, Observed: pass.Observed, Now: s.clock.Now()}
	var err error
	if in.AliasRules, err = s.aliasRules(ctx, svc, policy, pass.Records, snap); err != nil {
		return nil, err
	}
	s.mu.Lock()
	in.MissingSince = s.missing[service]
	s.mu.Unlock()
	var budget *releaseBudget
	if pass.Plan, budget, err = s.plan(ctx, in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.missing[service] = pass.Plan.MissingSince
	s.mu.Unlock()
	s.logRefused(ctx, service, pass.Plan.RefusedAliases)
	if n := pass.Plan.OverBudget; n > 0 {
		log.FromContext(ctx).Info("releases refused by the release budget", "service", service, "refused", n)
	}
	return budget, nil
}

// applyPlan reserves the plan's releases in the budget, writes its
// changes and reads the service's records back (Apply does not return
// what it wrote: the revs come from the store).
func (s *Syncer) applyPlan(ctx context.Context, service string, pass *Pass, budget *releaseBudget) error {
	if err := budget.reserve(ctx, pass.Plan.Reaped); err != nil {
		return err
	}
	var err error
	pass.Applied, err = s.store.Apply(ctx, pass.Plan.Changes)
	logChanges(ctx, pass.AppliedChanges())
	if pass.Applied > 0 && s.applied != nil {
		s.applied()
	}
	if err != nil {
		return fmt.Errorf("applying %d changes to service %q (%d applied): %w", len(pass.Plan.Changes), service, pass.Applied, err)
	}
	if pass.Records, err = s.store.Records(ctx, service); err != nil {
		return fmt.Errorf("re-reading ledger records of service %q: %w", service, err)
	}
	return nil
}

// aliasRules reads every service's records (from snap when it has them)
// to refuse aliases that shadow another service's names; a service that
// asks for no aliases skips the read.
func (s *Syncer) aliasRules(ctx context.Context, svc Service, p naming.Policy, records []naming.Record, snap *snapshot) (naming.AliasRules, error) {
	if s.aliases == nil || !wantsAliases(p, records) {
		return naming.AliasRules{}, nil
	}
	var all []naming.Record
	if snap != nil && snap.all != nil {
		all = snap.all
	} else {
		var err error
		if all, err = s.store.Records(ctx, ""); err != nil {
			return naming.AliasRules{}, fmt.Errorf("reading every service's names for alias checks: %w", err)
		}
	}
	return s.aliases.Rules(all, svc.AllowedSuffixes), nil
}

// logRefused logs a service's refused aliases when they change.
func (s *Syncer) logRefused(ctx context.Context, service string, refused []naming.AliasRefusal) {
	msg := RefusedMessage(refused)
	s.mu.Lock()
	changed := s.refused[service] != msg
	s.refused[service] = msg
	s.mu.Unlock()
	if changed && msg != "" {
		log.FromContext(ctx).Info("aliases refused, not written", "service", service, "refused", msg)
	}
}

// RefusedMessage is one line naming every refused alias and why.
func RefusedMessage(refused []naming.AliasRefusal) string {
	parts := make([]string, len(refused))
	for i, r := range refused {
		parts[i] = r.String()
	}
	return strings.Join(parts, "; ")
}

// ErrEmptyListing is a pass's ObserveErr when a listing came back empty
// while the service has bound names: treated as unknown, not as "all gone".
var ErrEmptyListing = errors.New("listing returned no instances")

func boundNames(records []naming.Record) int {
	n := 0
	for _, r := range records {
		if !r.Free() {
			n++
		}
	}
	return n
}

// Forget drops what the Syncer remembers about a service.
func (s *Syncer) Forget(service string) {
	s.mu.Lock()
	delete(s.missing, service)
	delete(s.refused, service)
	s.mu.Unlock()
}

func (s *Syncer) record(service string, start time.Time, pass Pass) {
	m := s.metrics
	if m == nil {
		return
	}
	m.passDuration.Observe(s.clock.Since(start).Seconds())
	switch {
	case pass.ObserveErr == nil:
		m.listings.WithLabelValues("ok").Inc()
	case pass.Throttled():
		m.listings.WithLabelValues("throttled").Inc()
	case errors.Is(pass.ObserveErr, ErrEmptyListing):
		m.listings.WithLabelValues("empty").Inc()
	default:
		m.listings.WithLabelValues("error").Inc()
	}
	for _, c := range pass.AppliedChanges() {
		m.planChanges.WithLabelValues(string(c.Type)).Inc()
	}
	if pass.Records != nil {
		c := Count(pass)
		m.namesBound.WithLabelValues(service).Set(float64(c.Bound))
		m.namesFree.WithLabelValues(service).Set(float64(c.Gaps))
		if !pass.Partial { // a partial pass sees only some unnamed instances
			m.namesUnnamed.WithLabelValues(service).Set(float64(c.Unnamed))
		}
		m.deferred.WithLabelValues(service).Set(float64(len(pass.Plan.Deferred)))
		m.overBudget.WithLabelValues(service).Set(float64(pass.Plan.OverBudget))
		m.held.WithLabelValues(service).Set(float64(len(pass.Plan.Held)))
	}
}

func logChanges(ctx context.Context, changes []naming.Change) {
	l := log.FromContext(ctx)
	for _, c := range changes {
		l.Info("ledger change", "type", c.Type, "hostname", c.Hostname, "instance", c.InstanceID, "ip", c.IP, "reason", c.Reason)
	}
}

// DefaultFilters select the instances tagged aerostat:service=<service>.
func DefaultFilters(service string) []cloud.Filter {
	return []cloud.Filter{{Name: "tag:" + TagService, Values: []string{service}}}
}

// instanceAliases reads the extra names instances ask for through a tag.
// Names the planner would refuse are left to it to report.
func instanceAliases(instances []naming.Instance, tag string) map[string][]string {
	var out map[string][]string
	for _, in := range instances {
		if v := in.Tags[tag]; v != "" {
			if out == nil {
				out = map[string][]string{}
			}
			out[in.ID] = SplitAliases(v)
		}
	}
	return out
}

// SplitAliases splits a list of names separated by spaces or commas.
func SplitAliases(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}

// Counts summarise a pass for status and metrics.
type Counts struct {
	Bound, Gaps, Unnamed int
	Master               string // instance id holding the master name
}

// Count summarises the ledger and observation after a pass.
func Count(p Pass) Counts {
	var c Counts
	named := make(map[string]bool, len(p.Records))
	for _, r := range p.Records {
		if r.Free() {
			c.Gaps++
			continue
		}
		c.Bound++
		named[r.InstanceID] = true
		if r.Role == naming.RoleMaster {
			c.Master = r.InstanceID
		}
	}
	for _, in := range p.Observed.Instances {
		if (in.State == naming.StateRunning || in.State == naming.StatePending) && !named[in.ID] {
			c.Unnamed++
		}
	}
	return c
}

// IsConflict reports whether err is a lost compare-and-set.
func IsConflict(err error) bool { return errors.Is(err, ledger.ErrConflict) }

// wantsAliases reports whether planning the service may write aliases, so
// the whole ledger is read only for services that use them.
func wantsAliases(p naming.Policy, records []naming.Record) bool {
	if len(p.Aliases) > 0 || len(p.InstanceAliases) > 0 {
		return true
	}
	return slices.ContainsFunc(records, func(r naming.Record) bool { return len(r.Aliases) > 0 })
}
