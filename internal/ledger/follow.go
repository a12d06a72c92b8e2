package ledger

import (
	"context"
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"

	"github.com/aerostat-io/aerostat/internal/naming"
	"github.com/aerostat-io/aerostat/internal/retry"
)

// followUpRevs is how far below the counter of its first full read a
// follower re-reads deltas during the following Overlap: more revs than
// writers hold in flight at once (a writer holds one, or a batch of
// insertChunk), and well inside the change log's window so the re-reads
// come from the log.
const followUpRevs = changeWindow / 2

// Defaults for FollowerOptions.
const (
	DefaultOverlap     = 30 * time.Second
	DefaultResyncEvery = 5 * time.Minute
)

// FollowerOptions tune a Follower.
type FollowerOptions struct {
	// Overlap is how long a writer may hold a rev before it commits (the
	// ledger's write timeout). Deltas are re-read from the highest rev seen
	// at least this long ago, so a commit that lands after a higher rev is
	// still picked up. Default DefaultOverlap.
	Overlap time.Duration
	// ResyncEvery is the period of full re-reads (anti-entropy: records
	// written without a rev by 1.x clients, deleted documents, writers slower
	// than Overlap). Default DefaultResyncEvery.
	ResyncEvery time.Duration
	Clock       clock.PassiveClock
}

// Follower keeps a copy of every ledger record, bound and free, reading
// only deltas where it safely can. It is not safe for concurrent use.
//
// The trap it avoids: revs are taken before commit, so rev 6 can be visible
// while rev 5 is still in flight. A reader that jumped to 6 would miss 5
// forever. The Follower remembers (time, store rev) observations and asks
// for Changes above the highest rev observed at least Overlap ago, which
// every writer has committed (or abandoned) by now. For Overlap after its
// first full read it re-reads deltas from followUpRevs below that read's
// counter, which covers writes that were in flight during it.
//
// Each delta read asks for the revs above the mark of the previous delta
// read, not the current one: a rev that became safe since then may have
// committed after that read. While nothing new is written the window is
// re-read with a backoff (1s, 2s, 4s … up to Overlap) instead of on every
// poll, since each read scans the collection on the embedded store; the
// read that makes the window safe is never skipped.
type Follower struct {
	store Store
	opts  FollowerOptions

	// records point into the slices the store returned (a full read is
	// one allocation, not one a record); a record is replaced, never
	// changed in place, so a Cache may keep the pointers.
	records map[string]*naming.Record
	synced  bool
	lastRev int64 // highest store rev returned by the last read
	obs     []observation
	// readFrom is the safe mark at the last read, or what the store said
	// was settled if higher: every rev at or below it has been read.
	readFrom int64
	// recheckAt is when the window above readFrom is next re-read while the
	// store rev stands still; recheck paces those re-reads.
	recheckAt time.Time
	recheck   wait.Backoff
	nextFull  time.Time
	// provisional is the safe mark for Overlap after the first full read,
	// until an observation of that age exists (see followUpRevs).
	provisional      int64
	provisionalUntil time.Time
	fulls, deltas    int
	// touched lists the records a delta read stored since the last
	// drainTouched, whether or not SameRecord saw a change (a hold-back
	// field may have moved): what a sorted copy kept beside this one must
	// re-read. A full read resets it (fulls tells a copy to rebuild).
	// Kept only with trackTouched (a Cache's follower), so that other
	// followers, which never drain it, do not grow it.
	touched      []touch
	trackTouched bool
	// settles: the store tells which revs have committed (SettledStore).
	settles bool
}

type observation struct {
	at  time.Time
	rev int64
}

