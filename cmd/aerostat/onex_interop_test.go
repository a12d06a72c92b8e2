//go:build !agentonly

package main

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/store/embedded"
)

// TestOnexReadsAerostat2Records: records written by every Aerostat 2
// command (register, promote, controller, adopt) are read by 1.x's
// updater, library lookups and aerostatd without a KeyError, and carry the
// six 1.x fields with 1.x's types.
func TestOnexReadsAerostat2Records(t *testing.T) {
	ctx := context.Background()
	e := newCLIEC2(t)
	db := ledgertest.Database(t)
	e.flags = append(e.flags, "--database", db)
	one := newOnex(t, db, 1)

	// Nodes booting with an /etc/aerostat_info register and promote
	// themselves; their instances carry no tag (1.x fleets had none).
	inst := func() (string, string) {
		id := e.fleet.Launch(1, nil)[0]
		in, _ := e.fleet.Instance(id)
		return id, in.PrivateIP
	}
	node := func(info string) *nodeEnv {
		n := newNodeEnv(t, info)
		n.flags[3] = db // --database
		return n
	}
	webID, webIP := inst()
	if out, err := node("web iterative www\n").run(t, "register", "--instance-id", webID, "--ip", webIP); err != nil || out != "web-0\n" {
		t.Fatalf("register = %q, %v", out, err)
	}
	dbs := node("db masterful\n")
	var dbID, dbIP [2]string
	for i, want := range []string{"db-master", "db-slave-1"} {
		dbID[i], dbIP[i] = inst()
		if out, err := dbs.run(t, "register", "--instance-id", dbID[i], "--ip", dbIP[i]); err != nil || out != want+"\n" {
			t.Fatalf("register %s = %q, %v; want %s", dbID[i], out, err, want)
		}
	}
	if out, err := dbs.run(t, "promote", "--instance-id", dbID[1], "--ip", dbIP[1]); err != nil || out != "db-master\n" {
		t.Fatalf("promote = %q, %v", out, err)
	}

	// A 1.x node registers too, then adopt --apply backfills it.
	oldID, oldIP := inst()
	if got := one.register(t, oldID, oldIP, "legacy"); got != "legacy-0" {
		t.Fatalf("1.x register = %q, want legacy-0", got)
	}
	if out, err := runNode(t, "adopt", "--server", ledgertest.URI(t), "--database", db, "--no-ec2", "--apply"); err != nil {
		t.Fatalf("adopt --apply: %v\n%s", err, out)
	}

	// The controller names tagged instances, then releases a terminated one.
	ids := e.fleet.Launch(3, map[string]string{controllers.TagService: "app", controllers.TagAliases: "api"})
	ctl := []string{"controller", "--standalone", "--once", "--hold-back", "0", "--stopped-grace-period", "0",
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--zap-log-level", "error"}
	if out, err := e.run(t, ctl[0], ctl[1:]...); err != nil {
		t.Fatalf("controller: %v\n%s", err, out)
	}
	if err := e.fleet.Terminate(ids[1]); err != nil {
		t.Fatal(err)
	}
	if out, err := e.run(t, ctl[0], ctl[1:]...); err != nil {
		t.Fatalf("controller: %v\n%s", err, out)
	}

	checkOnexFields(t, db)
	hosts := one.update(t)
	for _, want := range []string{webIP + " web-0", webIP + " www", dbIP[1] + " db-master", dbIP[0] + " db-slave-1", oldIP + " legacy-0"} {
		if !slices.Contains(hosts, want) {
			t.Errorf("1.x updater output lacks %q:\n%s", want, strings.Join(hosts, "\n"))
		}
	}
	if n := countPrefix(hosts, "app-"); n != 2 {
		t.Errorf("1.x updater wrote %d app-N lines, want 2 (one released):\n%s", n, strings.Join(hosts, "\n"))
	}
	l := one.lookup(t, "db", dbID[1], "db-master")
	if !l.HostnameExists || l.GetMaster == nil || *l.GetMaster != dbID[1] || !l.CheckMaster || l.GetHostname == nil || *l.GetHostname != "db-master" {
		t.Errorf("1.x lookups after promote = %+v", l)
	}
	// aerostatd lists every instance id and blanks those not running.
	var ad struct {
		InstanceIDs []string `json:"instance_ids"`
	}
	one.must(t, &ad, "aerostatd", webID)
	if !slices.Contains(ad.InstanceIDs, dbID[0]) || !slices.Contains(ad.InstanceIDs, ids[0]) {
		t.Errorf("aerostatd saw instance ids %v", ad.InstanceIDs)
	}
	recs, err := ledgertest.Open(t, ledger.Options{Database: db}).Records(ctx, "web")
	if err != nil || len(recs) != 1 || !recs[0].Free() {
		t.Errorf("web records after aerostatd released web-0: %+v, %v", recs, err)
	}
}

// TestOnexReadsDemoRecords: the demo's ledger, read by 1.x's updater.
func TestOnexReadsDemoRecords(t *testing.T) {
	needPymongo(t)
	dir := t.TempDir()
	hosts := filepath.Join(t.TempDir(), "demo-hosts")
	if out, _, err := runCmd(t, "demo", "--once", "--step-delay", "0", "--hosts-file", hosts, "--data-dir", dir); err != nil {
		t.Fatalf("demo --once: %v\n%s", err, out)
	}
	srv, err := embedded.Start(context.Background(), embedded.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	one := &onex{uri: srv.URI(), db: ledger.DefaultDatabase, w: 1}
	got := one.update(t)
	for _, h := range []string{"web-0", "db-master", "db-slave-1"} {
		if !slices.ContainsFunc(got, func(l string) bool { return strings.HasSuffix(l, " "+h) }) {
			t.Errorf("1.x updater over the demo's ledger lacks %s:\n%s", h, strings.Join(got, "\n"))
		}
	}
	m, err := ledger.Open(context.Background(), srv.URI(), ledger.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Close(context.Background()) }()
	n, err := m.Client().Database(ledger.DefaultDatabase).Collection("servers").CountDocuments(context.Background(),
		bson.D{{Key: "aliases", Value: bson.D{{Key: "$exists", Value: false}}}})
	if err != nil || n != 0 {
		t.Errorf("%d demo documents without aliases (%v)", n, err)
	}
}

func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if _, h, ok := strings.Cut(l, " "); ok && strings.HasPrefix(h, prefix) {
			n++
		}
	}
	return n
}

