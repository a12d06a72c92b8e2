package fakeclock_test

import (
	"testing"
	"time"

	"github.com/aerostat-io/aerostat/internal/fakeclock"
)

// The failure this package exists for: a ticker is already armed when the
// code under test arms the timer the test means. WaitArmed must not
// return for the ticker, and the step after it must fire the timer.
func TestWaitArmedWaitsForTheTimerItNames(t *testing.T) {
	clk := fakeclock.New(time.Unix(0, 0))
	tick := clk.NewTicker(time.Hour)
	defer tick.Stop()
	fired := make(chan struct{})
	go func() {
		tm := clk.NewTimer(time.Second)
		<-tm.C()
		close(fired)
	}()
	clk.WaitArmed(t, time.Second)
	clk.Step(time.Second)
	<-fired
	select {
	case <-tick.C():
		t.Fatal("the hour ticker fired after one second")
	default:
	}
}

func TestWaitArmedTakesEachArmingOnce(t *testing.T) {
	clk := fakeclock.New(time.Unix(0, 0))
	tm := clk.NewTimer(time.Second)
	clk.WaitArmed(t, time.Second)
	clk.Step(time.Second)
	<-tm.C()
	tm.Reset(2 * time.Second)
	// The first arming was taken: only the reset's is left to match.
	if got := clk.WaitArmedFunc(t, "any timer", func(time.Duration) bool { return true }); got != 2*time.Second {
		t.Errorf("WaitArmedFunc = %v, want the reset's 2s", got)
	}
}

func TestDrainForgetsEarlierArmings(t *testing.T) {
	clk := fakeclock.New(time.Unix(0, 0))
	clk.After(time.Minute)
	clk.Drain()
	clk.After(time.Second)
	if got := clk.WaitArmedFunc(t, "any timer", func(time.Duration) bool { return true }); got != time.Second {
		t.Errorf("WaitArmedFunc after Drain = %v, want the later 1s", got)
	}
}
