package controllers_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/aerostat-io/aerostat/api/v1alpha1"
	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// An instance of one service tags itself with aliases that would shadow
// another service's master (held and not yet held), localhost, the feed's
// Service, a cluster name and a name outside the allowed suffixes. None is
// written; the NamingService shows AliasesRefused with each one and one
// Warning Event, and the allowed alias is written.
func TestAliasesRefusedAcrossServices(t *testing.T) {
	_, c := envtestClient(t)
	r := newRig(t)
	ctx := context.Background()
	guard, err := naming.NewAliasGuard(naming.AliasGuardOptions{
		Reserved: []string{"aerostat-feed"}, AllowedSuffixes: []string{"corp.example"},
	})
	if err != nil {
		t.Fatal(err)
	}
	m, err := controllers.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	syncer := controllers.NewSyncer(controllers.SyncerOptions{Cloud: r.ec2, Store: r.store, Clock: r.clock, Metrics: m, Aliases: guard})
	rc := r.reconciler(c, r.store)
	rc.Syncer = syncer

	r.launch(1, "alidb")
	createService(t, c, v1alpha1.NamingServiceSpec{Service: "alidb", Scheme: "Masterful"})
	rc.pass(t, "alidb")
	if got := r.bound("alidb"); got["alidb-master"] == "" {
		t.Fatalf("alidb bound = %v, want alidb-master", got)
	}

	attacks := []string{"alidb-master", "alidb-slave-4", "localhost", "aerostat-feed",
		"kubernetes.default.svc.cluster.local", "kubernetes.default.svc", "kubernetes", "cache.evil.example"}
	r.fleet.Launch(1, map[string]string{controllers.TagService: "aliweb",
		controllers.TagAliases: strings.Join(append(slices.Clone(attacks), "cache.corp.example"), ",")})
	createService(t, c, v1alpha1.NamingServiceSpec{Service: "aliweb"})
	rc.drainEvents()
	rc.pass(t, "aliweb")

	recs, err := r.store.Records(ctx, "aliweb")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || !slices.Equal(recs[0].Aliases, []string{"cache.corp.example"}) {
		t.Fatalf("aliweb records = %+v, want aliweb-0 with only cache.corp.example", recs)
	}
	ns := getService(t, c, "aliweb")
	cond := condition(ns, v1alpha1.ConditionAliasesRefused)
	if cond.Status != metav1.ConditionTrue || cond.Reason != v1alpha1.ReasonAliasesRefused {
		t.Fatalf("AliasesRefused = %s/%s, want True/%s", cond.Status, cond.Reason, v1alpha1.ReasonAliasesRefused)
	}
	for _, a := range attacks {
		if !strings.Contains(cond.Message, `"`+a+`"`) {
			t.Errorf("condition message does not name %q: %s", a, cond.Message)
		}
	}
	if ev := rc.drainEvents(); ev[v1alpha1.EventAliasRefused] != 1 {
		t.Errorf("events = %v, want one %s", ev, v1alpha1.EventAliasRefused)
	}

	// The same refusals next pass: no second Event.
	rc.pass(t, "aliweb")
	if ev := rc.drainEvents(); ev[v1alpha1.EventAliasRefused] != 0 {
		t.Errorf("events on an unchanged pass = %v, want no %s", ev, v1alpha1.EventAliasRefused)
	}
	// The other service keeps its master, untouched.
	if got := r.bound("alidb"); len(got) != 1 || got["alidb-master"] == "" {
		t.Errorf("alidb after = %v", got)
	}
}
