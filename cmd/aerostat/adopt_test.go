//go:build !agentonly

package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/adopt"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
)

// TestAdoptCommand: a 1.x fleet (database with a race duplicate, no tags
// but Name) is adopted without renaming, then the controller's plan has
// nothing to rename.
func TestAdoptCommand(t *testing.T) {
	ctx := context.Background()
	e := newCLIEC2(t)
	ids := e.fleet.Launch(4, map[string]string{controllers.TagService: "web"})
	if err := e.fleet.Terminate(ids[1]); err != nil {
		t.Fatal(err)
	}
	ip := func(i int) string { in, _ := e.fleet.Instance(ids[i]); return in.PrivateIP }
	db := ledgertest.Database(t)
	ro := ledgertest.Open(t, ledger.Options{Database: db, ReadOnly: true})
	servers := ro.Client().Database(db).Collection("servers")
	doc := func(host, id, addr string) any {
		return bson.M{"_id": bson.NewObjectID(), "hostname": host, "ip": addr, "service": "web", "service_type": "iterative", "instance_id": id, "aliases": bson.A{}}
	}
	if _, err := servers.InsertMany(ctx, []any{
		doc("web-0", ids[0], ip(0)),
		doc("web-1", ids[1], ip(1)),
		doc("web-1", ids[2], ip(2)), // the 1.x race: two nodes got web-1
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.fleet.Tag(ctx, []string{ids[3]}, map[string]string{"Name": "web-5"}); err != nil {
		t.Fatal(err)
	}
	e.flags = append(e.flags, "--database", db)

	out, err := e.run(t, "adopt")
	if err != nil {
		t.Fatalf("adopt: %v\n%s", err, out)
	}
	for _, want := range []string{"Ledger " + db + ".servers: 3 documents.", "dedupe", "web-1", ids[2], "removed " + ids[1] + " (terminated)",
		"backfill", "add role, ordinal, rev, updated_at", "bind", "web-5", "from tag Name=web-5", "Dry run: nothing written"} {
		if !strings.Contains(out, want) {
			t.Errorf("adopt report lacks %q:\n%s", want, out)
		}
	}
	if n, _ := servers.CountDocuments(ctx, bson.M{"rev": bson.M{"$exists": true}}); n != 0 {
		t.Errorf("dry run wrote %d revs", n)
	}

	out, err = e.run(t, "adopt", "--apply", "-o", "json")
	if err != nil {
		t.Fatalf("adopt --apply: %v\n%s", err, out)
	}
	var rep adopt.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || !rep.Applied || len(rep.Binds) != 1 || len(rep.Duplicates) != 1 {
		t.Fatalf("adopt --apply -o json: %v %+v\n%s", err, rep, out)
	}

	// The controller now takes over: no live instance is renamed; the
	// terminated duplicate is gone, the new name stays.
	e.flags = e.flags[:len(e.flags)-2]
	e.open(t, db)
	recs, _ := e.store.Records(ctx, "web")
	got := map[string]string{}
	for _, r := range recs {
		got[r.Hostname] = r.InstanceID
	}
	if got["web-0"] != ids[0] || got["web-1"] != ids[2] || got["web-5"] != ids[3] || len(got) != 3 {
		t.Errorf("after adopt: %v", got)
	}
	if rep2 := e.plan(t, false); rep2.Pending != 0 {
		t.Errorf("the controller would change the adopted fleet: %+v", rep2.Changes)
	}
}
