package controllers_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/aerostat-io/aerostat/api/v1alpha1"
	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// TestStandaloneRepairsUnnamed: documents whose hostname 1.x's
// --change-master blanked (and then died) are treated as 1.x's own code
// treats them: the instance holds no name, so a live one is named again
// (the master name first) and the leftover document goes; a dead
// instance's or an already named one's leftover just goes. A pass that
// could not list EC2 completely, or a dry run, removes nothing.
func TestStandaloneRepairsUnnamed(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	m := r.store.(*ledger.Mongo)
	servers := m.Client().Database(m.Database()).Collection("servers")
	ids := r.fleet.Launch(3, nil) // 1.x fleets carry no tags
	ip := func(id string) string { in, _ := r.fleet.Instance(id); return in.PrivateIP }
	for i, h := range []string{"db-master", "db-slave-1"} {
		role, ord, _ := naming.ParseHostname("db", naming.Masterful, h)
		if _, err := r.store.Apply(ctx, []naming.Change{{Type: naming.Bind, Hostname: h, Service: "db", Scheme: naming.Masterful,
			Role: role, Ordinal: ord, InstanceID: ids[i], IP: ip(ids[i]), Reason: "registered by the node"}}); err != nil {
			t.Fatal(err)
		}
	}
	unnamed := func() int {
		t.Helper()
		docs, err := m.Unnamed(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(docs)
	}
	// 1.x change-master's first write, as pymongo sends it; its second
	// ("" on the new master) is refused by the unique index, and it dies.
	if _, err := servers.UpdateOne(ctx, bson.D{{Key: "instance_id", Value: ids[0]}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "hostname", Value: ""}}}}); err != nil {
		t.Fatal(err)
	}
	if got := r.bound("db"); len(got) != 1 || unnamed() != 1 {
		t.Fatalf("after 1.x's blanking: bound %v, %d unnamed documents", got, unnamed())
	}

	newSA := func(dry bool) *controllers.Standalone {
		syncer := controllers.NewSyncer(controllers.SyncerOptions{Cloud: r.ec2, Store: r.store, Clock: r.clock, DryRun: dry, Unnamed: m})
		return controllers.NewStandalone(controllers.StandaloneOptions{Syncer: syncer, Cloud: r.ec2, Store: r.store, Clock: r.clock})
	}
	sa := newSA(false)

	r.server.ThrottleNext(1)
	if _, err := sa.Pass(ctx); err == nil {
		t.Error("a throttled pass returned no error")
	}
	if sum, err := newSA(true).Pass(ctx); err != nil || sum.Repaired != 0 || sum.Passes["db"].Plan.Changes[0].InstanceID != ids[0] {
		t.Errorf("dry run: repaired %d, plan %+v, %v; want db-master planned for %s", sum.Repaired, sum.Passes["db"].Plan.Changes, err, ids[0])
	}
	if n := unnamed(); n != 1 {
		t.Fatalf("a throttled pass or a dry run removed the leftover: %d unnamed documents", n)
	}

	sum, err := sa.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.bound("db"); got["db-master"] != ids[0] || got["db-slave-1"] != ids[1] || len(got) != 2 || sum.Repaired != 1 || unnamed() != 0 {
		t.Errorf("after the repair: bound %v, repaired %d, %d unnamed; want db-master back on %s", got, sum.Repaired, unnamed(), ids[0])
	}

	// A 1.x-shaped leftover (ObjectID, aliases null, no 2.x field) of a
	// terminated instance, then one of an instance that holds a name.
	if err := r.fleet.Terminate(ids[2]); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{ids[2], ids[1]} {
		if _, err := servers.InsertOne(ctx, bson.D{{Key: "hostname", Value: ""}, {Key: "ip", Value: ip(id)}, {Key: "service", Value: "db"},
			{Key: "service_type", Value: "masterful"}, {Key: "instance_id", Value: id}, {Key: "aliases", Value: nil}}); err != nil {
			t.Fatal(err)
		}
		before := r.rev()
		sum, err := sa.Pass(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.bound("db"); got["db-master"] != ids[0] || got["db-slave-1"] != ids[1] || len(got) != 2 || sum.Repaired != 1 || unnamed() != 0 {
			t.Errorf("leftover of %s: bound %v, repaired %d, %d unnamed", id, got, sum.Repaired, unnamed())
		}
		if r.rev() != before {
			t.Errorf("leftover of %s: the pass named something (rev %d -> %d)", id, before, r.rev())
		}
	}
}

