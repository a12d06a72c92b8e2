package controllers

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/aerostat-io/aerostat/api/v1alpha1"
	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/events"
	"github.com/aerostat-io/aerostat/internal/retry"
)

// EventWakerOptions configure NewEventWaker.
type EventWakerOptions struct {
	Events *events.Source
	// Cloud describes the instances events name, to learn their service
	// (counted against the same EC2 budget as the passes' listings).
	Cloud cloud.Cloud
	// Reader lists the NamingServices.
	Reader client.Reader
	Clock  clock.WithTicker // default: the real clock
	// Debounce and Gap as in StandaloneOptions (defaults
	// DefaultEventDebounce and DefaultEventGap; negative: none).
	Debounce, Gap time.Duration
	// Budget, when set, is the call budget the passes' listings are
	// metered with (Budget.Meter under the Syncer's cloud.Shared): the
	// waker meters its own describes with it too, and with a Gap waits
	// while event batches would cost more than polling. Nil: no budget.
	Budget *CallBudget
	// Cache, when set, is the listing cache the passes read from
	// (cloud.Shared): it is dropped when a batch is taken, so the passes
	// it wakes list EC2 after the events, not from an older sweep.
	Cache Invalidator
}

// Invalidator is a listing cache that can be told its listing is stale;
// Invalidate returns once no listing from before the call can be served.
type Invalidator interface {
	Invalidate()
}

// EventWaker brings events to the manager: as a leader-only Runnable it
// runs the event source, describes the instances a burst of events names,
// and enqueues the NamingServices they belong to through a channel source.
// Those reconciles are ordinary passes on a complete listing of their
// service, so an event only says when to look, never what to write: a
// lost, duplicated, reordered or forged message cannot release a name.
// The messages are deleted once every woken service had a pass that began
// after the messages were taken and committed; until then they stay
// pending, and the next wake or poll tick covers them.
//
// Unlike Standalone it does not run partial passes on the described
// instances: a reconcile is one service's pass and reports in that
// NamingService's status, so it lists the service (one call) itself.
type EventWaker struct {
	o  EventWakerOptions
	ch chan event.TypedGenericEvent[string]

	lastWake time.Time // owned by Start's goroutine

	mu       sync.Mutex
	gen      uint64 // bumped each time a batch is taken
	inflight *wokenBatch
}

// wokenBatch is a batch of events whose services were enqueued.
type wokenBatch struct {
	batch   events.Batch
	gen     uint64          // passes begun at or after gen cover it
	waiting map[string]bool // NamingService names without such a pass yet
}

// NewEventWaker returns an EventWaker; add it to the manager and hand
// Requests to SetupWithManager.
func NewEventWaker(o EventWakerOptions) (*EventWaker, error) {
	if o.Events == nil || o.Cloud == nil || o.Reader == nil {
		return nil, fmt.Errorf("event waker: events, cloud and reader are required")
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Debounce == 0 {
		o.Debounce = DefaultEventDebounce
	}
	if o.Gap == 0 {
		o.Gap = DefaultEventGap
	}
	if o.Budget != nil {
		o.Cloud = o.Budget.Meter(o.Cloud)
	}
	return &EventWaker{o: o, ch: make(chan event.TypedGenericEvent[string])}, nil
}

// Requests carries the names of NamingServices to reconcile.
func (w *EventWaker) Requests() <-chan event.TypedGenericEvent[string] { return w.ch }

// Start runs the event source and wakes services until ctx ends.
func (w *EventWaker) Start(ctx context.Context) error {
	done := make(chan struct{})
	go func() { defer close(done); _ = w.o.Events.Run(ctx) }()
	defer func() { <-done }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.o.Events.Wake():
			if !w.gather(ctx) {
				return nil
			}
			w.wake(ctx)
		}
	}
}

// gather waits after a wake-up so a burst of events lands in one batch,
// batches stay Gap apart and within the call budget.
func (w *EventWaker) gather(ctx context.Context) bool {
	return retry.Sleep(ctx, w.o.Clock, eventDelay(w.o.Clock, w.o.Debounce, w.o.Gap, w.lastWake, w.o.Budget)) == nil
}

