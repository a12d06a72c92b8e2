package controllers

import (
	"testing"
	"time"
)

// TestCallBudget: event passes may spend what polling every interval
// would (the calls of the last listing, per interval), no more.
func TestCallBudget(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	const interval = 10 * time.Second
	tests := map[string]struct {
		listing int             // calls of the first full listing, at t0
		events  []time.Duration // event passes (one call each) at t0+d
		at      time.Duration   // when to ask
		want    time.Duration
	}{
		"before any listing":                {listing: 0, at: 0, want: 0},
		"one poll's worth banked":           {listing: 2, events: []time.Duration{0}, at: 0, want: 0},
		"bank spent":                        {listing: 2, events: []time.Duration{0, 0}, at: 0, want: interval / 2},
		"half an interval earns one of two": {listing: 2, events: []time.Duration{0, 0}, at: interval / 2, want: 0},
		"overdrawn by a storm":              {listing: 1, events: []time.Duration{0, 0, 0}, at: 0, want: 3 * interval},
		"large fleet: ten calls a poll":     {listing: 10, events: []time.Duration{0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, at: 0, want: interval / 10},
		"the bank holds a minute at most":   {listing: 2, events: []time.Duration{10 * interval, 10 * interval, 10 * interval, 10 * interval, 10 * interval, 10 * interval, 10 * interval, 10 * interval, 10 * interval, 10 * interval, 10 * interval, 10 * interval, 10 * interval}, at: 10 * interval, want: interval},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := callBudget{interval: interval, bank: time.Minute}
			if tc.listing > 0 {
				b.listed(t0, tc.listing)
			}
			for _, d := range tc.events {
				b.spend(t0.Add(d), 1)
			}
			if got := b.wait(t0.Add(tc.at)); got != tc.want {
				t.Errorf("wait = %v, want %v", got, tc.want)
			}
		})
	}
	// A later listing spends like any call: a safety-net poll every
	// minute costs its pages out of six polls' earnings.
	b := callBudget{interval: interval, bank: time.Minute}
	b.listed(t0, 3)
	b.listed(t0.Add(2*time.Minute), 3)
	if b.tokens != 15 {
		t.Errorf("after a safety-net listing two minutes later: %v calls banked, want 15 (capped at six polls of 3, minus 3)", b.tokens)
	}
}
