package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"k8s.io/utils/clock"

	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/events"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// maxFilterValues is how many instance ids go in one filter of one listing.
const maxFilterValues = 200

// StandaloneOptions configure a Standalone loop.
type StandaloneOptions struct {
	Syncer   *Syncer
	Cloud    cloud.Cloud
	Store    ledger.Store
	Clock    clock.WithTicker // default: the real clock
	Interval time.Duration    // default: DefaultPollInterval
	// Reap is every service's reap policy; zero means DefaultReap().
	Reap naming.ReapPolicy
	// Events wake the loop when EC2 instances change state; nil polls
	// only. While they are healthy the fleet is listed every
	// EventsInterval (default DefaultEventsPollInterval) as a safety net.
	Events         *events.Source
	EventsInterval time.Duration
	// EventDebounce and EventGap shape event passes (zero: defaults
	// DefaultEventDebounce, DefaultEventGap; negative: no wait). With a
	// gap, event passes also wait while they would cost more EC2 calls
	// than polling every Interval (see CallBudget).
	EventDebounce, EventGap time.Duration
	// OnPass is called after each pass Run makes with its trigger
	// (TriggerPoll or TriggerEvent) and error; it must not block.
	OnPass func(trigger string, err error)
}

// Standalone keeps names without Kubernetes: service policies come from
// instance tags (aerostat:service, aerostat:service-type, aerostat:aliases)
// and from the services nodes registered in the ledger; each service then
// goes through the same Syncer pass as a NamingService.
type Standalone struct {
	syncer   *Syncer
	cloud    cloud.Cloud
	store    ledger.Store
	clock    clock.WithTicker
	interval time.Duration
	reap     naming.ReapPolicy

	events         *events.Source
	eventsInterval time.Duration
	debounce       time.Duration
	eventGap       time.Duration
	onPass         func(string, error)
	budget         *CallBudget // meters s.cloud
}

// NewStandalone returns a Standalone loop.
func NewStandalone(o StandaloneOptions) *Standalone {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Interval <= 0 {
		o.Interval = DefaultPollInterval
	}
	if o.Reap == (naming.ReapPolicy{}) {
		o.Reap = DefaultReap()
	}
	if o.EventsInterval <= 0 {
		o.EventsInterval = max(DefaultEventsPollInterval, o.Interval)
	}
	// Negative: no wait (tests on a fake clock).
	if o.EventDebounce == 0 {
		o.EventDebounce = DefaultEventDebounce
	}
	if o.EventGap == 0 {
		o.EventGap = DefaultEventGap
	}
	budget := NewCallBudget(o.Clock, o.Interval, o.EventsInterval)
	return &Standalone{syncer: o.Syncer, cloud: budget.Meter(o.Cloud), store: o.Store, clock: o.Clock, interval: o.Interval, reap: o.Reap,
		events: o.Events, eventsInterval: o.EventsInterval, debounce: o.EventDebounce, eventGap: o.EventGap, onPass: o.OnPass,
		budget: budget}
}

// Run passes every interval until ctx is done. Failed passes are logged and
// retried on the next tick. With events, a wake-up runs an event pass on
// the instances they named, and the full listing runs every
// EventsInterval while the queue is healthy (every Interval when not).
// Run does not run the event source itself.
func (s *Standalone) Run(ctx context.Context) error {
	t := s.clock.NewTicker(s.interval)
	defer t.Stop()
	var st runState
	for {
		s.step(ctx, &st)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		case <-s.wake():
			if !s.gather(ctx, &st) {
				return nil
			}
		}
	}
}

// Summary is what one standalone pass did.
type Summary struct {
	Services []string
	Passes   map[string]Pass
	Changes  int
	// Repaired counts documents without a hostname removed (see
	// repairUnnamed).
	Repaired int
}

