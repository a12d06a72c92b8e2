package controllers

import (
	"testing"
	"time"
)

type health bool

func (h health) Health() (bool, string) { return bool(h), "" }

// TestPollerSkip: with events the poll is the safety net: ticks (every
// 10 s) go out every 60 s while events are healthy, every tick when not.
func TestPollerSkip(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		events  EventsHealth
		last    time.Time
		elapsed time.Duration
		skip    bool
	}{
		"no events":                      {events: nil, last: t0, elapsed: 10 * time.Second, skip: false},
		"first tick":                     {events: health(true), elapsed: 10 * time.Second, skip: false},
		"healthy, 10 s after the last":   {events: health(true), last: t0, elapsed: 10 * time.Second, skip: true},
		"healthy, 50 s after the last":   {events: health(true), last: t0, elapsed: 50 * time.Second, skip: true},
		"healthy, tick 1 s early":        {events: health(true), last: t0, elapsed: 59 * time.Second, skip: false},
		"healthy, 60 s after the last":   {events: health(true), last: t0, elapsed: 60 * time.Second, skip: false},
		"unhealthy, 10 s after the last": {events: health(false), last: t0, elapsed: 10 * time.Second, skip: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := NewPoller(10*time.Second, nil)
			if tc.events != nil {
				p.WithEvents(tc.events, 60*time.Second)
			}
			if got := p.skip(tc.last, t0.Add(tc.elapsed)); got != tc.skip {
				t.Errorf("skip = %v, want %v", got, tc.skip)
			}
		})
	}
}
