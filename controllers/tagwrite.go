package controllers

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// Tags that tag write-back sets to an instance's name.
const (
	TagName     = "Name"
	TagHostname = "aerostat:hostname"
)

// TagWriter writes each bound name back to its instance's EC2 tags (Name
// and aerostat:hostname), so the console and other tools show it.
//
// EC2's CreateTags sets the same tags on every resource of a call, and
// every instance has its own name, so it is one call an instance; what
// keeps that cheap is that only instances whose observed tags differ are
// written (a fleet that is already tagged costs nothing), at most Max a
// pass, and every call spends the same budget as the listings.
type TagWriter struct {
	tagger cloud.Tagger
	max    int
	writes *prometheus.CounterVec
}

// NewTagWriter returns a TagWriter over tagger (the instrumented EC2
// adapter) that writes at most maxPerPass instances a pass, with its
// metric registered on reg.
func NewTagWriter(tagger cloud.Tagger, maxPerPass int, reg prometheus.Registerer) (*TagWriter, error) {
	if maxPerPass <= 0 {
		maxPerPass = 1
	}
	w := &TagWriter{tagger: tagger, max: maxPerPass, writes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aerostat_tag_writes_total",
		Help: "Instances whose Name and aerostat:hostname tags were written, by result (success, throttled, error).",
	}, []string{"result"})}
	if err := reg.Register(w.writes); err != nil {
		return nil, fmt.Errorf("registering tag write-back metrics: %w", err)
	}
	return w, nil
}

// Due returns the bound records whose instance, as observed, lacks its
// name in either tag, by hostname.
func (w *TagWriter) Due(records []naming.Record, observed []naming.Instance) []naming.Record {
	byID := make(map[string]naming.Instance, len(observed))
	for _, in := range observed {
		byID[in.ID] = in
	}
	var due []naming.Record
	for _, r := range records {
		in, ok := byID[r.InstanceID]
		if r.Free() || !ok || in.State == naming.StateTerminated || in.State == naming.StateShuttingDown {
			continue
		}
		if in.Tags[TagName] != r.Hostname || in.Tags[TagHostname] != r.Hostname {
			due = append(due, r)
		}
	}
	naming.SortByHostname(due)
	return due
}

// Write tags up to Max of the due instances and returns how many it
// wrote. It stops at the first throttled call (the budget backs off; the
// rest waits for the next pass, when the observed tags still differ).
// Errors are for logging: tags are idempotent and retried every pass.
func (w *TagWriter) Write(ctx context.Context, records []naming.Record, observed []naming.Instance) (int, error) {
	due := w.Due(records, observed)
	written := 0
	var errs []error
	for _, r := range due[:min(len(due), w.max)] {
		err := w.tagger.Tag(ctx, []string{r.InstanceID}, map[string]string{TagName: r.Hostname, TagHostname: r.Hostname})
		w.writes.WithLabelValues(cloud.ResultOf(err)).Inc()
		if err != nil {
			errs = append(errs, fmt.Errorf("tagging %s with %s: %w", r.InstanceID, r.Hostname, err))
			if cloud.IsThrottled(err) || ctx.Err() != nil {
				break
			}
			continue
		}
		written++
	}
	if written > 0 || len(errs) > 0 {
		log.FromContext(ctx).Info("tags written", "service", due[0].Service, "instances", written, "due", len(due), "failed", len(errs))
	}
	return written, errors.Join(errs...)
}
