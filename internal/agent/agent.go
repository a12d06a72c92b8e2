// Package agent is the node loop: it follows the ledger (directly, read
// only, or through the controller's HTTP feed) and keeps the managed block
// of /etc/hosts current. When its source fails it keeps the last good file
// and reports Degraded; it never writes a block because of an error.
package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/utils/clock"

	"github.com/aerostat-io/aerostat/internal/hostsfile"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
	"github.com/aerostat-io/aerostat/internal/promreg"
	"github.com/aerostat-io/aerostat/internal/retry"
)

// Source is where the agent reads names.
//
// Error contract: Poll returns an error when it could not bring its view up
// to date; the view (Records, Released) is then exactly as before the call.
// Poll may block up to one long-poll.
type Source interface {
	Poll(ctx context.Context) (changed bool, err error)
	// Records returns the known records (bound ones at least).
	Records() []naming.Record
	// Released reports whether hostname is known to have been released
	// (as opposed to missing from a possibly bad read).
	Released(hostname string) bool
	// Rev is the source's position, for metrics.
	Rev() int64
}

// Notifier is implemented by sources that can push a wake-up when they
// change (a MongoDB change stream), so Run need not poll every Interval.
//
// Error contract: Notify returns an error when the source cannot push (the
// server has no change streams, the user may not open one); the agent then
// polls. The channel is closed when pushing stops; the agent polls again
// and retries Notify later. A wake-up only means "poll now": Poll still
// reads the deltas.
type Notifier interface {
	Notify(ctx context.Context) (<-chan struct{}, error)
}

// watcher is a store with change streams (ledger.Mongo).
type watcher interface {
	Watch(ctx context.Context) (<-chan struct{}, error)
}

// AppliedMarker is a Source that reports back which names the node holds
// (the feed client does, so the controller can show convergence). The agent
// calls MarkApplied after every sync that left the hosts file current.
type AppliedMarker interface {
	MarkApplied()
}

// LedgerSource follows a ledger.Store directly (read only).
type LedgerSource struct {
	f     *ledger.Follower
	watch watcher // nil when the store has no change streams at all
}

// NewLedgerSource returns a Source over store. When store can open a
// change stream (ledger.Mongo on a replica set) the source is a Notifier.
func NewLedgerSource(store ledger.Store, opts ledger.FollowerOptions) *LedgerSource {
	s := &LedgerSource{f: ledger.NewFollower(store, opts)}
	if w, ok := store.(watcher); ok {
		s.watch = w
	}
	return s
}

// Notify implements Notifier.
func (s *LedgerSource) Notify(ctx context.Context) (<-chan struct{}, error) {
	if s.watch == nil {
		return nil, ledger.ErrWatchUnsupported
	}
	return s.watch.Watch(ctx)
}

// Poll implements Source.
func (s *LedgerSource) Poll(ctx context.Context) (bool, error) {
	changed, err := s.f.Poll(ctx)
	return len(changed) > 0, err
}

// Records implements Source.
func (s *LedgerSource) Records() []naming.Record { return s.f.Records() }

// Released implements Source: the ledger holds the name as a gap.
func (s *LedgerSource) Released(hostname string) bool {
	r, ok := s.f.Record(hostname)
	return ok && r.Free()
}

// Rev implements Source: the follower's settled rev, below which every
// write is in Records (a higher write may be, but one below it may still
// be in flight).
func (s *LedgerSource) Rev() int64 { return s.f.Settled() }

// Registry is where metrics go (controller-runtime's metrics.Registry fits).
type Registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

// Options configure an Agent.
type Options struct {
	Source Source
	Writer *hostsfile.Writer
	// Legacy runs the legacy updater and returns its output; nil keeps the
	// legacy section the file already has.
	Legacy func(ctx context.Context) ([]byte, error)
	// LegacyRequired makes a failing legacy updater fail the sync, with
	// nothing written (one-shot `update`, as 1.x: it only replaced the file
	// when the updater worked). Without it the daemon keeps the previous
	// legacy section, still updates the block and counts the error.
	LegacyRequired bool
	// Interval between polls (with ±20% jitter); 0 polls again at once
	// (for a long-polling feed source). Errors back off from BackoffMin to
	// BackoffMax.
	Interval               time.Duration
	BackoffMin, BackoffMax time.Duration
	// ReassertEvery re-checks the file (and re-runs the legacy updater)
	// even when nothing changed, to repair hand edits. Default 60s. While a
	// Notifier source pushes changes, it is also the safety-net poll period
	// (and the delay before retrying a failed Notify).
	ReassertEvery time.Duration
	// StaleAfter is how old the last successful sync may be before
	// /readyz fails even with no error reported: a sync stuck on a
	// half-open connection returns no error. Default: three times the
	// longest healthy wait (Interval, ReassertEvery), at least 3 minutes.
	StaleAfter time.Duration
	// DryRun computes the file without writing it (LastResult has it).
	DryRun bool
	Clock  clock.WithTicker
	// Metrics receives the agent's metrics and is served on /metrics; the
	// command passes controller-runtime's metrics.Registry. Default: a
	// private registry.
	Metrics Registry
	Logger  logr.Logger
}

