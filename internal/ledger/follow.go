package ledger

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/utils/clock"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// FollowerOptions configure NewFollower.
type FollowerOptions struct {
	// Overlap is how long a write may take between taking its rev and
	// committing and still be seen by deltas: each poll re-reads every rev
	// handed out after the counter value seen at least Overlap ago.
	// 30s when zero.
	Overlap time.Duration
	// Resync is the period of full reads (anti-entropy for writes slower
	// than Overlap and for 1.x clients, which write no rev). 10m when zero.
	Resync time.Duration
	// Clock is the real clock when nil.
	Clock clock.PassiveClock
}

// Follower keeps a full, current copy of the ledger from deltas, following
// the overlap rule (DESIGN.md): a writer takes its rev before it commits,
// so writes can land out of order, and a reader that asks only for revs
// above the highest it has seen can miss the slower writer forever.
// Instead each Poll asks for every rev above the counter value seen at
// least Overlap before the previous poll started, and every Resync it
// reads everything.
//
// Why that bound: a write W that commits after the previous poll started
// (else that poll or an earlier one saw it) took its rev less than Overlap
// before committing, so after the counter value chosen was read; its rev
// is therefore above it. This holds whatever the poll interval, provided
// writes commit within Overlap of taking their rev; slower ones, and 1.x
// clients, which write no rev, wait for the next full read.
//
// Records are keyed by hostname; where 1.x duplicates share one, the
// highest rev wins. A Follower is not safe for concurrent use.
type Follower struct {
	store   Store
	opts    FollowerOptions
	records map[string]naming.Record
	marks   []mark // counter values seen by past polls, oldest first
	synced  time.Time
	prev    time.Time // start of the previous successful poll
}

// mark is a counter value and a time by which it had been read.
type mark struct {
	at  time.Time
	rev int64
}

// NewFollower returns a Follower that has not read anything yet.
func NewFollower(store Store, opts FollowerOptions) *Follower {
	if opts.Overlap == 0 {
		opts.Overlap = 30 * time.Second
	}
	if opts.Resync == 0 {
		opts.Resync = 10 * time.Minute
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	return &Follower{store: store, opts: opts}
}

// Poll brings the copy up to date and returns all records (sorted by
// hostname) and whether any changed since the previous Poll. On error the
// copy is unchanged: the caller keeps what it had (and reports Degraded).
func (f *Follower) Poll(ctx context.Context) (records []naming.Record, changed bool, err error) {
	now := f.opts.Clock.Now()
	if f.records == nil || now.Sub(f.synced) >= f.opts.Resync {
		changed, err = f.resync(ctx, now)
	} else {
		changed, err = f.delta(ctx, now)
	}
	if err != nil {
		return nil, false, err
	}
	f.prev = now
	return f.snapshot(), changed, nil
}

func (f *Follower) resync(ctx context.Context, now time.Time) (bool, error) {
	// The counter is read first: a write committing during the read
	// carries a higher rev and is picked up by the next delta.
	rev, err := f.store.Rev(ctx)
	if err != nil {
		return false, fmt.Errorf("following ledger: %w", err)
	}
	recs, err := f.store.Records(ctx, "")
	if err != nil {
		return false, fmt.Errorf("following ledger: %w", err)
	}
	next := map[string]naming.Record{}
	for _, r := range recs {
		merge(next, r)
	}
	changed := !equalSets(f.records, next)
	f.records, f.synced = next, now
	f.marks = append(f.marks, mark{at: f.opts.Clock.Now(), rev: rev})
	return changed, nil
}

func (f *Follower) delta(ctx context.Context, _ time.Time) (bool, error) {
	since := f.low()
	recs, rev, err := f.store.Changes(ctx, since)
	if err != nil {
		return false, fmt.Errorf("following ledger from rev %d: %w", since, err)
	}
	changed := false
	for _, r := range recs {
		if old, ok := f.records[r.Hostname]; ok && old.Rev > r.Rev {
			continue
		}
		if old, ok := f.records[r.Hostname]; !ok || !equalRecord(old, r) {
			changed = true
		}
		merge(f.records, r)
	}
	f.marks = append(f.marks, mark{at: f.opts.Clock.Now(), rev: rev})
	return changed, nil
}

// low is the latest counter value read at least Overlap before the
// previous poll started, 0 (read everything) when there is none yet.
// Older marks are dropped.
func (f *Follower) low() int64 {
	i := -1
	for j, m := range f.marks {
		if !m.at.After(f.prev.Add(-f.opts.Overlap)) {
			i = j
		}
	}
	if i < 0 {
		return 0
	}
	f.marks = f.marks[i:]
	return f.marks[0].rev
}

func (f *Follower) snapshot() []naming.Record {
	out := make([]naming.Record, 0, len(f.records))
	for _, r := range f.records {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b naming.Record) int { return strings.Compare(a.Hostname, b.Hostname) })
	return out
}

func merge(m map[string]naming.Record, r naming.Record) {
	if old, ok := m[r.Hostname]; ok && (old.Rev > r.Rev || (old.Rev == r.Rev && r.Free())) {
		return
	}
	m[r.Hostname] = r
}

func equalSets(a, b map[string]naming.Record) bool {
	if len(a) != len(b) {
		return false
	}
	for h, r := range a {
		if o, ok := b[h]; !ok || !equalRecord(r, o) {
			return false
		}
	}
	return true
}

func equalRecord(a, b naming.Record) bool {
	return a.Hostname == b.Hostname && a.Service == b.Service && a.Scheme == b.Scheme &&
		a.Role == b.Role && a.Ordinal == b.Ordinal && a.InstanceID == b.InstanceID &&
		a.IP == b.IP && slices.Equal(a.Aliases, b.Aliases) && a.Rev == b.Rev &&
		a.UpdatedAt.Equal(b.UpdatedAt) && a.ClaimedAt.Equal(b.ClaimedAt) &&
		a.ReleasedAt.Equal(b.ReleasedAt) && a.LastInstanceID == b.LastInstanceID
}
