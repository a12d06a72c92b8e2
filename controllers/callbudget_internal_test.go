package controllers

import (
	"context"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/cloud/fake"
)

// TestCallBudget: event passes may spend what polling every interval
// would (the calls of the last full listing, per interval), no more. Time
// moves on a fake clock; listings go through Meter over the fake fleet.
func TestCallBudget(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	const interval = 10 * time.Second
	type op struct {
		at    time.Duration // since t0, in order
		sweep bool          // a full listing; else one instance described by id
	}
	tests := map[string]struct {
		fleet int // instances tagged aerostat:service
		ops   []op
		at    time.Duration // when to ask
		want  time.Duration
	}{
		"before any listing":                {fleet: 10, ops: []op{{0, false}, {0, false}}, want: 0},
		"one poll's worth banked":           {fleet: 1500, ops: []op{{0, true}, {0, false}}, want: 0},
		"bank spent":                        {fleet: 1500, ops: []op{{0, true}, {0, false}, {0, false}}, want: interval / 2},
		"half an interval earns one of two": {fleet: 1500, ops: []op{{0, true}, {0, false}, {0, false}}, at: interval / 2, want: 0},
		"overdrawn by a storm":              {fleet: 10, ops: []op{{0, true}, {0, false}, {0, false}, {0, false}}, want: 3 * interval},
		"large fleet: ten calls a poll":     {fleet: 10000, ops: append([]op{{0, true}}, repeat(op{0, false}, 10)...), want: interval / 10},
		"the bank holds a minute at most":   {fleet: 1500, ops: append([]op{{0, true}}, repeat(op{10 * interval, false}, 13)...), at: 10 * interval, want: interval},
		"a later sweep spends its calls":    {fleet: 1500, ops: []op{{0, true}, {0, true}, {0, false}}, want: interval},
		"a later sweep resets the price":    {fleet: 1500, ops: []op{{0, true}, {interval, true}, {interval, false}, {interval, false}}, at: interval, want: interval / 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(t0)
			fleet := fake.NewFleet(clk)
			ids := fleet.Launch(tc.fleet, map[string]string{TagService: "web"})
			b := NewCallBudget(clk, interval, time.Minute)
			c := b.Meter(fleet)
			for _, o := range tc.ops {
				clk.SetTime(t0.Add(o.at))
				f := cloud.Filter{Name: "instance-id", Values: ids[:1]}
				if o.sweep {
					f = cloud.Filter{Name: "tag-key", Values: []string{TagService}}
				}
				if _, err := c.List(context.Background(), f); err != nil {
					t.Fatal(err)
				}
			}
			clk.SetTime(t0.Add(tc.at))
			if got := b.Wait(); got != tc.want {
				t.Errorf("Wait() = %v, want %v", got, tc.want)
			}
		})
	}
}

func repeat[T any](v T, n int) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// TestEventDelay: the debounce, the gap since the last batch and the
// budget's wait, whichever is longest; a negative gap ignores the budget.
func TestEventDelay(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(t0.Add(300 * time.Millisecond))
	spent := NewCallBudget(clk, 10*time.Second, time.Minute)
	spent.listed(1) // one poll's worth banked...
	spent.spend(2)  // ...and overdrawn by one: one more call in 10 s
	tests := map[string]struct {
		debounce, gap time.Duration
		budget        *CallBudget
		want          time.Duration
	}{
		"debounce only":           {debounce: 50 * time.Millisecond, gap: -1, want: 50 * time.Millisecond},
		"rest of the gap":         {debounce: 50 * time.Millisecond, gap: time.Second, want: 700 * time.Millisecond},
		"gap over, debounce":      {debounce: 50 * time.Millisecond, gap: 100 * time.Millisecond, want: 50 * time.Millisecond},
		"budget spent":            {debounce: 50 * time.Millisecond, gap: time.Second, budget: spent, want: 20 * time.Second},
		"no gap ignores a budget": {debounce: 50 * time.Millisecond, gap: -1, budget: spent, want: 50 * time.Millisecond},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := eventDelay(clk, tc.debounce, tc.gap, t0, tc.budget); got != tc.want {
				t.Errorf("eventDelay = %v, want %v", got, tc.want)
			}
		})
	}
}