// Agent keeps one hosts file in sync with a Source.
type Agent struct {
	opts Options
	m    *agentMetrics
	rng  *rand.Rand

	mu          sync.Mutex // guards the status fields below (read by /readyz)
	synced      bool
	lastOK      time.Time // the last successful sync
	degraded    error
	last        hostsfile.Result
	failures    int
	dirty       bool
	nextAssert  time.Time
	lastSkipped int

	stamp fileStamp // the file as the last sync left it

	afterSync func(error)                           // test hook: called by Run after each SyncOnce
	armed     func(wait time.Duration, pushed bool) // test hook: Run's timer is armed and Run is about to block
}

// New returns an Agent. It registers its metrics in opts.Metrics.
func New(opts Options) (*Agent, error) {
	if opts.Source == nil || opts.Writer == nil {
		return nil, errors.New("agent: Source and Writer are required")
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Metrics == nil {
		opts.Metrics = prometheus.NewRegistry()
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = time.Second
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = time.Minute
	}
	if opts.ReassertEvery <= 0 {
		opts.ReassertEvery = time.Minute
	}
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = max(3*max(opts.Interval, opts.ReassertEvery), 3*time.Minute)
	}
	m, err := newMetrics(opts.Metrics)
	if err != nil {
		return nil, err
	}
	return &Agent{opts: opts, m: m, dirty: true,
		rng: rand.New(rand.NewPCG(uint64(opts.Clock.Now().UnixNano()), 0))}, nil
}

// SyncOnce polls the source once and, if anything changed (or the periodic
// re-check is due), rewrites the file. On error the file is left as it was.
func (a *Agent) SyncOnce(ctx context.Context) error {
	changed, err := a.opts.Source.Poll(ctx)
	if err != nil {
		a.m.sourceUp.Set(0)
		a.m.errors.WithLabelValues("source").Inc()
		return a.fail(fmt.Errorf("source: %w", err))
	}
	a.m.sourceUp.Set(1)
	now := a.opts.Clock.Now()
	if a.due(changed, now) {
		entries, legacy, sopts, err := a.render(ctx)
		if err != nil {
			return a.fail(err)
		}
		res, err := a.opts.Writer.Sync(entries, legacy, sopts)
		if err != nil {
			return a.fail(a.writeFailed(err))
		}
		a.wrote(res, now)
	}
	// The file holds the source's names now, written or not: a rev that
	// settled without a change to them (a late commit of a record already
	// read, a lost compare-and-set passing the overlap) is applied too.
	a.m.appliedRev.Set(float64(a.opts.Source.Rev()))
	a.markApplied()
	a.succeed(now)
	return nil
}

// due decides whether this poll rewrites the file: after a change, after
// a failed write, or when the periodic re-check is due. A re-check of a
// file nobody touched since it was written (same stamp; no legacy
// section to refresh) repairs nothing, and re-rendering 10,000 names is
// most of an idle agent's CPU: it is skipped and the next one scheduled.
func (a *Agent) due(changed bool, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case changed || a.dirty:
		return true
	case now.Before(a.nextAssert):
		return false
	case a.opts.Legacy == nil && a.stamp != (fileStamp{}) && statFile(a.opts.Writer.Path) == a.stamp:
		a.nextAssert = now.Add(a.opts.ReassertEvery)
		return false
	}
	return true
}

// render returns the file's entries from the source's records and, with
// a legacy updater, its section; a failed updater keeps the previous
// legacy section unless LegacyRequired.
func (a *Agent) render(ctx context.Context) ([]hostsfile.Entry, []byte, hostsfile.SyncOptions, error) {
	entries, skipped := hostsfile.FromRecords(a.opts.Source.Records())
	if len(skipped) != a.lastSkipped {
		// Logged when the set of bad records changes, not every poll.
		a.opts.Logger.Info("records left out of the hosts file", "count", len(skipped), "first", first(skipped))
		a.lastSkipped = len(skipped)
	}
	sopts := hostsfile.SyncOptions{Released: a.opts.Source.Released, DryRun: a.opts.DryRun, KeepLegacy: true}
	if a.opts.Legacy == nil {
		return entries, nil, sopts, nil
	}
	legacy, err := a.opts.Legacy(ctx)
	if err != nil {
		a.m.errors.WithLabelValues("legacy").Inc()
		if a.opts.LegacyRequired {
			return nil, nil, sopts, fmt.Errorf("%w; hosts file left unchanged", err)
		}
		a.opts.Logger.Error(err, "legacy updater failed; keeping the previous legacy section")
		return entries, nil, sopts, nil
	}
	sopts.KeepLegacy = false
	return entries, legacy, sopts, nil
}

