package adopt_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/adopt"
	"github.com/aerostat-io/aerostat/internal/ledger"
)

// TestAdoptRepairsOnexFields: documents lacking 1.x fields (an Aerostat 2
// before the aliases fix, hand edits, partial 1.x writes) are reported by a
// dry run field by field, repaired by --apply with 1.x's types, and a
// second run finds nothing to do.
func TestAdoptRepairsOnexFields(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	in0, _ := w.fleet.Instance(w.ids[0])
	oid := func() bson.ObjectID { return bson.NewObjectID() }
	w.seed(t,
		// Written by register before aliases were always set.
		bson.M{"_id": oid(), "hostname": "web-0", "ip": in0.PrivateIP, "service": "web",
			"service_type": "iterative", "instance_id": w.ids[0], "role": "member",
			"ordinal": int64(0), "rev": int64(1), "updated_at": time.Now()},
		// Hand-edited: aliases a string, ip and service_type gone.
		bson.M{"_id": oid(), "hostname": "web-1", "service": "web", "instance_id": "", "aliases": "www api"},
		// No service, no type: the name says db's master.
		bson.M{"_id": oid(), "hostname": "db-master", "ip": nil, "instance_id": nil, "aliases": nil},
		// Complete as 1.x wrote it: only the 2.x fields to add.
		doc("web-2", "web", "iterative", "", ""),
	)
	want := map[string]string{"web-0": "aliases", "web-1": "ip,service_type,aliases", "db-master": "ip,service,service_type,instance_id", "web-2": ""}
	before := w.rawDocs(t)
	rep, err := adopt.Run(ctx, adopt.Options{Ledger: w.store})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, b := range rep.Backfills {
		got[b.Hostname] = strings.Join(b.Onex, ",")
	}
	for h, fields := range want {
		if g, ok := got[h]; !ok || g != fields {
			t.Errorf("dry run: %s repairs 1.x fields %q (reported %v), want %q", h, g, ok, fields)
		}
	}
	if after := w.rawDocs(t); len(after) != len(before) || !slices.EqualFunc(before, after, func(a, b bson.M) bool { return len(a) == len(b) }) {
		t.Errorf("dry run wrote: %v -> %v", before, after)
	}

	if _, err := adopt.Run(ctx, adopt.Options{Ledger: w.store, Apply: true}); err != nil {
		t.Fatal(err)
	}
	byHost := map[string]bson.M{}
	for _, d := range w.rawDocs(t) {
		byHost[d["hostname"].(string)] = d
		for _, f := range []string{"hostname", "ip", "service", "service_type", "instance_id"} {
			if _, ok := d[f].(string); !ok {
				t.Errorf("after --apply %s: %s = %#v, want a string", d["hostname"], f, d[f])
			}
		}
		if a, ok := d["aliases"]; !ok || (a != nil && !isArray(a)) {
			t.Errorf("after --apply %s: aliases = %#v, want a list or null", d["hostname"], a)
		}
	}
	if m := byHost["db-master"]; m["service"] != "db" || m["service_type"] != "masterful" || m["role"] != "master" {
		t.Errorf("db-master after --apply: %v; want service db, masterful, role master", m)
	}
	if a := byHost["web-1"]["aliases"]; !isArray(a) || len(a.(bson.A)) != 2 {
		t.Errorf("web-1 aliases after --apply: %#v, want [www api]", a)
	}
	rep, err = adopt.Run(ctx, adopt.Options{Ledger: w.store, Apply: true})
	if err != nil || rep.Pending() || len(rep.Backfills) != 0 {
		t.Errorf("second --apply: pending %v, backfills %+v, %v; want nothing to do", rep.Pending(), rep.Backfills, err)
	}
}

func isArray(v any) bool { _, ok := v.(bson.A); return ok }

// TestAdoptAppliesHoldBack: a name in a tag that was released from another
// instance less than the service's stored hold-back ago is not bound (the
// shared policy, as register and the controller apply it); with the policy
// at 0 (1.x behaviour) it is, and the report names the policy in force.
func TestAdoptAppliesHoldBack(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
	for name, tc := range map[string]struct {
		holdBack time.Duration
		bound    bool
	}{
		"held":      {holdBack: 5 * time.Minute},
		"1.x reuse": {holdBack: 0, bound: true},
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			gap := doc("web-3", "web", "iterative", "", "")
			gap["released_at"], gap["last_instance_id"], gap["rev"] = now.Add(-time.Minute), w.ids[0], int64(1)
			w.seed(t, gap)
			if err := w.store.PutPolicy(ctx, ledger.Policy{Service: "web", HoldBack: tc.holdBack, Source: "controller --standalone"}); err != nil {
				t.Fatal(err)
			}
			w.tag(t, 1, "aerostat:service", "web", "Name", "web-3")
			rep, err := adopt.Run(ctx, adopt.Options{Ledger: w.store, Cloud: w.ec2, Apply: true, Clock: clocktesting.NewFakePassiveClock(now)})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Policies) != 1 || rep.Policies[0].HoldBack != tc.holdBack || !strings.Contains(rep.Policies[0].Source, "controller --standalone") {
				t.Errorf("policies reported: %+v", rep.Policies)
			}
			recs, err := w.store.Records(ctx, "web")
			if err != nil {
				t.Fatal(err)
			}
			if bound := len(recs) == 1 && recs[0].InstanceID == w.ids[1]; bound != tc.bound {
				t.Errorf("web-3 bound to %s: %v, want %v (records %+v, conflicts %+v)", w.ids[1], bound, tc.bound, recs, rep.Conflicts)
			}
			if !tc.bound && (len(rep.Conflicts) != 1 || !strings.Contains(rep.Conflicts[0].Reason, "held back")) {
				t.Errorf("conflicts = %+v, want web-3 held back", rep.Conflicts)
			}
		})
	}
}
