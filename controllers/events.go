package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/events"
	"github.com/aerostat-io/aerostat/internal/naming"
	"github.com/aerostat-io/aerostat/internal/retry"
)

// Event-driven passes.
const (
	// DefaultEventsPollInterval is how often the whole fleet is listed
	// while events wake the controller: the poll is then only the safety
	// net. A queue that fails or goes silent brings back the poll
	// interval of a controller without events.
	DefaultEventsPollInterval = 60 * time.Second
	// DefaultEventDebounce lets a burst of events gather into one pass.
	DefaultEventDebounce = 50 * time.Millisecond
	// DefaultEventGap is the least time between two event passes, so a
	// storm of events costs at most one targeted listing a second.
	DefaultEventGap = time.Second
	// maxTargetedIDs is the most instance ids an event pass describes by
	// id (in chunks of maxFilterValues); beyond that one listing of the
	// fleet is cheaper.
	maxTargetedIDs = 5 * maxFilterValues
	// announceWindow: a poll's change for an instance launched or
	// terminated within it is one an event should have announced.
	announceWindow = 10 * time.Minute
)

// Pass triggers, as passed to StandaloneOptions.OnPass.
const (
	TriggerPoll  = "poll"  // a full listing (first pass, poll interval, safety net)
	TriggerEvent = "event" // instances described by id after events named them
)

// runState is what Run remembers between passes.
type runState struct {
	lastFull  time.Time // start of the last full pass that succeeded
	lastEvent time.Time // start of the last event pass
}

// step runs the pass that is due: a full one when the poll interval (the
// safety-net interval while events are healthy) has passed since the last
// successful one, else an event pass if events named instances.
func (s *Standalone) step(ctx context.Context, st *runState) {
	start := s.clock.Now()
	if s.fullDue(st, start) {
		var b events.Batch
		if s.events != nil {
			b = s.events.Pending()
		}
		sum, err := s.Pass(ctx)
		s.passed(TriggerPoll, err)
		if err != nil {
			if ctx.Err() == nil {
				log.FromContext(ctx).Error(err, "standalone pass failed")
			}
			return
		}
		st.lastFull = start
		if s.events != nil {
			s.events.Ack(ctx, b)
			s.events.Observed(ctx, announced(sum, start))
		}
		return
	}
	b := s.events.Pending()
	if len(b.IDs) == 0 {
		return
	}
	st.lastEvent = start
	_, err := s.EventPass(ctx, b)
	s.passed(TriggerEvent, err)
	if err != nil {
		// The ids stay pending: the next tick or event retries them.
		if ctx.Err() == nil {
			log.FromContext(ctx).Error(err, "event pass failed", "instances", len(b.IDs))
		}
		return
	}
	s.events.Ack(ctx, b)
}

func (s *Standalone) fullDue(st *runState, now time.Time) bool {
	if s.events == nil || st.lastFull.IsZero() {
		return true
	}
	interval := s.eventsInterval
	if ok, _ := s.events.Health(); !ok {
		interval = s.interval
	}
	// Ticks come every s.interval, measured from pass starts: allow for
	// the ticker's jitter.
	return now.Sub(st.lastFull) >= interval-s.interval/10
}

// gather waits after a wake-up so a burst of events lands in one pass,
// event passes stay EventGap apart and within the call budget. It
// returns false when ctx ended.
func (s *Standalone) gather(ctx context.Context, st *runState) bool {
	return retry.Sleep(ctx, s.clock, eventDelay(s.clock, s.debounce, s.eventGap, st.lastEvent, s.budget)) == nil
}

func (s *Standalone) passed(trigger string, err error) {
	if s.syncer.metrics != nil {
		s.syncer.metrics.passes.WithLabelValues(trigger).Inc()
	}
	if s.onPass != nil {
		s.onPass(trigger, err)
	}
}

// wake is the events' wake-up channel (nil, never ready, without events).
func (s *Standalone) wake() <-chan struct{} {
	if s.events == nil {
		return nil
	}
	return s.events.Wake()
}