// writeFailed counts a failed write by its kind and wraps it.
func (a *Agent) writeFailed(err error) error {
	kind := "write"
	switch {
	case errors.Is(err, hostsfile.ErrShrink):
		kind = "shrink"
	case errors.Is(err, hostsfile.ErrBrokenBlock):
		kind = "broken-block"
	}
	a.m.errors.WithLabelValues(kind).Inc()
	return fmt.Errorf("hosts file: %w", err)
}

// wrote records a successful write: the file's stamp (so an untouched
// file's re-check can be skipped) and the next re-check.
func (a *Agent) wrote(res hostsfile.Result, now time.Time) {
	if res.Changed && !a.opts.DryRun {
		a.m.writes.Inc()
		a.opts.Logger.Info("hosts file updated", "path", a.opts.Writer.Path, "entries", res.Entries, "removed", res.Removed, "inPlace", res.InPlace, "rev", a.opts.Source.Rev())
	}
	a.mu.Lock()
	a.last, a.dirty, a.nextAssert = res, false, now.Add(a.opts.ReassertEvery)
	a.stamp = fileStamp{}
	if !a.opts.DryRun {
		a.stamp = statFile(a.opts.Writer.Path)
	}
	a.mu.Unlock()
}

// markApplied tells a reporting source that the file holds its names. A
// dry run writes nothing, so it applies nothing either.
func (a *Agent) markApplied() {
	if m, ok := a.opts.Source.(AppliedMarker); ok && !a.opts.DryRun {
		m.MarkApplied()
	}
}

// fileStamp tells whether a file changed since it was last looked at:
// any write changes the mtime (or, for a rename, the inode).
type fileStamp struct {
	ino, size int64
	mtime     time.Time
}

func statFile(path string) fileStamp {
	st, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	s := fileStamp{size: st.Size(), mtime: st.ModTime()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		s.ino = int64(sys.Ino)
	}
	return s
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func (a *Agent) fail(err error) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.degraded == nil || a.degraded.Error() != err.Error() {
		a.opts.Logger.Error(err, "sync failed; keeping the last good hosts file")
	}
	a.degraded, a.dirty = err, true
	a.failures++
	a.m.degraded.Set(1)
	return err
}

func (a *Agent) succeed(now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.degraded != nil {
		a.opts.Logger.Info("sync recovered", "after", a.failures)
	}
	a.synced, a.lastOK, a.degraded, a.failures = true, now, nil, 0
	a.m.degraded.Set(0)
	a.m.lastSuccess.Set(float64(now.UnixNano()) / 1e9)
}

// LastResult returns the last computed file (for update --dry-run).
func (a *Agent) LastResult() hostsfile.Result {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

// Status returns whether the agent has synced once and its current error:
// the last sync's, or ErrStale when the last success is older than
// StaleAfter and no sync has failed since (one is stuck).
func (a *Agent) Status() (synced bool, degraded error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.synced && a.degraded == nil {
		if age := a.opts.Clock.Since(a.lastOK); age > a.opts.StaleAfter {
			return true, fmt.Errorf("%w: last successful sync %s ago (at %s), over %s", ErrStale,
				age.Round(time.Second), a.lastOK.UTC().Format(time.RFC3339), a.opts.StaleAfter)
		}
	}
	return a.synced, a.degraded
}

// ErrStale is Status's error while no sync has completed for StaleAfter.
var ErrStale = errors.New("stale")

// Run syncs until ctx ends: at Interval (with jitter) while healthy, with
// exponential backoff while failing. When the source is a Notifier that
// can push (a change stream), a healthy agent syncs on each wake-up and
// otherwise only every ReassertEvery.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the change stream
	var (
		wake       <-chan struct{}
		retryWatch time.Time
	)
	notifier, _ := a.opts.Source.(Notifier)
	for {
		err := a.SyncOnce(ctx)
		if a.afterSync != nil {
			a.afterSync(err)
		}
		if ctx.Err() != nil {
			return nil
		}
		if notifier != nil && wake == nil && err == nil && !a.opts.Clock.Now().Before(retryWatch) {
			if wake = a.openNotify(ctx, notifier); wake == nil {
				retryWatch = a.opts.Clock.Now().Add(a.opts.ReassertEvery)
			} else {
				continue // a write between the last poll and the stream's start sent no event
			}
		}
		wait := a.nextWait(err)
		if wake != nil && err == nil {
			wait = a.jitter(a.opts.ReassertEvery)
		}
		if wait <= 0 && wake == nil {
			continue
		}
		// A timer stopped on every other wake-up: one left armed would fire
		// later for nothing (and, under a fake clock, count as a waiter).
		timer := a.opts.Clock.NewTimer(wait)
		if a.armed != nil {
			a.armed(wait, wake != nil)
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C():
		case _, ok := <-wake:
			timer.Stop()
			if !ok {
				a.opts.Logger.Info("change stream closed; polling the rev counter", "interval", a.opts.Interval)
				a.m.pushing.Set(0)
				wake, retryWatch = nil, a.opts.Clock.Now().Add(a.opts.ReassertEvery)
			}
		}
	}
}

