package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/aerostat-io/aerostat/internal/naming"
	"github.com/aerostat-io/aerostat/internal/promreg"
	"github.com/aerostat-io/aerostat/internal/retry"
)

// Defaults of SourceOptions.
const (
	DefaultFailAfter  = 3
	DefaultMissLimit  = 3
	DefaultWindow     = 15 * time.Minute
	DefaultBackoff    = time.Second
	DefaultMaxBackoff = 30 * time.Second
)

// SourceOptions configure NewSource.
type SourceOptions struct {
	Queue Queue
	Clock clock.WithTicker // default: the real clock
	// Registerer gets the aerostat_events_* metrics; nil: none.
	Registerer prometheus.Registerer
	// FailAfter failed receives in a row make the source unhealthy: the
	// controller then polls as if events were off (default 3).
	FailAfter int
	// MissLimit changes in a row that a poll made and no event announced
	// make the source unhealthy: the queue is silent (default 3).
	MissLimit int
	// Window is how long an event is remembered to match a poll's changes
	// against (default 15 minutes).
	Window time.Duration
	// Backoff is the first pause after a failed receive, doubling up to
	// MaxBackoff (defaults 1 s and 30 s).
	Backoff, MaxBackoff time.Duration
	Logger              logr.Logger
}

// Source receives events from a Queue and keeps the instance ids they name
// until a pass that covered them has committed; only then are their
// messages deleted (Ack). It also judges whether the queue can be trusted
// to wake the controller (Health): when it cannot, the controller polls
// as often as it does without events.
type Source struct {
	o SourceOptions
	m *sourceMetrics

	wake chan struct{}

	mu      sync.Mutex
	toDel   []string      // receipts waiting for the deleter
	delWake chan struct{} // signals the deleter
	seq     uint64
	pending []pendingMsg
	ids     map[string]uint64    // pending instance id → seq of its newest message
	started map[string]bool      // pending instance id → every message of it said pending or running
	seen    map[string]time.Time // instance id → when an event named it
	errs    int
	lastErr error
	misses  int
	healthy bool
}

type pendingMsg struct {
	seq     uint64
	receipt string
}

// Batch is the instance ids events named that no committed pass has
// covered yet, and the sequence number to Ack once one has.
type Batch struct {
	IDs []string
	Seq uint64
	// Started are the ids of IDs whose every pending message is a state
	// change to pending or running. Such an event can only announce a
	// name to give: for an instance that already has one (it registered
	// at boot, or a pass named it) describing it would change nothing.
	Started map[string]bool
}

