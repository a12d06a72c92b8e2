//go:build !agentonly

package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
)

// TestOnexChangeMaster: 1.x's --change-master (direct hostname writes)
// over names Aerostat 2 gave, then Aerostat 2 commands. With 1.x's own
// unacknowledged writes (w=0) the change-over completes on every server
// and Aerostat 2 reads the new master from the hostname (the role and
// ordinal it stored are stale). With acknowledged writes (w=1) on a server
// without partial indexes (the embedded FerretDB) 1.x's second "" write is
// refused and the 1.x client dies half-way; the ledger then keeps one
// record with an empty hostname, which the test reports and the migration
// guide answers with `aerostat promote`.
func TestOnexChangeMaster(t *testing.T) {
	// w=0 runs through the embedded store's proxy, which drops FerretDB's
	// reply to an unacknowledged write (pymongo failed on the next reply,
	// "Got response id ... but expected ...", before it did).
	for _, w := range []int{0, 1} {
		t.Run(fmt.Sprintf("w=%d", w), func(t *testing.T) {
			ctx := context.Background()
			node := newNodeEnv(t, "db masterful\n")
			one := newOnex(t, node.db, w)
			for i, want := range []string{"db-master", "db-slave-1"} {
				id, ip := fmt.Sprintf("i-db%d", i), fmt.Sprintf("10.0.1.%d", i+1)
				if out, err := node.run(t, "register", "--instance-id", id, "--ip", ip); err != nil || out != want+"\n" {
					t.Fatalf("register %s = %q, %v", id, out, err)
				}
			}
			var cm struct{ Changed bool }
			err := one.run(t, &cm, "change-master", "i-db1", "db", "masterful")
			partial := ledgertest.PartialIndexes(t)
			if w == 1 && !partial {
				if err == nil {
					t.Fatal("1.x change-master with acknowledged writes ran through a plain unique index")
				}
				t.Logf("1.x change-master, acknowledged, no partial indexes: died as expected: %v", err)
				return
			}
			if err != nil || !cm.Changed {
				t.Fatalf("1.x change-master = %+v, %v", cm, err)
			}
			// 1.x's own lookups agree with Aerostat 2's reading.
			if l := one.lookup(t, "db", "i-db1", "db-master"); l.GetMaster == nil || *l.GetMaster != "i-db1" || !l.CheckMaster {
				t.Errorf("1.x lookups after change-master: %+v", l)
			}
			recs, err := ledgertest.Open(t, ledger.Options{Database: node.db, ReadOnly: true}).Records(ctx, "db")
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, r := range recs {
				got[r.Hostname] = fmt.Sprintf("%s %s %d", r.InstanceID, r.Role, r.Ordinal)
			}
			if got["db-master"] != "i-db1 master 0" || got["db-slave-1"] != "i-db0 slave 1" || len(got) != 2 {
				t.Errorf("Aerostat 2 reads after 1.x change-master: %v", got)
			}
			// Aerostat 2 goes on: a new node takes the next slave name, and
			// promote hands the master back.
			if out, err := node.run(t, "register", "--instance-id", "i-db2", "--ip", "10.0.1.3"); err != nil || out != "db-slave-2\n" {
				t.Errorf("register after 1.x change-master = %q, %v; want db-slave-2", out, err)
			}
			if out, err := node.run(t, "promote", "--instance-id", "i-db0", "--ip", "10.0.1.1"); err != nil || out != "db-master\n" {
				t.Errorf("promote after 1.x change-master = %q, %v", out, err)
			}
			if l := one.lookup(t, "db", "i-db0", "db-master"); l.GetMaster == nil || *l.GetMaster != "i-db0" {
				t.Errorf("1.x get_master after aerostat promote: %+v", l)
			}
			checkOnexFields(t, node.db)
			if n := countPrefix(one.update(t), "db-"); n != 3 {
				t.Errorf("1.x updater lists %d db names, want 3", n)
			}
		})
	}
}

// TestOnexChangeMasterRepaired: whatever 1.x's --change-master leaves (on
// a server without partial indexes, acknowledged writes: the old master's
// hostname "" and no <svc>-master, the 1.x client dead half-way), one
// `aerostat controller --standalone` pass gives a consistent ledger: every
// live instance named, a master, no document without a hostname, and 1.x's
// updater writing no line without a hostname.
func TestOnexChangeMasterRepaired(t *testing.T) {
	e := newCLIEC2(t)
	db := ledgertest.Database(t)
	e.flags = append(e.flags, "--database", db)
	one := newOnex(t, db, 1)
	node := newNodeEnv(t, "db masterful\n")
	node.flags[3] = db // --database
	ids := e.fleet.Launch(2, nil)
	for i, want := range []string{"db-master", "db-slave-1"} {
		in, _ := e.fleet.Instance(ids[i])
		if out, err := node.run(t, "register", "--instance-id", ids[i], "--ip", in.PrivateIP); err != nil || out != want+"\n" {
			t.Fatalf("register %s = %q, %v", ids[i], out, err)
		}
	}
	var cm struct{ Changed bool }
	err := one.run(t, &cm, "change-master", ids[1], "db", "masterful")
	t.Logf("1.x change-master: %+v, %v", cm, err)
	if !ledgertest.PartialIndexes(t) {
		if err == nil {
			t.Fatal("1.x change-master with acknowledged writes ran through a plain unique index")
		}
		if l := one.lookup(t, "db", ids[0], "db-master"); l.HostnameExists || l.GetHostname == nil || *l.GetHostname != "" {
			t.Fatalf("1.x left %+v; want no db-master and %s's hostname \"\"", l, ids[0])
		}
	}
	if out, err := e.run(t, "controller", "--standalone", "--once", "--hold-back", "0",
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--zap-log-level", "error"); err != nil {
		t.Fatalf("controller: %v\n%s", err, out)
	}
	l := one.lookup(t, "db", ids[0], "db-master")
	if !l.HostnameExists || l.GetMaster == nil || l.GetHostname == nil || *l.GetHostname == "" {
		t.Errorf("1.x lookups after the controller's repair: %+v", l)
	}
	hosts := one.update(t)
	for _, h := range hosts {
		if f := strings.Fields(h); len(f) != 2 {
			t.Errorf("1.x updater line %q: want `ip hostname`", h)
		}
	}
	if n := countPrefix(hosts, "db-"); n != 2 {
		t.Errorf("1.x updater lists %d db names, want 2:\n%s", n, strings.Join(hosts, "\n"))
	}
	checkOnexFields(t, db)
	docs, err := ledgertest.Open(t, ledger.Options{Database: db}).Unnamed(context.Background())
	if err != nil || len(docs) != 0 {
		t.Errorf("documents without a hostname after the repair: %+v, %v", docs, err)
	}
}