// NewFollower returns a Follower of store; it reads nothing until Poll.
func NewFollower(store Store, opts FollowerOptions) *Follower {
	if opts.Overlap <= 0 {
		opts.Overlap = DefaultOverlap
	}
	if opts.ResyncEvery <= 0 {
		opts.ResyncEvery = DefaultResyncEvery
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	_, settles := keeps[SettledStore](store)
	return &Follower{store: store, opts: opts, records: map[string]*naming.Record{}, settles: settles}
}

// Poll brings the copy up to date and returns the hostnames whose record
// changed, appeared or disappeared. On error the copy is left as it was
// (never partially updated).
func (f *Follower) Poll(ctx context.Context) (changed []string, err error) {
	now := f.opts.Clock.Now()
	if !f.synced || !now.Before(f.nextFull) {
		return f.fullThenSettle(ctx, now)
	}
	rev, err := f.store.Rev(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading ledger rev: %w", err)
	}
	if rev < f.lastRev {
		// The counter went back: the store was replaced. Start over.
		return f.fullThenSettle(ctx, now)
	}
	f.observe(f.opts.Clock.Now(), rev)
	mark := f.safeMark(now)
	switch {
	case rev != f.lastRev:
		f.recheck = f.recheckBackoff() // something new: re-read soon after
	case f.readFrom >= f.lastRev:
		return nil, nil // nothing new, nothing in flight
	case mark < f.lastRev && now.Before(f.recheckAt):
		return nil, nil // an out-of-order commit waits for the backoff
	}
	return f.delta(ctx, now, mark, rev)
}

// delta reads the changes above readFrom; mark is the safe mark now and
// rev the counter read before.
func (f *Follower) delta(ctx context.Context, now time.Time, mark, rev int64) (changed []string, err error) {
	recs, storeRev, settled, err := changesSettled(ctx, f.store, f.readFrom)
	if err != nil {
		return nil, fmt.Errorf("reading ledger changes since rev %d: %w", f.readFrom, err)
	}
	f.deltas++
	f.readFrom = max(f.readFrom, mark, settled)
	f.recheckAt = now.Add(f.recheck.Step())
	for i := range recs {
		r := &recs[i]
		old := f.records[r.Hostname]
		if old == nil || !naming.SameRecord(*old, *r) {
			changed = append(changed, r.Hostname)
		}
		f.records[r.Hostname] = r
		if f.trackTouched {
			f.touched = append(f.touched, touch{host: r.Hostname, old: old})
		}
	}
	f.lastRev = max(f.lastRev, storeRev, rev)
	return changed, nil
}

// fullThenSettle reads everything and, on a store that tells which revs
// have committed, makes Settled vouch for the full read's revs from the
// first Poll instead of after the next one (or Overlap).
func (f *Follower) fullThenSettle(ctx context.Context, now time.Time) ([]string, error) {
	settled, known := f.settledBefore(ctx)
	changed, err := f.full(ctx, now)
	if err != nil {
		return nil, err
	}
	if known {
		f.readFrom = max(f.readFrom, settled)
	}
	return changed, nil
}

// settledBefore reads, just before a full read, how far the store's
// writes are known committed. Before, not after: every write the change
// log shows committed is then in the full read, or overwritten there.
// Its entries are not applied, because the full read is newer than each
// of them: a 1.x client edits records in place and keeps their rev
// (change-master clears the old master's hostname), so a log entry
// applied after the full read would put back in the copy what 1.x has
// since changed. known is false when the store cannot tell, the read
// fails, or the counter went back (a replaced store, read from scratch);
// the overlap rule then vouches alone. The read is skipped, too, when it
// would reach further back than a first full read's follow-up window:
// below the change log the store would read the whole collection a
// second time for nothing (see Mongo.ChangesSettled).
func (f *Follower) settledBefore(ctx context.Context) (settled int64, known bool) {
	if !f.settles {
		return 0, false
	}
	rev, err := f.store.Rev(ctx)
	if err != nil || rev < f.lastRev {
		return 0, false
	}
	since := f.readFrom
	if !f.synced {
		since = max(0, rev-followUpRevs)
	}
	if rev-since > followUpRevs {
		return 0, false
	}
	_, _, settled, err = changesSettled(ctx, f.store, since)
	if err != nil {
		return 0, false
	}
	f.deltas++
	return settled, true
}

// recheckBackoff re-reads an unchanged window after 1s, 2s, 4s … up to
// Overlap.
func (f *Follower) recheckBackoff() wait.Backoff {
	return retry.Exponential(time.Second, f.opts.Overlap, 0)
}

func (f *Follower) full(ctx context.Context, now time.Time) ([]string, error) {
	rev, err := f.store.Rev(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading ledger rev: %w", err)
	}
	next, err := f.readAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading ledger: %w", err)
	}
	f.fulls++
	var changed []string
	for h, r := range next {
		if old, ok := f.records[h]; !ok || !naming.SameRecord(*old, *r) {
			changed = append(changed, h)
		}
	}
	for h := range f.records {
		if _, ok := next[h]; !ok {
			changed = append(changed, h)
		}
	}
	slices.Sort(changed)
	f.records = next
	f.touched = f.touched[:0]
	replaced := rev < f.lastRev
	if replaced {
		f.obs = nil
	}
	f.lastRev = rev
	f.observe(now, rev)
	if !f.synced {
		f.synced = true
		// Writes in flight during this read (revs taken before it,
		// committed after) are re-read by the deltas of the next Overlap,
		// from followUpRevs below the counter: from the change log, not a
		// second read of the whole ledger. A writer holding a rev further
		// back than that is left to the periodic resync.
		f.provisional, f.provisionalUntil = max(0, rev-followUpRevs), now.Add(f.opts.Overlap)
	}
	f.nextFull = now.Add(f.opts.ResyncEvery)
	// Everything safe by now had committed before this read, and so had
	// what was settled before it (unless the store was replaced).
	if replaced {
		f.readFrom = 0
	}
	f.readFrom = max(f.readFrom, f.safeMark(now))
	f.recheckAt, f.recheck = now, f.recheckBackoff()
	return changed, nil
}

