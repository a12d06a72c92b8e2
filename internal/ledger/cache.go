package ledger

import (
	"context"
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
}

var _ Store = (*Cache)(nil)

// NewCache returns a Cache over store; it reads nothing until Records.
func NewCache(store Store, opts FollowerOptions) *Cache {
	return &Cache{store: store, f: NewFollower(store, opts)}
}

// Records implements Store: the copy, brought up to date first (a full
// read the first time and every FollowerOptions.Resync, a delta
// otherwise). Errors are the underlying store's; the copy is then unchanged.
func (c *Cache) Records(ctx context.Context, service string) ([]naming.Record, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.f.Poll(ctx); err != nil {
		return nil, err
	}
	var out []naming.Record
	for _, r := range c.f.records {
		if service == "" || r.Service == service {
			out = append(out, r)
		}
	}
	sortRecords(out)
	return out, nil
}

// Apply implements Store.
func (c *Cache) Apply(ctx context.Context, changes []naming.Change) (int, error) {
	return c.store.Apply(ctx, changes)
}

// Changes implements Store.
func (c *Cache) Changes(ctx context.Context, since int64) ([]naming.Record, int64, error) {
	return c.store.Changes(ctx, since)
}

// Rev implements Store.
func (c *Cache) Rev(ctx context.Context) (int64, error) { return c.store.Rev(ctx) }
