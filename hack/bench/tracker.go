package main

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aerostat-io/aerostat/internal/feed"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// Expectation kinds.
const (
	kindLaunch   = "launch"   // tagged instance launched; the controller names it
	kindRegister = "register" // node claims its own name (aerostat register)
	kindRelease  = "release"  // instance terminated; its old address must leave every file
)

// expectation is one change followed from its start to every agent's file.
type expectation struct {
	kind   string
	id     string
	start  time.Time
	host   string
	ip     string
	absent bool // release: done when host no longer maps to ip
	bound  time.Time
	freed  time.Time // release: when the controller committed it
	seen   []time.Time
	done   time.Time
}

// committed is when the controller committed the change: the bind, or
// for a release the release (zero: not yet).
func (e *expectation) committed() time.Time {
	if e.kind == kindRelease {
		return e.freed
	}
	return e.bound
}

func (e *expectation) holds(v map[string]string) bool {
	if e.absent {
		return v[e.host] != e.ip
	}
	return v[e.host] == e.ip
}

// tracker follows expectations through the agents' confirmed views. A view
// is confirmed when the agent's SyncOnce that wrote it has returned (see
// watchSource).
type tracker struct {
	mu     sync.Mutex
	agents int
	byID   map[string]*expectation
	open   map[*expectation]bool
	all    []*expectation
	views  []map[string]string
	viewAt []time.Time
}

func newTracker(agents int) *tracker {
	return &tracker{agents: agents, byID: map[string]*expectation{}, open: map[*expectation]bool{},
		views: make([]map[string]string, agents), viewAt: make([]time.Time, agents)}
}

// expectBind starts following an instance that should get a name.
func (t *tracker) expectBind(kind, id string, start time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := &expectation{kind: kind, id: id, start: start, seen: make([]time.Time, t.agents)}
	t.byID[id] = e
	t.all = append(t.all, e)
}

// expectGone starts following an address that must leave every file.
func (t *tracker) expectGone(host, ip string, start time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := &expectation{kind: kindRelease, host: host, ip: ip, absent: true, start: start, bound: start, seen: make([]time.Time, t.agents)}
	t.all = append(t.all, e)
	t.open[e] = true
}

// bound records that id got host (committed at at). Views confirmed
// before the tracker heard of the bind count from the bind time.
func (t *tracker) bound(id, host, ip string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.byID[id]
	if e == nil || !e.bound.IsZero() {
		return
	}
	e.host, e.ip, e.bound = host, ip, at
	delete(t.byID, id)
	t.open[e] = true
	for i, v := range t.views {
		if v != nil && e.holds(v) {
			t.see(e, i, at)
		}
	}
}

// released records that the controller committed the release of host.
func (t *tracker) released(host string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.all {
		if e.kind == kindRelease && e.host == host && e.freed.IsZero() {
			e.freed = at
		}
	}
}

func (t *tracker) see(e *expectation, agent int, at time.Time) {
	if !e.seen[agent].IsZero() {
		return
	}
	e.seen[agent] = at
	for _, s := range e.seen {
		if s.IsZero() {
			return
		}
	}
	e.done = at
	delete(t.open, e)
}

// confirm records that agent's hosts file holds view since at.
func (t *tracker) confirm(agent int, at time.Time, view map[string]string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.views[agent], t.viewAt[agent] = view, at
	for e := range t.open {
		if e.holds(view) {
			t.see(e, agent, at)
		}
	}
}

// synced reports how many agents have confirmed a view holding n names.
func (t *tracker) synced(n int) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := 0
	for _, v := range t.views {
		if len(v) >= n {
			k++
		}
	}
	return k
}

// pending is the number of expectations not done yet.
func (t *tracker) pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.open) + len(t.byID)
}

// results splits finished expectations into start→bound (for releases:
// start→committed) and start→every file durations per kind, and
// bound→every file for the named ones.
func (t *tracker) results() (toBound, toFiles map[string][]time.Duration, boundToFiles []time.Duration, unfinished int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	toBound, toFiles = map[string][]time.Duration{}, map[string][]time.Duration{}
	for _, e := range t.all {
		if c := e.committed(); !c.IsZero() {
			toBound[e.kind] = append(toBound[e.kind], c.Sub(e.start))
		}
		if e.done.IsZero() {
			unfinished++
			continue
		}
		toFiles[e.kind] = append(toFiles[e.kind], e.done.Sub(e.start))
		if e.kind != kindRelease {
			boundToFiles = append(boundToFiles, e.done.Sub(e.bound))
		}
	}
	return toBound, toFiles, boundToFiles, unfinished
}

// watchSource is the feed client an in-process agent reads, instrumented.
// agent.Run with Interval 0 (a long-polling feed) calls SyncOnce again as
// soon as the previous one returned, and SyncOnce writes the file before
// returning; so when Poll is entered, the view the previous Poll returned
// is on disk. That entry is when the view is confirmed, and the time since
// the previous Poll returned is the agent's render+write time.
type watchSource struct {
	*feed.Client
	idx int
	tr  *tracker

	pending  map[string]string
	returned time.Time
	bytes    atomic.Int64

	mu      sync.Mutex
	renders []time.Duration
}

func (w *watchSource) Poll(ctx context.Context) (bool, error) {
	now := time.Now()
	if w.pending != nil {
		w.tr.confirm(w.idx, now, w.pending)
		w.mu.Lock()
		w.renders = append(w.renders, now.Sub(w.returned))
		w.mu.Unlock()
		w.pending = nil
	}
	changed, err := w.Client.Poll(ctx)
	w.bytes.Store(w.Client.BytesRead)
	if err == nil && changed {
		w.pending = viewOf(w.Client.Records())
		w.returned = time.Now()
	}
	return changed, err
}

func (w *watchSource) renderTimes() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.renders...)
}

func viewOf(recs []naming.Record) map[string]string {
	v := make(map[string]string, len(recs))
	for _, r := range recs {
		v[r.Hostname] = r.IP
	}
	return v
}

// slow describes the changes that took over d to be bound or freed by
// the controller, with times from t0 (for -events-trace).
func (t *tracker) slow(t0 time.Time, d time.Duration) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, e := range t.all {
		what := fmt.Sprintf("%s of %s started at +%.2fs", e.kind, cmp.Or(e.id, e.host), e.start.Sub(t0).Seconds())
		switch end := e.committed(); {
		case end.IsZero():
			out = append(out, what+", not committed")
		case end.Sub(e.start) > d:
			out = append(out, fmt.Sprintf("%s, committed at +%.2fs (%.2fs)", what, end.Sub(t0).Seconds(), end.Sub(e.start).Seconds()))
		}
	}
	return out
}