// wake takes the pending events and enqueues their services, together
// with the services an earlier batch still waits for.
func (w *EventWaker) wake(ctx context.Context) {
	w.lastWake = w.o.Clock.Now()
	if w.o.Cache != nil {
		// Before the batch is taken: a pass that begins after it (and so
		// may acknowledge it) lists afresh.
		w.o.Cache.Invalidate()
	}
	w.mu.Lock()
	b := w.o.Events.Pending()
	w.gen++
	gen := w.gen
	w.mu.Unlock()
	if len(b.IDs) == 0 {
		return
	}
	services, err := w.services(ctx, b.IDs)
	if err != nil {
		// The messages stay pending and come back after their visibility
		// timeout; the poll covers them meanwhile.
		log.FromContext(ctx).Error(err, "finding the services events name", "instances", len(b.IDs))
		return
	}
	w.mu.Lock()
	if w.inflight != nil {
		for name := range w.inflight.waiting {
			services[name] = true
		}
	}
	w.inflight = &wokenBatch{batch: b, gen: gen, waiting: services}
	names := make([]string, 0, len(services))
	for name := range services {
		names = append(names, name)
	}
	w.mu.Unlock()
	if len(names) == 0 {
		w.covered(ctx, b, gen) // no service of ours: nothing to look at
		return
	}
	slices.Sort(names)
	for _, name := range names {
		select {
		case w.ch <- event.TypedGenericEvent[string]{Object: name}:
		case <-ctx.Done():
			return
		}
	}
}

// services maps instance ids to the NamingServices that may hold them:
// the one named by an instance's service tag, and those with their own
// filters (which may select any instance) when some instance has no
// service of ours by tag. Ids EC2 does not know name nothing. Past
// maxTargetedIDs describing would cost more than listing: every
// service is woken.
func (w *EventWaker) services(ctx context.Context, ids []string) (map[string]bool, error) {
	var list v1alpha1.NamingServiceList
	if err := w.o.Reader.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("listing naming services: %w", err)
	}
	out := map[string]bool{}
	byTag := map[string]string{}
	var custom []string
	for _, ns := range list.Items {
		if len(ns.Spec.Selector.Filters) > 0 {
			custom = append(custom, ns.Name)
		} else {
			byTag[ns.Spec.Service] = ns.Name
		}
		if len(ids) > maxTargetedIDs {
			out[ns.Name] = true
		}
	}
	if len(ids) > maxTargetedIDs {
		return out, nil
	}
	unmatched := false
	for chunk := range slices.Chunk(ids, maxFilterValues) {
		got, err := w.o.Cloud.List(ctx, cloud.Filter{Name: "instance-id", Values: chunk})
		if err != nil {
			return nil, fmt.Errorf("describing %d instances named by events: %w", len(chunk), err)
		}
		for _, in := range got {
			if name, ok := byTag[in.Tags[TagService]]; ok {
				out[name] = true
			} else {
				unmatched = true
			}
		}
	}
	if unmatched {
		for _, name := range custom {
			out[name] = true
		}
	}
	return out, nil
}

// BeginPass is called before a pass reads EC2, and the function it
// returns after the pass committed (err nil) or failed: a pass that
// began after a batch was taken covers it.
func (w *EventWaker) BeginPass(service string) func(context.Context, Pass, error) {
	w.mu.Lock()
	gen := w.gen
	w.mu.Unlock()
	start := w.o.Clock.Now()
	return func(ctx context.Context, pass Pass, err error) {
		if err != nil || pass.ObserveErr != nil {
			return
		}
		if !pass.Partial {
			w.o.Events.Observed(ctx, announced(Summary{Passes: map[string]Pass{service: pass}}, start))
		}
		w.mu.Lock()
		f := w.inflight
		if f == nil || gen < f.gen || !f.waiting[service] {
			w.mu.Unlock()
			return
		}
		delete(f.waiting, service)
		left := len(f.waiting)
		w.mu.Unlock()
		if left == 0 {
			w.covered(ctx, f.batch, f.gen)
		}
	}
}

// covered acknowledges b once every service it woke had its pass.
func (w *EventWaker) covered(ctx context.Context, b events.Batch, gen uint64) {
	w.mu.Lock()
	if w.inflight != nil && w.inflight.gen == gen {
		w.inflight = nil
	}
	w.mu.Unlock()
	w.o.Events.Ack(ctx, b)
}

// Health reports whether events can be trusted to wake the controller.
func (w *EventWaker) Health() (bool, string) { return w.o.Events.Health() }
