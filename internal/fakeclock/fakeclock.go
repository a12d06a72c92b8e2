// Package fakeclock holds a fake clock for tests that reports every timer
// armed on it. A test that steps a fake clock must step only once the
// timer it means is armed: "some goroutine waits on the clock"
// (FakeClock.HasWaiters) is also true when another timer or ticker is
// armed, and then the step lands before the timer the test means exists
// and is lost.
package fakeclock

import (
	"sync"
	"testing"
	"time"

	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
)

// hangGuard bounds a wait for an arming that never comes, so a broken
// test fails with a message instead of hanging the package's run.
const hangGuard = time.Minute

// Clock is a clocktesting.FakeClock that records the duration of every
// timer, ticker and After it arms (and every Timer.Reset), in order.
type Clock struct {
	*clocktesting.FakeClock

	mu sync.Mutex
	// arms are the armings not yet taken by a WaitArmed.
	arms []time.Duration
	// armed is closed (and replaced) on every arming.
	armed chan struct{}
}

var _ clock.WithDelayedExecution = (*Clock)(nil)
var _ clock.WithTicker = (*Clock)(nil)

// New returns a fake clock set to t.
func New(t time.Time) *Clock {
	return &Clock{FakeClock: clocktesting.NewFakeClock(t), armed: make(chan struct{})}
}

// note records an arming; it is called after the fake clock holds the
// waiter, so a Step after WaitArmed returns reaches it.
func (c *Clock) note(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.arms = append(c.arms, d)
	close(c.armed)
	c.armed = make(chan struct{})
}

// After implements clock.Clock.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	ch := c.FakeClock.After(d)
	c.note(d)
	return ch
}

// NewTimer implements clock.Clock.
func (c *Clock) NewTimer(d time.Duration) clock.Timer {
	t := &timer{Timer: c.FakeClock.NewTimer(d), c: c}
	c.note(d)
	return t
}

// AfterFunc implements clock.WithDelayedExecution.
func (c *Clock) AfterFunc(d time.Duration, f func()) clock.Timer {
	t := &timer{Timer: c.FakeClock.AfterFunc(d, f), c: c}
	c.note(d)
	return t
}

// Tick implements clock.Clock.
func (c *Clock) Tick(d time.Duration) <-chan time.Time {
	ch := c.FakeClock.Tick(d)
	c.note(d)
	return ch
}

// NewTicker implements clock.WithTicker.
func (c *Clock) NewTicker(d time.Duration) clock.Ticker {
	t := c.FakeClock.NewTicker(d)
	c.note(d)
	return t
}

type timer struct {
	clock.Timer
	c *Clock
}

// Reset re-arms the timer, which counts as an arming.
func (t *timer) Reset(d time.Duration) bool {
	was := t.Timer.Reset(d)
	t.c.note(d)
	return was
}

// WaitArmed waits until a timer or ticker of exactly d has been armed and
// takes that arming, so the next WaitArmed waits for another one.
func (c *Clock) WaitArmed(t testing.TB, d time.Duration) {
	t.Helper()
	c.WaitArmedFunc(t, d.String(), func(got time.Duration) bool { return got == d })
}

// WaitArmedFunc waits until a timer whose duration match accepts has been
// armed, takes the oldest such arming and returns its duration. what
// names the timer in the failure message.
func (c *Clock) WaitArmedFunc(t testing.TB, what string, match func(time.Duration) bool) time.Duration {
	t.Helper()
	guard := time.NewTimer(hangGuard)
	defer guard.Stop()
	d, ok := take(c, guard.C, match)
	if !ok {
		t.Fatalf("no timer of %s was armed on the fake clock within %v (armed and not taken: %v)", what, hangGuard, c.pending())
	}
	return d
}

// NextArmed takes the oldest arming of any timer, waiting for one until
// stop is closed (then ok is false). It is for a goroutine that drives the
// clock for callers the test cannot name one by one: step by what was
// armed, so time moves only when a timer asks for it.
func (c *Clock) NextArmed(stop <-chan struct{}) (d time.Duration, ok bool) {
	return take(c, stop, func(time.Duration) bool { return true })
}

// take removes and returns the oldest arming match accepts, waiting for
// one until stop delivers.
func take[T any](c *Clock, stop <-chan T, match func(time.Duration) bool) (time.Duration, bool) {
	for {
		c.mu.Lock()
		for i, d := range c.arms {
			if match(d) {
				c.arms = append(c.arms[:i], c.arms[i+1:]...)
				c.mu.Unlock()
				return d, true
			}
		}
		armed := c.armed
		c.mu.Unlock()
		select {
		case <-armed:
		case <-stop:
			return 0, false
		}
	}
}

// Drain forgets the armings not taken yet, so the next WaitArmed waits
// for one made after this call.
func (c *Clock) Drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.arms = nil
}

func (c *Clock) pending() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.arms...)
}
