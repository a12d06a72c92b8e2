//go:build !agentonly

package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aerostat-io/aerostat/client"
	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
)

// TestPendingInstancesShown: instances tagged for a service that hold no
// record (here 1.x registrars that lost the read-then-insert race: one
// record for three booted nodes) are listed by `get names --pending` as
// state pending with NAME <pending>, and by `plan` as unnamed with the
// name the next pass gives them; without --pending, get lists names only.
func TestPendingInstancesShown(t *testing.T) {
	e := newCLIEC2(t)
	db := ledgertest.Database(t)
	e.open(t, db)
	ids := e.fleet.Launch(3, map[string]string{controllers.TagService: "web"})
	in0, _ := e.fleet.Instance(ids[0])
	one := newOnex(t, db, 1)
	if got := one.register(t, ids[0], in0.PrivateIP, "web"); got != "web-0" {
		t.Fatalf("1.x register = %q", got)
	}
	get := func(args ...string) []client.Name {
		t.Helper()
		out, err := e.run(t, "get", append([]string{"names", "-o", "json"}, args...)...)
		if err != nil {
			t.Fatalf("get names %v: %v\n%s", args, err, out)
		}
		var names []client.Name
		if err := json.Unmarshal([]byte(out), &names); err != nil {
			t.Fatalf("get names %v: %v\n%s", args, err, out)
		}
		return names
	}
	if names := get(); len(names) != 1 {
		t.Errorf("get names without --pending: %+v, want web-0 only", names)
	}
	pending := get("--pending", "-l", "state=pending")
	if len(pending) != 2 || pending[0].InstanceID != ids[1] || pending[1].InstanceID != ids[2] || pending[0].Hostname != "" || pending[0].Service != "web" {
		t.Errorf("get names --pending -l state=pending: %+v, want %s and %s", pending, ids[1], ids[2])
	}
	out, err := e.run(t, "get", "names", "--pending")
	if err != nil || strings.Count(out, "<pending>") != 2 || !strings.Contains(out, "web-0") {
		t.Errorf("get names --pending table: %v\n%s", err, out)
	}
	rep := e.plan(t, true)
	next := map[string]string{}
	for _, u := range rep.Unnamed {
		next[u.Instance] = u.Next
	}
	if len(next) != 2 || next[ids[1]] != "web-1" || next[ids[2]] != "web-2" {
		t.Errorf("plan unnamed: %+v, want %s -> web-1, %s -> web-2", rep.Unnamed, ids[1], ids[2])
	}
	out, _ = e.run(t, "plan")
	if strings.Count(out, "unnamed") != 2 {
		t.Errorf("plan table lacks the unnamed rows:\n%s", out)
	}
	e.pass(t)
	if p := get("--pending", "-l", "state=pending"); len(p) != 0 {
		t.Errorf("pending after a controller pass: %+v", p)
	}
}
