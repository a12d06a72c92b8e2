package ledger

import (
	"context"
	"slices"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// CacheFeed lets a second reader (the controller's feed) follow the
// ledger through a Cache's Follower instead of keeping a second copy of
// every record beside it (about 20 MB at 10,000 names). Get one with
// Cache.Feed. Its Poll, Record, Rev and Settled mean what the Follower's do for
// this reader alone: Poll returns every hostname changed since this
// reader's last Poll, whichever of the two readers' polls read the change,
// and Rev is the rev as of that Poll. Safe for use by one goroutine at a
// time besides the Cache's own callers.
type CacheFeed struct {
	c *Cache
	// Held under c.mu.
	rev, settled int64
	seen         map[string]*naming.Record // the changed records as of the last Poll
}

// Feed attaches the one CacheFeed of c (later calls return the same).
// Its first Poll returns every hostname the copy holds; from then on every
// poll of the Cache's follower keeps the hostnames it found changed for
// the feed, until the feed's next Poll.
func (c *Cache) Feed() *CacheFeed {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.feed == nil {
		c.feed = &CacheFeed{c: c}
		c.feedPending = map[string]struct{}{}
		// What the copy holds already is new to the feed.
		for h := range c.f.records {
			c.feedPending[h] = struct{}{}
		}
	}
	return c.feed
}

// poll is every poll of the Cache's follower (c.mu held).
func (c *Cache) poll(ctx context.Context) error {
	changed, err := c.f.Poll(ctx)
	if err != nil {
		return err
	}
	if c.feed != nil {
		for _, h := range changed {
			c.feedPending[h] = struct{}{}
		}
	}
	return nil
}

// Poll brings the shared copy up to date and returns, sorted, the
// hostnames changed since the feed's last Poll. On error nothing pending
// is lost.
func (v *CacheFeed) Poll(ctx context.Context) ([]string, error) {
	c := v.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.poll(ctx); err != nil {
		return nil, err
	}
	// Every hostname the follower changed, whichever reader polled it, is
	// returned below, so what the follower vouches for is the feed's too.
	v.rev, v.settled = c.f.Rev(), c.f.Settled()
	v.seen = nil
	if len(c.feedPending) == 0 {
		return nil, nil
	}
	changed := make([]string, 0, len(c.feedPending))
	v.seen = make(map[string]*naming.Record, len(c.feedPending))
	for h := range c.feedPending {
		changed = append(changed, h)
		v.seen[h] = c.f.records[h] // nil: gone
	}
	clear(c.feedPending)
	slices.Sort(changed)
	return changed, nil
}

// Record returns a hostname's record as of the feed's last Poll (for the
// hostnames it returned; others as of now).
func (v *CacheFeed) Record(hostname string) (naming.Record, bool) {
	c := v.c
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := v.seen[hostname]
	if !ok {
		r = c.f.records[hostname]
	}
	if r == nil {
		return naming.Record{}, false
	}
	return *r, true
}

// Rev returns the highest store rev seen as of the feed's last Poll.
func (v *CacheFeed) Rev() int64 {
	v.c.mu.Lock()
	defer v.c.mu.Unlock()
	return v.rev
}

// Settled returns the follower's settled rev as of the feed's last Poll
// (see Follower.Settled): every write at or below it was in what that Poll
// and the ones before it returned.
func (v *CacheFeed) Settled() int64 {
	v.c.mu.Lock()
	defer v.c.mu.Unlock()
	return v.settled
}
