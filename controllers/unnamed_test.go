package controllers_test

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/aerostat-io/aerostat/controllers"
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
		syncer := controllers.NewSyncer(controllers.SyncerOptions{Cloud: r.ec2, Store: r.store, Clock: r.clock, DryRun: dry})
		return controllers.NewStandalone(controllers.StandaloneOptions{Syncer: syncer, Cloud: r.ec2, Store: r.store, Clock: r.clock, Unnamed: m})
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
