package controllers

import (
	"context"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// CallBudget keeps event passes from costing more EC2 DescribeInstances
// calls than polling every interval would: EC2's request limit is shared
// by the whole account. The standalone loop and the Kubernetes-mode
// EventWaker use the same one.
//
// It earns, each poll interval, the calls of the last full listing of the
// fleet (a sweep of every aerostat:service-tagged instance), and every
// listing made through Meter spends the calls it made. It banks up to one
// safety-net interval's earnings, so over any such interval events and
// the safety net together spend no more than polling would have, while a
// burst of changes is not made to wait. Event passes wait (Wait) while
// the budget is spent, so under heavy churn more events share one pass
// and the delay grows towards the poll interval, never past what polling
// would cost. Calls are the pages a listing returned (retries are not
// seen at this level). Safe for concurrent use.
type CallBudget struct {
	clock    clock.PassiveClock
	interval time.Duration
	bank     time.Duration // at most this long's earnings are kept

	mu      sync.Mutex
	perPoll float64 // calls of the last full listing; 0: not yet known
	tokens  float64
	at      time.Time
}

// NewCallBudget returns a budget earning one full listing's calls every
// interval (default DefaultPollInterval) and banking at most bank's
// earnings (at least one interval's); a nil clock is the real one.
func NewCallBudget(clk clock.PassiveClock, interval, bank time.Duration) *CallBudget {
	if clk == nil {
		clk = clock.RealClock{}
	}
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	return &CallBudget{clock: clk, interval: interval, bank: max(bank, interval)}
}

func (b *CallBudget) capacity() float64 {
	return b.perPoll * float64(b.bank) / float64(b.interval)
}

func (b *CallBudget) refill(now time.Time) {
	if !b.at.IsZero() && b.perPoll > 0 {
		b.tokens = min(b.capacity(), b.tokens+b.perPoll*float64(now.Sub(b.at))/float64(b.interval))
	}
	b.at = now
}

// listed records a full listing of calls calls: the price of one poll.
// The first one is what polling would have spent anyway, so the budget
// starts with one poll's worth in the bank.
func (b *CallBudget) listed(calls int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	first := b.perPoll == 0
	b.refill(b.clock.Now())
	b.perPoll = float64(max(calls, 1))
	if first {
		b.tokens = b.perPoll
		return
	}
	b.tokens -= float64(calls)
}

func (b *CallBudget) spend(calls int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(b.clock.Now())
	b.tokens -= float64(calls)
}

// Wait is how long until one call is affordable (0 before the first full
// listing: polling has not said what it costs yet).
func (b *CallBudget) Wait() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(b.clock.Now())
	if b.perPoll == 0 || b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) / b.perPoll * float64(b.interval))
}

// Meter returns c with every listing charged to the budget: a sweep of
// every aerostat:service-tagged instance as a full listing (it sets the
// price of a poll), any other listing (instances by id, a service's own
// filters) as spent calls. Put it under cloud.Shared, so a sweep that
// answers every service is charged once.
func (b *CallBudget) Meter(c cloud.Cloud) cloud.Cloud { return metered{c: c, b: b} }

type metered struct {
	c cloud.Cloud
	b *CallBudget
}

func (m metered) List(ctx context.Context, filters ...cloud.Filter) ([]naming.Instance, error) {
	out, err := m.c.List(ctx, filters...)
	calls := pages(len(out), cloud.PageSize)
	if err == nil && sweep(filters) {
		m.b.listed(calls)
	} else {
		m.b.spend(calls)
	}
	return out, err
}

// sweep reports whether filters list every aerostat:service-tagged
// instance: the listing a poll makes.
func sweep(filters []cloud.Filter) bool {
	return len(filters) == 1 && filters[0].Name == "tag-key" && len(filters[0].Values) == 1 && filters[0].Values[0] == TagService
}

// eventDelay is how long a woken event loop waits before taking its
// batch: debounce lets a burst gather, gap keeps batches apart (last is
// when the previous one was taken), and the budget makes them wait while
// polling would not have spent as much. A negative gap (tests) waits for
// nothing but the debounce.
func eventDelay(clk clock.PassiveClock, debounce, gap time.Duration, last time.Time, b *CallBudget) time.Duration {
	d := max(debounce, gap-clk.Since(last))
	if gap > 0 && b != nil {
		d = max(d, b.Wait())
	}
	return d
}