// Pass observes the fleet once and runs one pass per service. It returns an
// error when EC2 could not be observed completely (then nothing was written)
// or a service's ledger pass failed; other services still run.
func (s *Standalone) Pass(ctx context.Context) (Summary, error) {
	sum := Summary{Passes: map[string]Pass{}}
	tagged, listErr := s.cloud.List(ctx, cloud.Filter{Name: "tag-key", Values: []string{TagService}})
	if listErr != nil {
		listErr = fmt.Errorf("listing instances tagged %s: %w", TagService, listErr)
	}
	// One ledger read for every service (each read scans the collection on
	// the embedded store), taken after the listing: a name claimed while
	// the listing ran is then in the records, not bound a second time.
	// The counter before the records, as ledger.Store.Changes does: the
	// rev may then be below a record's, never above what was read.
	rev, records, ledgerRecs, err := s.readLedger(ctx)
	if err != nil {
		return sum, err
	}
	var unnamed []ledger.Document
	if s.syncer.unnamed != nil { // with the Syncer's UnnamedStore (see repairUnnamed)
		if unnamed, err = s.syncer.unnamed.Unnamed(ctx); err != nil {
			return sum, err
		}
	}
	unnamedIDs := unnamedInstances(unnamed)
	var fleet fleet
	if listErr == nil {
		fleet, listErr = s.observe(ctx, tagged, records, unnamedIDs)
	}

	services, byService := s.group(fleet, records, unnamedIDs)

	var errs []error
	if listErr != nil {
		errs = append(errs, listErr)
	}
	for name := range services {
		sum.Services = append(sum.Services, name)
	}
	sort.Strings(sum.Services)
	for _, name := range sum.Services {
		// Every service starts from the one read above. A write since then
		// makes a compare-and-set fail; the pass reports the conflict and
		// the next one reads again.
		snap := &snapshot{records: ledgerRecs[name], rev: rev, all: records}
		pass, err := s.syncer.syncObserved(ctx, services[name], byService[name], listErr, snap, false)
		sum.Passes[name] = pass
		sum.Changes += pass.Applied
		if err != nil {
			errs = append(errs, err)
		}
		if listErr == nil && pass.ObserveErr != nil { // an empty listing
			errs = append(errs, pass.ObserveErr)
		}
	}
	if len(unnamed) > 0 && listErr == nil && !s.syncer.dryRun {
		sum.Repaired, err = s.syncer.repairUnnamed(ctx, unnamed, fleet.byID, namedAfter(sum, ledgerRecs))
		errs = append(errs, err)
	}
	return sum, errors.Join(errs...)
}

// group sorts observed instances by service: by their aerostat:service
// tag, and by the records bound to them (a node that registered itself
// from /etc/aerostat_info may carry no tag). Every service with records
// gets an entry, with or without instances. An instance whose document
// lost its hostname (unnamed: instance id -> service) is observed in that
// document's service, so the pass names it again.
func (s *Standalone) group(fleet fleet, records []naming.Record, unnamed map[string]string) (map[string]Service, map[string][]naming.Instance) {
	services := map[string]Service{}
	byService := map[string][]naming.Instance{}
	for _, in := range fleet.tagged {
		name := in.Tags[TagService]
		if naming.ValidateLabel(TagService, name) != nil {
			continue // a tag the planner cannot name by; nothing to do for it
		}
		byService[name] = append(byService[name], in)
		if _, ok := services[name]; !ok {
			services[name] = s.tagService(name)
		}
		if st := in.Tags[TagServiceType]; st != "" {
			if scheme, err := naming.ParseScheme(st); err == nil {
				svc := services[name]
				svc.Policy.Scheme = scheme
				services[name] = svc
			}
		}
	}
	seen := map[string]map[string]bool{}
	for _, r := range records {
		if _, ok := services[r.Service]; !ok {
			svc := s.tagService(r.Service)
			if r.Scheme != "" {
				svc.Policy.Scheme = r.Scheme
			}
			services[r.Service] = svc
		}
		// A node that registered itself (1.x /etc/aerostat_info) may carry
		// no tag: its instance is observed by id.
		if in, ok := fleet.byID[r.InstanceID]; ok && in.Tags[TagService] != r.Service {
			if seen[r.Service] == nil {
				seen[r.Service] = map[string]bool{}
			}
			if !seen[r.Service][in.ID] {
				seen[r.Service][in.ID] = true
				byService[r.Service] = append(byService[r.Service], in)
			}
		}
	}
	bound := map[string]bool{}
	for _, r := range records {
		bound[r.InstanceID] = !r.Free() || bound[r.InstanceID]
	}
	for _, id := range slices.Sorted(maps.Keys(unnamed)) {
		// Named elsewhere already: the leftover goes, the name stays.
		svc := unnamed[id]
		in, ok := fleet.byID[id]
		if !ok || bound[id] || naming.ValidateLabel(TagService, in.Tags[TagService]) == nil { // a valid tag wins
			continue
		}
		if _, ok := services[svc]; !ok {
			services[svc] = s.tagService(svc)
		}
		byService[svc] = append(byService[svc], in)
	}
	return services, byService
}

