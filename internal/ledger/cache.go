package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// Cache is a Store whose Records come from a copy of the ledger kept by a
// Follower: each Records call reads only what changed (the change log)
// instead of the whole collection. The controller's passes and claims
// plan from it.
//
// A copy may lag a write that took its rev before the copy's last read
// and committed after it (the overlap rule): planning from it is still
// safe, because every write is a compare-and-set or an insert guarded by
// the unique index, so a plan made on a stale copy loses its write with
// ErrConflict, and the caller's next Records reads the delta and plans
// again. Where 1.x races left two documents with one hostname, the copy
// holds the one with the highest rev; Problems of the underlying store
// still lists them.
//
// Apply, Changes and Rev go to the underlying store. Safe for concurrent
// use.
type Cache struct {
	store Store

	mu sync.Mutex
	f  *Follower
	// sorted points at the follower's records in Records order
	// (cmpRecords), kept so that a Records call copies a range instead of
	// collecting and sorting the whole map each time (an idle controller
	// pass and every claim call it); 8 bytes a name, the records are the
	// follower's. Rebuilt after a full read (sortedFulls behind the
	// follower's count), patched for the hostnames a delta stored.
	sorted      []*naming.Record
	sortedFulls int
	// lost counts compare-and-sets lost in a row by plans from the copy.
	lost int
	// feed shares the follower with the controller's feed (cachefeed.go);
	// feedPending are the hostnames changed since the feed's last poll.
	feed        *CacheFeed
	feedPending map[string]struct{}
}

// cacheLostFull is how many lost compare-and-sets in a row make the next
// Records a whole re-read: the winner's change log entry may be missing
// (it crashed between its two writes, or is a 1.x client), which no delta
// would ever bring.
const cacheLostFull = 3

var _ Store = (*Cache)(nil)

// NewCache returns a Cache over store; it reads nothing until Records.
func NewCache(store Store, opts FollowerOptions) *Cache {
	f := NewFollower(store, opts)
	f.trackTouched = true
	return &Cache{store: store, f: f}
}

// Records implements Store: the copy, brought up to date first (a full
// read the first time and every FollowerOptions.Resync, a delta
// otherwise). Errors are the underlying store's; the copy is then unchanged.
func (c *Cache) Records(ctx context.Context, service string) ([]naming.Record, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.poll(ctx); err != nil {
		return nil, err
	}
	c.resort()
	lo, hi := 0, len(c.sorted)
	if service != "" {
		// Sorted by service first: the service's records are one run.
		lo = sort.Search(len(c.sorted), func(i int) bool { return c.sorted[i].Service >= service })
		hi = lo + sort.Search(len(c.sorted)-lo, func(i int) bool { return c.sorted[lo+i].Service > service })
	}
	if lo == hi {
		return nil, nil
	}
	out := make([]naming.Record, hi-lo)
	for i, r := range c.sorted[lo:hi] {
		out[i] = *r
	}
	return out, nil
}

// cacheRebuildTouched is how many hostnames stored by deltas since the
// last Records make resort rebuild the sorted copy (a sort of every
// record) instead of moving each one, at least; a sixteenth of the copy
// if more. A move costs a binary search, and a shift of the copy only when
// the record's place changed, so a pass that binds or releases k names
// costs k searches rather than a sort of the fleet: the controller's cost
// per change then barely grows with the fleet.
const cacheRebuildTouched = 64

// resort brings c.sorted up to date with the follower's records.
func (c *Cache) resort() {
	fulls, _ := c.f.Reads()
	touched := c.f.drainTouched()
	if fulls != c.sortedFulls || len(touched) > max(cacheRebuildTouched, len(c.sorted)/16) {
		c.rebuild(fulls)
		return
	}
	var seen map[string]bool
	if len(touched) > 1 {
		seen = make(map[string]bool, len(touched))
	}
	for _, t := range touched {
		// The first touch of a hostname names the record c.sorted holds.
		if seen != nil {
			if seen[t.host] {
				continue
			}
			seen[t.host] = true
		}
		if !c.move(t) {
			c.rebuild(fulls)
			return
		}
	}
}

