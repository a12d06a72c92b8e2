package kube

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/aerostat-io/aerostat/api/v1alpha1"
	"github.com/aerostat-io/aerostat/client"
)

// Watch has client.Client.Watch's contract on the cluster: fn is called
// once with an Added event for every name sel picks (possibly none), then
// with the events of each NamingService change that touched a picked
// name, until ctx ends (Watch then returns nil) or fn returns an error
// (returned as is). Events in a batch are in client.SortNames order.
//
// It lists once and then follows the API server's watch from that list's
// resourceVersion: nothing is polled. When the server ends the watch (its
// timeout) Watch resumes from the last resourceVersion seen; when that
// version has expired (410 Gone) it lists again and reports the
// difference, so no change is lost and none is reported twice.
//
// Errors: the first list, or opening a watch, failing.
func (s *Source) Watch(ctx context.Context, sel client.Selector, fn func([]client.Event) error) error {
	w := watcher{sel: sel, fn: fn, seen: map[string]map[string]client.Name{}}
	first := true
	for {
		l, err := s.list(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := w.relisted(l.Items, first); err != nil {
			return err
		}
		first = false
		rv := l.ResourceVersion
		for {
			var expired bool
			rv, expired, err = s.follow(ctx, rv, &w)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				return err
			}
			if expired {
				break // list again
			}
		}
	}
}

// follow runs one watch from rv until the server ends it. It returns the
// last resourceVersion seen and whether rv has expired.
func (s *Source) follow(ctx context.Context, rv string, w *watcher) (string, bool, error) {
	wi, err := s.c.Watch(ctx, &v1alpha1.NamingServiceList{}, &crclient.ListOptions{Raw: &metav1.ListOptions{
		ResourceVersion: rv, AllowWatchBookmarks: true}})
	if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
		return rv, true, nil
	}
	if err != nil {
		return rv, false, fmt.Errorf("watching namingservices: %w", err)
	}
	defer wi.Stop()
	for {
		var ev watch.Event
		var ok bool
		select {
		case <-ctx.Done():
			return rv, false, nil
		case ev, ok = <-wi.ResultChan():
		}
		if !ok {
			return rv, false, nil // the server's timeout: resume from rv
		}
		switch ev.Type {
		case watch.Error:
			st := apierrors.FromObject(ev.Object)
			if apierrors.IsResourceExpired(st) || apierrors.IsGone(st) {
				return rv, true, nil
			}
			return rv, false, fmt.Errorf("watching namingservices: %w", st)
		case watch.Bookmark:
			if o, ok := ev.Object.(*v1alpha1.NamingService); ok {
				rv = o.ResourceVersion
			}
		case watch.Added, watch.Modified, watch.Deleted:
			ns, ok := ev.Object.(*v1alpha1.NamingService)
			if !ok {
				continue
			}
			rv = ns.ResourceVersion
			var names []client.Name
			if ev.Type != watch.Deleted {
				names = NamesOf(*ns)
			}
			if err := w.changed(ns.Name, names); err != nil {
				return rv, false, err
			}
		}
	}
}

// watcher turns NamingService states into name events.
type watcher struct {
	sel client.Selector
	fn  func([]client.Event) error
	// seen is the last state reported: NamingService name -> hostname -> name.
	seen map[string]map[string]client.Name
}

// relisted reports the difference between what was seen and a fresh list
// (all of it as Added on the first list, even when empty).
func (w *watcher) relisted(items []v1alpha1.NamingService, first bool) error {
	var events []client.Event
	listed := map[string]bool{}
	for _, ns := range items {
		listed[ns.Name] = true
		events = append(events, w.diff(ns.Name, NamesOf(ns))...)
	}
	for name := range w.seen {
		if !listed[name] {
			events = append(events, w.diff(name, nil)...)
		}
	}
	return w.emit(events, first)
}

func (w *watcher) changed(nsName string, names []client.Name) error {
	return w.emit(w.diff(nsName, names), false)
}

func (w *watcher) emit(events []client.Event, always bool) error {
	if len(events) == 0 && !always {
		return nil
	}
	if events == nil {
		events = []client.Event{}
	}
	client.SortEvents(events)
	return w.fn(events)
}

// diff records the names a NamingService holds now and returns the
// events, among the picked names, that lead there from what was seen.
func (w *watcher) diff(nsName string, names []client.Name) []client.Event {
	old := w.seen[nsName]
	now := make(map[string]client.Name, len(names))
	var events []client.Event
	for _, n := range names {
		if !w.sel.Matches(n) {
			continue
		}
		now[n.Hostname] = n
		prev, had := old[n.Hostname]
		switch {
		case !had:
			events = append(events, client.Event{Type: client.Added, Name: n})
		// A NamingService's status has no aliases and one rev for the
		// whole service: a name changes when its holder, address or
		// state does.
		case prev.InstanceID != n.InstanceID || prev.IP != n.IP || prev.State != n.State:
			events = append(events, client.Event{Type: client.Modified, Name: n})
		}
	}
	for h, n := range old {
		if _, ok := now[h]; !ok {
			events = append(events, client.Event{Type: client.Deleted, Name: n})
		}
	}
	if len(now) == 0 {
		delete(w.seen, nsName)
	} else {
		w.seen[nsName] = now
	}
	return events
}