// EventPass describes the instances events named (by id, counted against
// the same EC2 budget as listings) and runs a partial pass for each
// service they belong to. Instances not described keep their names: an
// event only says where to look. Past maxTargetedIDs it runs a full Pass.
//
// Instances whose events only say they started and which already have a
// name (they registered at boot) are not described: that could change
// nothing, and at a thousand instances one call is half a poll's cost.
// The ledger read the pass plans on still comes after the describe, as in
// Pass: a name claimed while EC2 was read is then in the records, not
// bound a second time.
func (s *Standalone) EventPass(ctx context.Context, b events.Batch) (Summary, error) {
	if len(b.IDs) > maxTargetedIDs {
		return s.Pass(ctx)
	}
	sum := Summary{Passes: map[string]Pass{}}
	ids := b.IDs
	if len(b.Started) > 0 {
		records, err := s.store.Records(ctx, "")
		if err != nil {
			return sum, fmt.Errorf("reading ledger records: %w", err)
		}
		ids = toDescribe(b, records)
	}
	f := fleet{byID: make(map[string]naming.Instance, len(ids))}
	for chunk := range slices.Chunk(ids, maxFilterValues) {
		got, err := s.cloud.List(ctx, cloud.Filter{Name: "instance-id", Values: chunk})
		if err != nil {
			return sum, fmt.Errorf("describing %d instances named by events: %w", len(chunk), err)
		}
		for _, in := range got {
			f.byID[in.ID] = in
			if _, ok := in.Tags[TagService]; ok {
				f.tagged = append(f.tagged, in)
			}
		}
	}
	if len(f.byID) == 0 {
		return sum, nil // nothing to describe, or unknown ids (forged, or gone for good)
	}
	rev, records, ledgerRecs, err := s.readLedger(ctx)
	if err != nil {
		return sum, err
	}
	services, byService := s.group(f, records, nil)
	for name := range byService {
		sum.Services = append(sum.Services, name)
	}
	sort.Strings(sum.Services)
	var errs []error
	for _, name := range sum.Services {
		snap := &snapshot{records: ledgerRecs[name], rev: rev}
		pass, err := s.syncer.syncObserved(ctx, services[name], byService[name], nil, snap, true)
		sum.Passes[name] = pass
		sum.Changes += pass.Applied
		if err != nil {
			errs = append(errs, err)
		}
	}
	return sum, errors.Join(errs...)
}

// toDescribe is b's ids but those that only started and already have a
// name in records. A forged "running" message can only make a pass skip
// an instance, never change its name; a real termination in the same
// batch keeps the id in.
func toDescribe(b events.Batch, records []naming.Record) []string {
	named := map[string]bool{}
	for _, r := range records {
		if b.Started[r.InstanceID] && !r.Free() {
			named[r.InstanceID] = true
		}
	}
	ids := make([]string, 0, len(b.IDs))
	for _, id := range b.IDs {
		if !named[id] {
			ids = append(ids, id)
		}
	}
	return ids
}

// announced lists the instances whose names a full pass changed because
// they were launched or terminated recently: changes an event should have
// announced first. Changes no event announces (tags added later, names
// released after the stopped grace period, hold-back ending) are left out.
func announced(sum Summary, now time.Time) []string {
	var ids []string
	for _, p := range sum.Passes {
		byID := make(map[string]naming.Instance, len(p.Observed.Instances))
		for _, in := range p.Observed.Instances {
			byID[in.ID] = in
		}
		for _, c := range p.AppliedChanges() {
			switch c.Type {
			case naming.Bind:
				if in, ok := byID[c.InstanceID]; ok && now.Sub(in.LaunchTime) <= announceWindow {
					ids = append(ids, c.InstanceID)
				}
			case naming.Release:
				if in, ok := byID[c.ExpectInstanceID]; ok && (in.State == naming.StateTerminated || in.State == naming.StateShuttingDown) {
					ids = append(ids, c.ExpectInstanceID)
				}
			}
		}
	}
	return ids
}