// rebuild sorts every record of the follower into c.sorted.
func (c *Cache) rebuild(fulls int) {
	c.sortedFulls = fulls
	c.sorted = make([]*naming.Record, 0, len(c.f.records))
	for _, r := range c.f.records {
		c.sorted = append(c.sorted, r)
	}
	slices.SortFunc(c.sorted, cmpRecordPtrs)
}

// move puts the follower's record of t.host where it belongs in c.sorted,
// in t.old's place when the order allows (a bind or a release changes the
// instance, not the service, role, ordinal or hostname the order is by).
// It reports false when t.old is not in c.sorted, which only a bug makes
// happen: resort then rebuilds.
func (c *Cache) move(t touch) bool {
	r := c.f.records[t.host]
	if r == nil {
		return false
	}
	if t.old != nil {
		i, found := slices.BinarySearchFunc(c.sorted, t.old, cmpRecordPtrs)
		if !found || c.sorted[i] != t.old {
			return false
		}
		if (i == 0 || cmpRecordPtrs(c.sorted[i-1], r) < 0) && (i == len(c.sorted)-1 || cmpRecordPtrs(r, c.sorted[i+1]) < 0) {
			c.sorted[i] = r
			return true
		}
		c.sorted = slices.Delete(c.sorted, i, i+1)
	}
	i, _ := slices.BinarySearchFunc(c.sorted, r, cmpRecordPtrs)
	c.sorted = slices.Insert(c.sorted, i, r)
	return true
}

// Apply implements Store. A lost compare-and-set makes the next Records
// read the store (a delta, or after cacheLostFull losses in a row a whole
// re-read), so a retried plan sees the write it lost to. So does a write
// that committed: a poll that ran while it was in flight (the feed's,
// which shares the follower) saw the counter move but not the change log
// entries yet, and the follower's backoff would skip the window for up to
// a second, so the next plan bound the same names again and lost them.
func (c *Cache) Apply(ctx context.Context, changes []naming.Change) (int, error) {
	n, err := c.store.Apply(ctx, changes)
	c.mu.Lock()
	defer c.mu.Unlock()
	if n > 0 {
		c.f.Refresh(false)
	}
	switch {
	case errors.Is(err, ErrConflict):
		c.lost++
		c.f.Refresh(c.lost >= cacheLostFull)
		if c.lost >= cacheLostFull {
			c.lost = 0
		}
	case err == nil:
		c.lost = 0
	}
	return n, err
}

// Changes implements Store.
func (c *Cache) Changes(ctx context.Context, since int64) ([]naming.Record, int64, error) {
	return c.store.Changes(ctx, since)
}

// ChangesSettled implements SettledStore through the underlying store
// (settled is since when that store cannot tell; see keeps).
func (c *Cache) ChangesSettled(ctx context.Context, since int64) ([]naming.Record, int64, int64, error) {
	return changesSettled(ctx, c.store, since)
}

// Rev implements Store.
func (c *Cache) Rev(ctx context.Context) (int64, error) { return c.store.Rev(ctx) }

var _ PolicyStore = (*Cache)(nil)

// PolicyStoreOf returns s's policy store, if the store under s keeps
// policies; see ReleaseLogOf for why a type assertion is not enough.
func PolicyStoreOf(s Store) (PolicyStore, bool) { return keeps[PolicyStore](s) }

// Policy implements PolicyStore through the underlying store (policies
// are not cached: writers read them once a claim). Errors: the store's,
// or one saying it keeps no policies.
func (c *Cache) Policy(ctx context.Context, service string) (Policy, bool, error) {
	ps, ok := c.store.(PolicyStore)
	if !ok {
		return Policy{}, false, fmt.Errorf("reading policy of service %s: %T keeps no policies", service, c.store)
	}
	return ps.Policy(ctx, service)
}

// PutPolicy implements PolicyStore through the underlying store; see Policy.
func (c *Cache) PutPolicy(ctx context.Context, p Policy) error {
	ps, ok := c.store.(PolicyStore)
	if !ok {
		return fmt.Errorf("storing policy of service %s: %T keeps no policies", p.Service, c.store)
	}
	return ps.PutPolicy(ctx, p)
}