// TestOnexAdoptRepairsFields: a document without aliases or ip (written by
// an Aerostat 2 before the aliases fix, or by hand) kills 1.x's updater
// with a KeyError; `aerostat adopt` reports it in a dry run and --apply
// repairs it, after which the updater runs.
func TestOnexAdoptRepairsFields(t *testing.T) {
	ctx := context.Background()
	db := ledgertest.Database(t)
	one := newOnex(t, db, 1)
	raw := ledgertest.Open(t, ledger.Options{Database: db}).Client().Database(db).Collection("servers")
	if _, err := raw.InsertOne(ctx, bson.D{{Key: "hostname", Value: "web-0"}, {Key: "service", Value: "web"},
		{Key: "service_type", Value: "iterative"}, {Key: "instance_id", Value: "i-0123"}}); err != nil {
		t.Fatal(err)
	}
	var hosts struct{ Hosts []string }
	if err := one.run(t, &hosts, "update"); err == nil || !strings.Contains(err.Error(), "KeyError") {
		t.Fatalf("1.x updater over a document without ip and aliases: %v; want a KeyError", err)
	}
	adopt := []string{"adopt", "--server", ledgertest.URI(t), "--database", db, "--no-ec2"}
	out, err := runNode(t, adopt...)
	if err != nil || !strings.Contains(out, "repair 1.x ip, aliases") || !strings.Contains(out, "Dry run") {
		t.Fatalf("adopt dry run: %v\n%s", err, out)
	}
	if out, err := runNode(t, append(adopt, "--apply")...); err != nil {
		t.Fatalf("adopt --apply: %v\n%s", err, out)
	}
	checkOnexFields(t, db)
	if got := one.update(t); len(got) != 1 {
		t.Errorf("1.x updater after adopt: %v; want only localhost (web-0 has no ip)", got)
	}
	if out, err := runNode(t, adopt...); err != nil || !strings.Contains(out, "Would backfill 0 documents") {
		t.Errorf("adopt after --apply: %v\n%s; want nothing to do", err, out)
	}
}