// NewSource returns a Source; Run starts receiving.
func NewSource(o SourceOptions) (*Source, error) {
	if o.Queue == nil {
		return nil, errors.New("event source: no queue")
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.FailAfter <= 0 {
		o.FailAfter = DefaultFailAfter
	}
	if o.MissLimit <= 0 {
		o.MissLimit = DefaultMissLimit
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.MaxBackoff < o.Backoff {
		o.MaxBackoff = max(o.Backoff, DefaultMaxBackoff)
	}
	m, err := newSourceMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Source{o: o, m: m, wake: make(chan struct{}, 1), delWake: make(chan struct{}, 1), ids: map[string]uint64{}, started: map[string]bool{}, seen: map[string]time.Time{}, healthy: true}
	s.m.healthy.Set(1)
	return s, nil
}

// Wake receives a value when events named instances not yet covered.
func (s *Source) Wake() <-chan struct{} { return s.wake }

// Run receives until ctx ends. Failed receives are retried with back-off;
// they make the source unhealthy after FailAfter in a row.
func (s *Source) Run(ctx context.Context) error {
	done := make(chan struct{})
	defer func() { <-done }()
	go func() { defer close(done); s.deleter(ctx) }()
	backoff := retry.New(s.o.Clock, retry.Exponential(s.o.Backoff, s.o.MaxBackoff, 0))
	for ctx.Err() == nil {
		msgs, err := s.o.Queue.Receive(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			s.failed(ctx, err)
			if backoff.Wait(ctx) != nil {
				return nil
			}
			continue
		}
		backoff.Reset()
		s.received(ctx, msgs)
	}
	return nil
}

func (s *Source) failed(ctx context.Context, err error) {
	s.m.receiveErrors.Inc()
	s.mu.Lock()
	s.errs++
	s.lastErr = err
	s.mu.Unlock()
	s.judge(ctx)
}

// received parses msgs; those naming an instance become pending, the
// others are deleted at once (they can wake nothing).
func (s *Source) received(ctx context.Context, msgs []Message) {
	now := s.o.Clock.Now()
	var drop []string
	woke := false
	s.mu.Lock()
	s.errs, s.lastErr = 0, nil
	for _, msg := range msgs {
		ev, err := Parse(msg.Body)
		switch {
		case err != nil:
			s.m.messages.WithLabelValues("malformed").Inc()
			log(ctx, s.o.Logger).V(1).Info("dropping a malformed event message", "message", msg.ID, "error", err.Error())
			drop = append(drop, msg.Receipt)
			continue
		case ev.Kind == KindOther:
			s.m.messages.WithLabelValues(string(KindOther)).Inc()
			drop = append(drop, msg.Receipt)
			continue
		}
		s.m.messages.WithLabelValues(string(ev.Kind)).Inc()
		s.seq++
		s.pending = append(s.pending, pendingMsg{seq: s.seq, receipt: msg.Receipt})
		started := ev.Kind == KindStateChange && (ev.State == naming.StatePending || ev.State == naming.StateRunning)
		if _, ok := s.ids[ev.InstanceID]; ok {
			started = started && s.started[ev.InstanceID]
		}
		s.started[ev.InstanceID] = started
		s.ids[ev.InstanceID] = s.seq
		s.seen[ev.InstanceID] = now
		s.misses = 0 // the pipeline delivers
		woke = true
	}
	if len(msgs) > 0 {
		for id, at := range s.seen {
			if now.Sub(at) > s.o.Window {
				delete(s.seen, id)
			}
		}
	}
	s.toDel = append(s.toDel, drop...)
	s.mu.Unlock()
	s.kickDeleter()
	s.judge(ctx)
	if woke {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Pending is what no committed pass has covered yet.
func (s *Source) Pending() Batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := Batch{Seq: s.seq, IDs: make([]string, 0, len(s.ids)), Started: map[string]bool{}}
	for id := range s.ids {
		b.IDs = append(b.IDs, id)
		if s.started[id] {
			b.Started[id] = true
		}
	}
	slices.Sort(b.IDs)
	return b
}

// Ack deletes the messages of b (and any older) from the queue, in the
// background while Run runs: call it only after a pass that started
// after Pending returned b has committed.
// Instance ids named again by a newer message stay pending.
func (s *Source) Ack(ctx context.Context, b Batch) {
	s.mu.Lock()
	var receipts []string
	k := 0
	for _, p := range s.pending {
		if p.seq <= b.Seq {
			receipts = append(receipts, p.receipt)
			continue
		}
		s.pending[k] = p
		k++
	}
	s.pending = s.pending[:k]
	for id, seq := range s.ids {
		if seq <= b.Seq {
			delete(s.ids, id)
			delete(s.started, id)
		}
	}
	s.toDel = append(s.toDel, receipts...)
	s.mu.Unlock()
	s.kickDeleter()
}

func (s *Source) kickDeleter() {
	select {
	case s.delWake <- struct{}{}:
	default:
	}
}

// deleter deletes acknowledged messages in the background, so a pass
// that covered a storm of messages does not wait for a thousand deletes.
func (s *Source) deleter(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.delWake:
		}
		for {
			s.mu.Lock()
			batch := s.toDel[:min(len(s.toDel), 100)]
			s.toDel = s.toDel[len(batch):]
			s.mu.Unlock()
			if len(batch) == 0 || ctx.Err() != nil {
				break
			}
			s.delete(ctx, batch)
		}
	}
}

func (s *Source) delete(ctx context.Context, receipts []string) {
	if err := s.o.Queue.Delete(ctx, receipts); err != nil {
		// Undeleted messages come back after the visibility timeout and
		// wake one more pass: harmless.
		s.m.deleteErrors.Inc()
		log(ctx, s.o.Logger).Error(err, "deleting event messages; they will be delivered again", "messages", len(receipts))
		return
	}
	s.m.deleted.Add(float64(len(receipts)))
}

// Observed tells the source which instances a poll (a full listing)
// changed names for, among those whose change an event should have
// announced (launched or terminated recently). A change no event named in
// the window is a miss; MissLimit misses in a row mean the queue is
// silent.
func (s *Source) Observed(ctx context.Context, ids []string) {
	if len(ids) == 0 {
		return
	}
	now := s.o.Clock.Now()
	s.mu.Lock()
	for _, id := range ids {
		if at, ok := s.seen[id]; ok && now.Sub(at) <= s.o.Window {
			s.misses = 0
			continue
		}
		s.misses++
		s.m.misses.Inc()
	}
	s.mu.Unlock()
	s.judge(ctx)
}

// Health reports whether events can be trusted to wake the controller,
// and why not.
func (s *Source) Health() (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.healthLocked()
}

func (s *Source) healthLocked() (bool, string) {
	switch {
	case s.errs >= s.o.FailAfter:
		return false, fmt.Sprintf("receiving from the event queue failed %d times in a row (last: %v); polling as without events", s.errs, s.lastErr)
	case s.misses >= s.o.MissLimit:
		return false, fmt.Sprintf("the poll made %d changes in a row that no event announced (queue silent?); polling as without events", s.misses)
	}
	return true, "events received; the poll is the safety net"
}

// judge logs and publishes a change of health.
func (s *Source) judge(ctx context.Context) {
	s.mu.Lock()
	ok, why := s.healthLocked()
	changed := ok != s.healthy
	s.healthy = ok
	s.mu.Unlock()
	if !changed {
		return
	}
	if ok {
		s.m.healthy.Set(1)
		log(ctx, s.o.Logger).Info("event queue healthy again; polling at the safety-net interval")
		return
	}
	s.m.healthy.Set(0)
	s.m.fallbacks.Inc()
	log(ctx, s.o.Logger).Info("falling back to polling", "reason", why)
}

func log(ctx context.Context, l logr.Logger) logr.Logger {
	if l.GetSink() != nil {
		return l
	}
	return logr.FromContextOrDiscard(ctx)
}

type sourceMetrics struct {
	messages      *prometheus.CounterVec
	receiveErrors prometheus.Counter
	deleted       prometheus.Counter
	deleteErrors  prometheus.Counter
	misses        prometheus.Counter
	fallbacks     prometheus.Counter
	healthy       prometheus.Gauge
}

func newSourceMetrics(reg prometheus.Registerer) (*sourceMetrics, error) {
	m := &sourceMetrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aerostat_events_messages_total", Help: "Event queue messages received, by kind (state-change, spot-interruption, rebalance, other, malformed).",
		}, []string{"kind"}),
		receiveErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "aerostat_events_receive_errors_total", Help: "Failed receives from the event queue."}),
		deleted:       prometheus.NewCounter(prometheus.CounterOpts{Name: "aerostat_events_deleted_total", Help: "Event messages deleted after the pass that used them committed."}),
		deleteErrors:  prometheus.NewCounter(prometheus.CounterOpts{Name: "aerostat_events_delete_errors_total", Help: "Failed deletes of event messages (they are delivered again)."}),
		misses:        prometheus.NewCounter(prometheus.CounterOpts{Name: "aerostat_events_missed_total", Help: "Changes the poll made that no event announced."}),
		fallbacks:     prometheus.NewCounter(prometheus.CounterOpts{Name: "aerostat_events_fallbacks_total", Help: "Times the controller fell back to polling because the event queue failed or went silent."}),
		healthy:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "aerostat_events_healthy", Help: "1 while events wake the controller and the poll is only the safety net; 0 while it polls as without events."}),
	}
	if reg == nil {
		return m, nil
	}
	err := errors.Join(
		promreg.Reuse(reg, &m.messages), promreg.Reuse(reg, &m.receiveErrors), promreg.Reuse(reg, &m.deleted),
		promreg.Reuse(reg, &m.deleteErrors), promreg.Reuse(reg, &m.misses), promreg.Reuse(reg, &m.fallbacks),
		promreg.Reuse(reg, &m.healthy),
	)
	if err != nil {
		return nil, fmt.Errorf("registering event metrics: %w", err)
	}
	return m, nil
}