func (s *Standalone) tagService(name string) Service {
	return Service{
		Policy:       naming.Policy{Service: name, Scheme: naming.Iterative, Reap: s.reap},
		AliasTag:     TagAliases,
		PolicySource: SourceStandalone,
	}
}

type fleet struct {
	tagged []naming.Instance
	byID   map[string]naming.Instance
}

// observe adds to the instances tagged with a service, listed by id, the
// bound instances that listing did not return (nodes named without a tag).
// Any failed listing makes the whole observation unknown.
func (s *Standalone) observe(ctx context.Context, tagged []naming.Instance, records []naming.Record, unnamed map[string]string) (fleet, error) {
	var f fleet
	f.tagged = tagged
	f.byID = make(map[string]naming.Instance, len(tagged))
	for _, in := range tagged {
		f.byID[in.ID] = in
	}
	var ids []string
	for _, r := range records {
		if _, ok := f.byID[r.InstanceID]; !ok && !r.Free() {
			ids = append(ids, r.InstanceID)
		}
	}
	for id := range unnamed {
		if _, ok := f.byID[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	for chunk := range slices.Chunk(ids, maxFilterValues) {
		more, err := s.cloud.List(ctx, cloud.Filter{Name: "instance-id", Values: chunk})
		if err != nil {
			return f, fmt.Errorf("listing %d named instances by id: %w", len(chunk), err)
		}
		for _, in := range more {
			f.byID[in.ID] = in
		}
	}
	return f, nil
}

// readLedger reads the rev counter, then every record, grouped by service.
// The counter comes first, as ledger.Store.Changes does: the returned rev
// may then be below a record's (it is raised to the highest seen), never
// above what was read.
func (s *Standalone) readLedger(ctx context.Context) (rev int64, records []naming.Record, byService map[string][]naming.Record, err error) {
	rev, err = s.store.Rev(ctx)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("reading ledger rev: %w", err)
	}
	records, err = s.store.Records(ctx, "")
	if err != nil {
		return 0, nil, nil, fmt.Errorf("reading ledger records: %w", err)
	}
	for _, r := range records {
		rev = max(rev, r.Rev)
	}
	return rev, records, groupByService(records), nil
}

// groupByService splits records by service. Each service's records are
// a capped sub-slice of records where the store returned them as one run
// (the ledger sorts by service), so a pass holds one copy of the ledger,
// not two (about 230 bytes a name, 11 MB at 50,000); an append to one
// copies it, never writing into the next service's run. Records of a
// service split over several runs are copied together.
func groupByService(records []naming.Record) map[string][]naming.Record {
	byService := map[string][]naming.Record{}
	for i := 0; i < len(records); {
		svc := records[i].Service
		j := i + 1
		for j < len(records) && records[j].Service == svc {
			j++
		}
		if prev, ok := byService[svc]; ok {
			byService[svc] = append(prev, records[i:j]...) // prev is capped: a copy
		} else {
			byService[svc] = records[i:j:j]
		}
		i = j
	}
	return byService
}

// pages is how many calls listing n items takes, size a call (at least one).
func pages(n, size int) int { return max(1, (n+size-1)/size) }
