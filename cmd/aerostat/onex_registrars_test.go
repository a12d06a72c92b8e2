//go:build !agentonly

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/aerostat-io/aerostat/client"
	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// TestEightRegistrarsSideBySide: eight nodes boot at once into one service
// whose 1.x ledger has two gaps: five run `aerostat register`, three run
// 1.x's own registrar (pymongo, acknowledged writes), against the embedded
// store. Whatever the interleaving: no hostname is held by two documents
// and no instance by two names; the gaps are filled; an Aerostat 2
// registrar's name is either still its own or was overwritten by a 1.x
// registrar's unconditional update (1.x's race, which Aerostat 2 cannot
// change), and so is a 1.x registrar's, unless it died on the unique index
// (its insert lost the race) or, with w=0, never learnt it lost. One controller pass
// then names every node once, densely, and 1.x's updater reads every
// record.
func TestEightRegistrarsSideBySide(t *testing.T) {
	const unackedNode = 5 // the 1.x registrar writing with w=0
	e := newCLIEC2(t)
	db := ledgertest.Database(t)
	e.open(t, db)
	one := newOnex(t, db, 1)
	ids := e.fleet.Launch(10, map[string]string{controllers.TagService: "web"})
	ip := func(id string) string { in, _ := e.fleet.Instance(id); return in.PrivateIP }
	raw := e.store.Client().Database(db).Collection("servers")
	ctx := context.Background()
	for _, d := range []bson.D{
		onexDoc("web-0", ids[0], ip(ids[0])), onexDoc("web-1", "", ""),
		onexDoc("web-2", ids[1], ip(ids[1])), onexDoc("web-3", "", ""),
	} {
		if _, err := raw.InsertOne(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	node := newNodeEnv(t, "web\n")

	nodes := ids[2:]
	got := make([]string, len(nodes))
	errs := make([]error, len(nodes))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, id := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if i%3 == 2 { // nodes 2, 5, 8: 1.x images; 5 with pymongo.Connection's w=0
				var out struct{ Hostname *string }
				c := one
				if i == unackedNode {
					c = &onex{uri: one.uri, db: one.db, w: 0}
				}
				if errs[i] = c.run(t, &out, "register", id, ip(id), "web"); errs[i] == nil && out.Hostname != nil {
					got[i] = *out.Hostname
				}
				return
			}
			f := &registerFlags{nodeFlags: nodeFlags{server: ledgertest.URI(t), database: db, log: logFlags{level1x: "ERROR"}},
				infoFile: node.infoFile, instanceID: id, ip: ip(id), timeout: defaultTestTimeout}
			var out bytes.Buffer
			errs[i] = runClaim(ctx, f, false, &out)
			got[i] = strings.TrimSpace(out.String())
		}()
	}
	close(start)
	wg.Wait()

	holder := func() map[string]string {
		t.Helper()
		cur, err := raw.Find(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		var docs []struct {
			Hostname   string `bson:"hostname"`
			InstanceID string `bson:"instance_id"`
		}
		if err := cur.All(ctx, &docs); err != nil {
			t.Fatal(err)
		}
		byHost, byInst := map[string]string{}, map[string]string{}
		for _, d := range docs {
			if _, dup := byHost[d.Hostname]; dup {
				t.Errorf("hostname %q held by two documents", d.Hostname)
			}
			byHost[d.Hostname] = d.InstanceID
			if d.InstanceID == "" {
				continue
			}
			if h, dup := byInst[d.InstanceID]; dup {
				t.Errorf("instance %s holds %s and %s", d.InstanceID, h, d.Hostname)
			}
			byInst[d.InstanceID] = d.Hostname
		}
		return byHost
	}
	byHost := holder()
	for _, h := range []string{"web-1", "web-3"} {
		if byHost[h] == "" {
			t.Errorf("gap %s not filled by eight registrars: %v", h, byHost)
		}
	}
	// Aerostat 2 takes no bound name from anyone (compare-and-set); 1.x's
	// registrar updates an existing hostname unconditionally, so a name a
	// node was given may now be a 1.x node's (1.x's own race, also between
	// two 1.x nodes), never an Aerostat 2 node's.
	onexIDs := map[string]bool{}
	for i, id := range nodes {
		if i%3 == 2 {
			onexIDs[id] = true
		}
	}
	holds := map[string]bool{}
	for _, id := range byHost {
		holds[id] = true
	}
	var exit *exec.ExitError
	for i, id := range nodes {
		holder := byHost[got[i]]
		switch {
		case onexIDs[id] && errors.As(errs[i], &exit):
			if msg := errs[i].Error(); !strings.Contains(msg, "DuplicateKeyError") && !strings.Contains(msg, "UNIQUE constraint") {
				t.Errorf("1.x registrar %s died, not on the unique index: %v", id, errs[i])
			}
			t.Logf("1.x registrar %s lost the race (its insert refused by the unique index)", id)
		case errs[i] != nil:
			t.Errorf("registrar %s: %v", id, errs[i])
		case holder == id:
		case onexIDs[holder]:
			t.Logf("registrar %s was given %s, then 1.x registrar %s's update took it (1.x's race)", id, got[i], holder)
		case i == unackedNode && !holds[id]:
			// pymongo.Connection (w=0) never hears that the unique index
			// refused its insert: it prints a name it does not hold, and
			// the node has no record (get names --pending lists it below).
			t.Logf("1.x registrar %s (w=0) believes %s, held by %s: its insert was refused unseen", id, got[i], holder)
		default:
			t.Errorf("registrar %s (1.x: %v) was given %s, now held by %q: not by a 1.x update", id, onexIDs[id], got[i], holder)
		}
	}

	// Every node the ledger does not name is shown as pending.
	named := map[string]bool{}
	for _, id := range byHost {
		named[id] = true
	}
	var unnamed []string
	for _, id := range ids {
		if !named[id] {
			unnamed = append(unnamed, id)
		}
	}
	out, err := e.run(t, "get", "names", "--pending", "-l", "state=pending", "-o", "json")
	var pending []client.Name
	if err == nil {
		err = json.Unmarshal([]byte(out), &pending)
	}
	if err != nil || len(pending) != len(unnamed) {
		t.Errorf("get names --pending: %+v, %v; want the %d nodes without a record %v", pending, err, len(unnamed), unnamed)
	}
	if out, err := e.run(t, "controller", "--standalone", "--once", "--hold-back", "0",
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--zap-log-level", "error"); err != nil {
		t.Fatalf("controller: %v\n%s", err, out)
	}
	byHost = holder()
	for n := range 10 {
		if h := naming.Hostname("web", naming.Iterative, naming.RoleNone, n); byHost[h] == "" {
			t.Errorf("after a controller pass %s is not bound: %v", h, byHost)
		}
	}
	if len(byHost) != 10 {
		t.Errorf("after a controller pass: %d names, want 10: %v", len(byHost), byHost)
	}
	checkOnexFields(t, db)
	if n := countPrefix(one.update(t), "web-"); n != 10 {
		t.Errorf("1.x updater lists %d web names, want 10", n)
	}
	if recs, err := ledgertest.Open(t, ledger.Options{Database: db, ReadOnly: true}).Records(ctx, "web"); err != nil || len(recs) != 10 {
		t.Errorf("Aerostat 2 reads %d web records (%v), want 10", len(recs), err)
	}
}

// onexDoc is a servers document as 1.x's registrar (or aerostatd, for a
// gap) left it.
func onexDoc(host, id, ip string) bson.D {
	return bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "hostname", Value: host}, {Key: "ip", Value: ip}, {Key: "service", Value: "web"},
		{Key: "service_type", Value: "iterative"}, {Key: "instance_id", Value: id}, {Key: "aliases", Value: nil}}
}