// TestReconcileRepairsUnnamed: in Kubernetes mode a NamingService's pass
// repairs what a 1.x --change-master that died half-way left (the old
// master's hostname blanked, the service without <svc>-master), through
// the Syncer as the standalone pass does. Never on a throttled listing,
// in a dry run (`plan`) or in an event's partial pass; another service's
// leftover is left to that service.
func TestReconcileRepairsUnnamed(t *testing.T) {
	_, c := envtestClient(t)
	r := newRig(t)
	ctx := context.Background()
	const svc = "legacydb"
	m := r.store.(*ledger.Mongo)
	servers := m.Client().Database(m.Database()).Collection("servers")
	first := r.launch(1, svc)
	r.clock.Step(time.Minute)
	ids := append(first, r.launch(2, svc)...)
	createService(t, c, v1alpha1.NamingServiceSpec{Service: svc, Scheme: "Masterful"})
	newRC := func(dry bool) *controllers.NamingServiceReconciler {
		syncer := controllers.NewSyncer(controllers.SyncerOptions{Cloud: r.ec2, Store: r.store, Clock: r.clock, DryRun: dry, Unnamed: m})
		return &controllers.NamingServiceReconciler{Client: c, Syncer: syncer, Clock: r.clock}
	}
	rc := newRC(false)
	reconcile := func() error {
		_, err := rc.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: svc}})
		return err
	}
	if err := reconcile(); err != nil {
		t.Fatal(err)
	}
	if got := r.bound(svc); got[svc+"-master"] != ids[0] || len(got) != 3 {
		t.Fatalf("bound %v, want %s-master on %s", got, svc, ids[0])
	}
	unnamed := func() []ledger.Document {
		t.Helper()
		docs, err := m.Unnamed(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return docs
	}

	// 1.x's change-master to ids[1], as its Python sends it: the old
	// master's hostname to "", the new master's to "", then the new
	// master's to <svc>-master. A unique index that counts "" refuses the
	// second write and the 1.x client dies there.
	set := func(filter bson.D, host string) error {
		_, err := servers.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: "hostname", Value: host}}}})
		return err
	}
	if err := set(bson.D{{Key: "hostname", Value: svc + "-master"}}, ""); err != nil {
		t.Fatal(err)
	}
	if err := set(bson.D{{Key: "instance_id", Value: ids[1]}}, ""); err == nil {
		if err := set(bson.D{{Key: "instance_id", Value: ids[1]}}, svc+"-master"); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := r.bound(svc)[svc+"-master"]; ok {
		t.Skip("this store accepted two blank hostnames: 1.x's change-master completed, nothing to repair")
	}
	// A leftover of another service's instance (no hostname field: the
	// unique index holds one "" already): not this service's to fix.
	other := r.launch(1, "othersvc")[0]
	if _, err := servers.InsertOne(ctx, bson.D{{Key: "ip", Value: "10.9.9.9"}, {Key: "service", Value: "othersvc"},
		{Key: "service_type", Value: "iterative"}, {Key: "instance_id", Value: other}, {Key: "aliases", Value: nil}}); err != nil {
		t.Fatal(err)
	}
	if n := len(unnamed()); n != 2 {
		t.Fatalf("after 1.x's change-master: %d documents without a hostname, want 2", n)
	}

	r.server.ThrottleNext(1)
	if err := reconcile(); err != nil {
		t.Fatal(err)
	}
	if _, err := newRC(true).Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: svc}}); err != nil {
		t.Fatal(err)
	}
	in, err := r.ec2.List(ctx, cloud.Filter{Name: "instance-id", Values: ids})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Syncer.SyncInstances(ctx, controllers.Service{Policy: naming.Policy{Service: svc, Scheme: naming.Masterful, Reap: controllers.DefaultReap()}}, in, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(unnamed()); n != 2 {
		t.Fatalf("a throttled pass, a dry run or a partial pass removed a leftover: %d left, want 2", n)
	}

	if err := reconcile(); err != nil {
		t.Fatal(err)
	}
	recs, err := r.store.Records(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, recs)
	got := r.bound(svc)
	if got[svc+"-master"] != ids[0] || len(got) != 3 {
		t.Errorf("after the repair: bound %v, want %s-master back on %s and the two slaves kept", got, svc, ids[0])
	}
	if left := unnamed(); len(left) != 1 || left[0].Record.Service != "othersvc" {
		t.Errorf("after the repair: documents without a hostname %+v, want only othersvc's", left)
	}
	if ns := getService(t, c, svc); ns.Status.Master != ids[0] || condition(ns, v1alpha1.ConditionReady).Status != metav1.ConditionTrue {
		t.Errorf("status: master %q, Ready %+v", ns.Status.Master, condition(ns, v1alpha1.ConditionReady))
	}
}

