package controllers

import (
	"context"
	"time"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

// DefaultPollInterval is how often EC2 is listed (1.x listed every 60 s).
const DefaultPollInterval = 10 * time.Second

// Poller sends a tick on its channel every interval, so each NamingService
// is reconciled against a fresh EC2 listing. As a manager Runnable it runs
// only on the elected leader.
type Poller struct {
	interval time.Duration
	clock    clock.WithTicker
	ch       chan event.TypedGenericEvent[time.Time]

	events         EventsHealth
	eventsInterval time.Duration
}

// EventsHealth reports whether events can be trusted to wake the
// controller, and why not.
type EventsHealth interface {
	Health() (ok bool, why string)
}

// NewPoller returns a Poller; a zero interval means DefaultPollInterval and
// a nil clock the real one.
func NewPoller(interval time.Duration, clk clock.WithTicker) *Poller {
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Poller{interval: interval, clock: clk, ch: make(chan event.TypedGenericEvent[time.Time])}
}

// WithEvents makes the poll the safety net: while events are healthy a
// tick is sent only every eventsInterval (default
// DefaultEventsPollInterval), and every interval again once they are not.
func (p *Poller) WithEvents(events EventsHealth, eventsInterval time.Duration) *Poller {
	if eventsInterval <= 0 {
		eventsInterval = DefaultEventsPollInterval
	}
	p.events, p.eventsInterval = events, eventsInterval
	return p
}

// Ticks is the channel to hand to source.Channel.
func (p *Poller) Ticks() <-chan event.TypedGenericEvent[time.Time] { return p.ch }

// Start ticks until ctx is done. Ticks do not pile up behind slow passes:
// the workqueue holds each NamingService at most once.
func (p *Poller) Start(ctx context.Context) error {
	t := p.clock.NewTicker(p.interval)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C():
			if p.skip(last, now) {
				continue
			}
			last = now
			select {
			case p.ch <- event.TypedGenericEvent[time.Time]{Object: now}:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// skip reports whether a tick at now is not due while events are healthy.
// Ticks come every interval: allow for the ticker's jitter.
func (p *Poller) skip(last, now time.Time) bool {
	if p.events == nil || last.IsZero() {
		return false
	}
	if ok, _ := p.events.Health(); !ok {
		return false
	}
	return now.Sub(last) < p.eventsInterval-p.interval/10
}
