package controllers_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// TestStandalone: without Kubernetes, services come from instance tags and
// from names nodes registered themselves; the same pass names, keeps and
// releases them.
func TestStandalone(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	api := r.fleet.Launch(1, map[string]string{controllers.TagService: "api", controllers.TagServiceType: "masterful", controllers.TagAliases: "api-primary"})
	r.clock.Step(1)
	r.fleet.Launch(2, map[string]string{controllers.TagService: "api", controllers.TagServiceType: "masterful"})
	// A 1.x node that registered itself from /etc/aerostat_info: no tags.
	legacy := r.fleet.Launch(1, nil)
	inst, _ := r.fleet.Instance(legacy[0])
	if _, err := r.store.Apply(ctx, []naming.Change{{
		Type: naming.Bind, Hostname: "legacy-0", Service: "legacy", Scheme: naming.Iterative,
		InstanceID: inst.ID, IP: inst.PrivateIP, Reason: "registered by the node",
	}}); err != nil {
		t.Fatalf("registering legacy-0: %v", err)
	}

	reg := prometheus.NewRegistry()
	m, err := controllers.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	syncer := controllers.NewSyncer(controllers.SyncerOptions{Cloud: r.ec2, Store: r.store, Clock: r.clock, Metrics: m})
	sa := controllers.NewStandalone(controllers.StandaloneOptions{Syncer: syncer, Cloud: r.ec2, Store: r.store, Clock: r.clock})

	sum, err := sa.Pass(ctx)
	if err != nil {
		t.Fatalf("first pass: %v", err)
	}
	if got := strings.Join(sum.Services, ","); got != "api,legacy" {
		t.Errorf("services = %s, want api,legacy", got)
	}
	got := r.bound("api")
	if got["api-master"] != api[0] || len(got) != 3 {
		t.Errorf("api names = %v, want api-master on %s and two slaves", got, api[0])
	}
	if r.bound("legacy")["legacy-0"] != legacy[0] {
		t.Errorf("legacy-0 lost its instance: %v", r.bound("legacy"))
	}
	recs, _ := r.store.Records(ctx, "api")
	for _, rec := range recs {
		if rec.InstanceID == api[0] && strings.Join(rec.Aliases, ",") != "api-primary" {
			t.Errorf("aliases of %s = %v, want [api-primary] from the aerostat:aliases tag", rec.Hostname, rec.Aliases)
		}
	}
	if v := gauge(t, reg, "aerostat_names_bound", "api"); v != 3 {
		t.Errorf("aerostat_names_bound{service=api} = %v, want 3", v)
	}

	before := r.rev()
	if _, err := sa.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if after := r.rev(); after != before {
		t.Errorf("steady-state pass moved the rev from %d to %d", before, after)
	}

	// A throttled listing: the pass fails (so --once exits non-zero) and
	// writes nothing, even with an instance gone.
	if err := r.fleet.Terminate(legacy[0]); err != nil {
		t.Fatal(err)
	}
	r.server.ThrottleNext(1)
	if _, err := sa.Pass(ctx); err == nil {
		t.Error("a throttled pass returned no error")
	}
	if after := r.rev(); after != before {
		t.Errorf("throttled pass moved the rev from %d to %d", before, after)
	}
	if _, err := sa.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if b := r.bound("legacy"); len(b) != 0 {
		t.Errorf("legacy names after its instance terminated = %v, want none", b)
	}
	// The released name is held back (default policy) and says so.
	if v := gauge(t, reg, "aerostat_names_held", "legacy"); v != 1 {
		t.Errorf("aerostat_names_held{service=legacy} = %v, want 1", v)
	}
}

// gauge reads one service's value of a gauge from reg.
func gauge(t *testing.T, reg *prometheus.Registry, name, service string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "service" && l.GetValue() == service {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{service=%q}", name, service)
	return 0
}