// countingUnnamed counts the reads of documents without a hostname.
type countingUnnamed struct {
	controllers.UnnamedStore
	reads int
}

func (c *countingUnnamed) Unnamed(ctx context.Context) ([]ledger.Document, error) {
	c.reads++
	return c.UnnamedStore.Unnamed(ctx)
}

// TestUnnamedReadOnSchedule: with UnnamedEvery, idle passes do not scan for
// documents without a hostname; a 1.x leftover written meanwhile is found
// within UnnamedEvery (here: the next pass after it), then read on every
// pass until repaired, and the schedule resumes.
func TestUnnamedReadOnSchedule(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	m := r.store.(*ledger.Mongo)
	servers := m.Client().Database(m.Database()).Collection("servers")
	ids := r.fleet.Launch(2, nil)
	ip := func(id string) string { in, _ := r.fleet.Instance(id); return in.PrivateIP }
	if _, err := r.store.Apply(ctx, []naming.Change{{Type: naming.Bind, Hostname: "db-master", Service: "db", Scheme: naming.Masterful,
		Role: naming.RoleMaster, InstanceID: ids[0], IP: ip(ids[0]), Reason: "registered by the node"}}); err != nil {
		t.Fatal(err)
	}
	const every = 5 * time.Minute
	counted := &countingUnnamed{UnnamedStore: m}
	syncer := controllers.NewSyncer(controllers.SyncerOptions{Cloud: r.ec2, Store: r.store, Clock: r.clock, Unnamed: counted, UnnamedEvery: every})
	sa := controllers.NewStandalone(controllers.StandaloneOptions{Syncer: syncer, Cloud: r.ec2, Store: r.store, Clock: r.clock})
	pass := func() controllers.Summary {
		t.Helper()
		sum, err := sa.Pass(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	pass()
	pass()
	if counted.reads != 1 {
		t.Fatalf("two idle passes read the unnamed documents %d times, want once", counted.reads)
	}
	// A leftover of 1.x's change-master on ids[1] (hostname blanked).
	if _, err := servers.InsertOne(ctx, bson.D{{Key: "hostname", Value: ""}, {Key: "ip", Value: ip(ids[1])}, {Key: "service", Value: "db"},
		{Key: "service_type", Value: "masterful"}, {Key: "instance_id", Value: ids[1]}, {Key: "aliases", Value: nil}}); err != nil {
		t.Fatal(err)
	}
	r.clock.Step(every - time.Second)
	if sum := pass(); counted.reads != 1 || sum.Repaired != 0 || len(r.bound("db")) != 1 {
		t.Fatalf("before the period: %d reads, repaired %d, bound %v; want 1, 0, db-master only", counted.reads, sum.Repaired, r.bound("db"))
	}
	r.clock.Step(time.Second)
	if sum := pass(); counted.reads != 2 || sum.Repaired != 1 || r.bound("db")["db-slave-1"] != ids[1] {
		t.Fatalf("after the period: %d reads, repaired %d, bound %v; want 2, 1, db-slave-1 on %s", counted.reads, sum.Repaired, r.bound("db"), ids[1])
	}
	pass() // the last read found one: read again, finds none
	pass() // on schedule again
	if counted.reads != 3 {
		t.Errorf("after the repair: %d reads, want 3", counted.reads)
	}
}