func (a *Agent) openNotify(ctx context.Context, n Notifier) <-chan struct{} {
	ch, err := n.Notify(ctx)
	if err != nil {
		a.opts.Logger.V(1).Info("no change stream; polling the rev counter", "interval", a.opts.Interval, "reason", err.Error())
		a.m.pushing.Set(0)
		return nil
	}
	a.opts.Logger.Info("following the ledger's change stream")
	a.m.pushing.Set(1)
	return ch
}

func (a *Agent) nextWait(err error) time.Duration {
	if err == nil {
		return a.jitter(a.opts.Interval)
	}
	a.mu.Lock()
	n := a.failures
	a.mu.Unlock()
	// ±20% around BackoffMin·2^(n-1), capped at BackoffMax, like jitter.
	return retry.Nth(retry.Exponential(a.opts.BackoffMin*4/5, a.opts.BackoffMax*4/5, 0.5), n)
}

// jitter spreads a fleet's polls so they do not hit the store in step.
func (a *Agent) jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d + time.Duration((a.rng.Float64()*0.4-0.2)*float64(d))
}

// Handler serves /metrics, /healthz (the process is alive) and /readyz
// (synced once, not degraded, not stale; 503 names the reason).
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.opts.Metrics, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		synced, degraded := a.Status()
		switch {
		case degraded != nil && !synced:
			http.Error(w, "not synced yet: "+degraded.Error(), http.StatusServiceUnavailable)
		case degraded != nil:
			http.Error(w, "degraded: "+degraded.Error(), http.StatusServiceUnavailable)
		case !synced:
			http.Error(w, "not synced yet", http.StatusServiceUnavailable)
		default:
			fmt.Fprintln(w, "ok")
		}
	})
	return mux
}

type agentMetrics struct {
	sourceUp, appliedRev, lastSuccess, degraded, pushing prometheus.Gauge
	writes                                               prometheus.Counter
	errors                                               *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*agentMetrics, error) {
	m := &agentMetrics{
		sourceUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aerostat_agent_source_up",
			Help: "1 if the last read of the ledger or feed succeeded."}),
		appliedRev: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aerostat_agent_applied_rev",
			Help: "Source rev the hosts file holds: from the ledger, the settled rev (every write at or below it is in the file); from a feed, the feed's rev."}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aerostat_agent_last_success_timestamp_seconds",
			Help: "Unix time of the last successful sync."}),
		degraded: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aerostat_agent_degraded",
			Help: "1 while the agent keeps an old hosts file because of an error."}),
		pushing: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aerostat_agent_change_stream",
			Help: "1 while the agent is woken by the ledger's change stream instead of polling."}),
		writes: prometheus.NewCounter(prometheus.CounterOpts{Name: "aerostat_agent_writes_total",
			Help: "Hosts file rewrites."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aerostat_agent_errors_total",
			Help: "Sync errors by kind (source, write, shrink, broken-block, legacy)."}, []string{"kind"}),
	}
	// A second agent in one process (1.x --register --update) shares the
	// first one's collectors.
	err := errors.Join(
		promreg.Reuse(reg, &m.sourceUp), promreg.Reuse(reg, &m.appliedRev), promreg.Reuse(reg, &m.lastSuccess),
		promreg.Reuse(reg, &m.degraded), promreg.Reuse(reg, &m.pushing), promreg.Reuse(reg, &m.writes),
		promreg.Reuse(reg, &m.errors),
	)
	if err != nil {
		return nil, fmt.Errorf("registering agent metrics: %w", err)
	}
	return m, nil
}
