package fake

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// LaunchClock is the real clock made strictly increasing (by at least a
// millisecond, EC2's launch-time resolution), so instances launched one
// after another in a simulated fleet have distinct launch times and are
// named in launch order, oldest first, deterministically.
type LaunchClock struct {
	mu   sync.Mutex
	last time.Time
}

var _ clock.PassiveClock = (*LaunchClock)(nil)

// Now returns the current time, or a millisecond after the last time it
// returned if the clock has not moved on since.
func (c *LaunchClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now().UTC().Truncate(time.Millisecond)
	if !now.After(c.last) {
		now = c.last.Add(time.Millisecond)
	}
	c.last = now
	return now
}

// Since is Now().Sub(t).
func (c *LaunchClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }
