package controllers_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// Tag write-back over the wire-level fake EC2: at most Max instances a
// pass, only those whose tags differ, and a throttled CreateTags stops the
// pass's writing (the rest waits for the next pass).
func TestTagWriteBack(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	ids := r.launch(5, "web")
	tw, err := controllers.NewTagWriter(r.ec2, 3, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	m, err := controllers.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s := controllers.NewSyncer(controllers.SyncerOptions{Cloud: r.ec2, Store: r.store, Clock: r.clock, Metrics: m, Tags: tw})
	svc := controllers.Service{Policy: naming.Policy{Service: "web", Scheme: naming.Iterative, Reap: controllers.DefaultReap()}}

	for i, want := range []int{3, 2, 0} {
		r.server.Reset()
		pass, err := s.Sync(ctx, svc)
		if err != nil || pass.ObserveErr != nil {
			t.Fatalf("pass %d: %v %v", i, err, pass.ObserveErr)
		}
		if pass.TagsWritten != want || r.server.Calls("CreateTags") != want {
			t.Errorf("pass %d wrote %d (%d CreateTags calls), want %d", i, pass.TagsWritten, r.server.Calls("CreateTags"), want)
		}
	}
	for host, id := range r.bound("web") {
		in, _ := r.fleet.Instance(id)
		if in.Tags[controllers.TagName] != host || in.Tags[controllers.TagHostname] != host {
			t.Errorf("%s (%s) tags = %v", host, id, in.Tags)
		}
	}

	// A renamed Name tag is written back; a throttled call stops the batch.
	if err := r.fleet.Tag(ctx, ids, map[string]string{controllers.TagName: "hand-made"}); err != nil {
		t.Fatal(err)
	}
	observed, err := r.ec2.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := r.store.Records(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if due := tw.Due(recs, observed); len(due) != 5 {
		t.Fatalf("due after hand edits = %d, want 5", len(due))
	}
	r.server.Reset()
	r.server.ThrottleNext(1)
	n, err := tw.Write(ctx, recs, observed)
	if n != 0 || !cloud.IsThrottled(err) || r.server.Calls("CreateTags") != 1 {
		t.Errorf("throttled write = %d, %v after %d calls; want 0, throttled, 1 call", n, err, r.server.Calls("CreateTags"))
	}
}