// recordChunk is how many records a full read allocates at a time when
// the store walks them (RecordWalker): the copy then costs what it holds
// plus at most one part-filled chunk (60 KB), instead of a slice grown by
// appends (a quarter of spare capacity kept, and every smaller array
// before it garbage while the read runs).
const recordChunk = 256

// readAll reads every record into a new map, keeping one record a
// hostname (see preferDuplicate). Records come in chunks of recordChunk
// from a RecordWalker, or point into the one slice Records returns.
func (f *Follower) readAll(ctx context.Context) (map[string]*naming.Record, error) {
	next := make(map[string]*naming.Record, len(f.records))
	w, ok := f.store.(RecordWalker)
	if !ok {
		recs, err := f.store.Records(ctx, "")
		if err != nil {
			return nil, err
		}
		for i := range recs {
			if prev, dup := next[recs[i].Hostname]; !dup || preferDuplicate(&recs[i], prev) {
				next[recs[i].Hostname] = &recs[i]
			}
		}
		return next, nil
	}
	var chunk []naming.Record
	err := w.WalkRecords(ctx, "", func(r naming.Record) {
		if prev, dup := next[r.Hostname]; dup && !preferDuplicate(&r, prev) {
			return
		}
		if len(chunk) == cap(chunk) {
			chunk = make([]naming.Record, 0, recordChunk)
		}
		chunk = append(chunk, r)
		next[r.Hostname] = &chunk[len(chunk)-1]
	})
	if err != nil {
		return nil, err
	}
	return next, nil
}

// preferDuplicate reports whether r replaces prev, a record of the same
// hostname read before it (1.x races): the bound copy wins over a gap,
// then the highest rev, then the last in Records order (cmpRecords), so
// the copy kept does not depend on the order the store returned them in.
func preferDuplicate(r, prev *naming.Record) bool {
	if r.Free() != prev.Free() {
		return !r.Free()
	}
	if r.Rev != prev.Rev {
		return r.Rev > prev.Rev
	}
	return cmpRecordPtrs(r, prev) > 0
}

func (f *Follower) observe(at time.Time, rev int64) {
	f.obs = append(f.obs, observation{at, rev})
}

// safeMark returns the highest rev every writer has committed by now, and
// drops observations it no longer needs.
func (f *Follower) safeMark(now time.Time) int64 {
	cut := now.Add(-f.opts.Overlap)
	mark := int64(0)
	keep := 0
	for i, o := range f.obs {
		if !o.at.After(cut) {
			mark = max(mark, o.rev)
			keep = i
		}
	}
	f.obs = f.obs[keep:] // the newest old-enough observation stays as the mark
	if now.Before(f.provisionalUntil) {
		mark = max(mark, f.provisional)
	}
	return mark
}

// Records returns a copy of every record (bound and free), sorted by hostname.
func (f *Follower) Records() []naming.Record {
	out := make([]naming.Record, 0, len(f.records))
	for _, r := range f.records {
		out = append(out, *r)
	}
	naming.SortByHostname(out)
	return out
}

// Record returns the record of one hostname.
func (f *Follower) Record(hostname string) (naming.Record, bool) {
	r, ok := f.records[hostname]
	if !ok {
		return naming.Record{}, false
	}
	return *r, true
}

// touch is one record a delta stored: its hostname, and the record it
// replaced in the copy (nil: a new hostname).
type touch struct {
	host string
	old  *naming.Record
}

// drainTouched returns the records stored by deltas since the last call
// (see touched) and forgets them.
func (f *Follower) drainTouched() []touch {
	t := f.touched
	f.touched = nil
	return t
}

// Synced reports whether a full read has succeeded.
func (f *Follower) Synced() bool { return f.synced }

// Rev returns the highest store rev seen. Writes below it may still be in
// flight (revs are taken before commit); see Settled.
func (f *Follower) Rev() int64 { return f.lastRev }

// Settled returns the rev at or below which every write has committed and
// is in the copy: what a hosts file written from the copy holds for sure.
// It trails Rev while a write below Rev is in flight, and by up to Overlap
// on a store that cannot tell committed revs apart (see SettledStore) or
// past a rev that never commits (a lost compare-and-set). The one
// exception is the overlap rule's own: a write that committed but left no
// change log entry (its writer crashed between the two) is in the copy
// only after the next full read.
func (f *Follower) Settled() int64 { return f.readFrom }

// Reads returns how many full and delta reads were made (for metrics and benchmarks).
func (f *Follower) Reads() (fulls, deltas int) { return f.fulls, f.deltas }

// Refresh makes the next Poll read the store even where its backoff would
// skip the read: a delta from the safe mark, or with full a whole re-read.
// A writer calls it after losing a compare-and-set planned from the copy,
// so the copy catches up with the winner's write before the next plan.
func (f *Follower) Refresh(full bool) {
	if full {
		f.nextFull = time.Time{}
		return
	}
	f.recheckAt = time.Time{}
}
