package client

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aerostat-io/aerostat/internal/ledger"
)

// EventType says what happened to a name.
type EventType string

const (
	Added    EventType = "ADDED"
	Modified EventType = "MODIFIED"
	Deleted  EventType = "DELETED"
)

// Event is one change seen by Watch. For Deleted, Name is the last state
// seen.
type Event struct {
	Type EventType `json:"type"`
	Name Name      `json:"name"`
}

// Watch calls fn once with an Added event for every name matching sel
// (possibly none), then with the events of each poll that saw changes,
// until ctx ends (it then returns nil) or fn returns an error (returned as
// is). Events in a batch are in SortNames order. Where the server has
// change streams (a MongoDB replica set) each write wakes it; elsewhere
// (FerretDB, a standalone mongod), or once the stream has ended, it polls
// every PollInterval. Either way it reads only what changed, re-reading a
// short overlap so that writes committed out of revision order are not
// missed.
//
// An error on the first read is returned; later read errors are logged and
// retried on the next poll, without events.
func (c *Client) Watch(ctx context.Context, sel Selector, fn func([]Event) error) error {
	f := ledger.NewFollower(c.store, ledger.FollowerOptions{Clock: c.opts.Clock})
	seen := map[string]Name{}
	if _, err := f.Poll(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("watching ledger%s: %w", c.where, err)
	}
	for _, r := range f.Records() {
		seen[r.Hostname] = fromRecord(r)
	}
	initial := []Event{}
	for _, n := range sortedValues(seen) {
		if sel.Matches(n) {
			initial = append(initial, Event{Added, n})
		}
	}
	if err := fn(initial); err != nil {
		return err
	}
	wake := c.changes(ctx)
	t := c.opts.Clock.NewTicker(c.opts.PollInterval)
	defer t.Stop()
	for {
		var tick <-chan time.Time
		if wake == nil {
			tick = t.C()
		}
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-wake:
			if !ok {
				wake = nil // the stream ended: poll from now on
				continue
			}
		case <-tick:
		}
		changed, err := f.Poll(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.opts.Logger.Error(err, "watching ledger; retrying")
			continue
		}
		events := make([]Event, 0, len(changed))
		for _, h := range changed {
			old, had := seen[h]
			r, ok := f.Record(h)
			switch {
			case !ok && had:
				delete(seen, h)
				events = append(events, Event{Deleted, old})
			case ok:
				n := fromRecord(r)
				seen[h] = n
				typ := Modified
				if !had {
					typ = Added
				}
				events = append(events, Event{typ, n})
			}
		}
		events = slices.DeleteFunc(events, func(e Event) bool { return !sel.Matches(e.Name) })
		if len(events) == 0 {
			continue
		}
		SortEvents(events)
		if err := fn(events); err != nil {
			return err
		}
	}
}

// notifier is a store with change streams (ledger.Mongo).
type notifier interface {
	Watch(ctx context.Context) (<-chan struct{}, error)
}

// changes opens the ledger's change stream, or returns nil when the store
// has none (the caller polls).
func (c *Client) changes(ctx context.Context) <-chan struct{} {
	n, ok := c.store.(notifier)
	if !ok {
		return nil
	}
	ch, err := n.Watch(ctx)
	if err != nil {
		c.opts.Logger.V(1).Info("no change stream; polling", "every", c.opts.PollInterval, "reason", err.Error())
		return nil
	}
	return ch
}

func sortedValues(m map[string]Name) []Name {
	out := make([]Name, 0, len(m))
	for _, n := range m {
		out = append(out, n)
	}
	SortNames(out)
	return out
}

// SortEvents puts a batch of events in SortNames order (one event a name).
func SortEvents(events []Event) {
	names := make([]Name, len(events))
	byHost := make(map[string]Event, len(events))
	for i, e := range events {
		names[i] = e.Name
		byHost[e.Name.Hostname] = e
	}
	SortNames(names)
	for i, n := range names {
		events[i] = byHost[n.Hostname]
	}
}
