//go:build !agentonly

package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
)

// TestRegisterFollowsControllerHoldBack: the controller stores its policy
// in the ledger; a node registering itself applies it (1.x behaviour with
// --hold-back 0: a gap is reused at once), --hold-back overrides it, and
// `get services` says which policy is in force.
func TestRegisterFollowsControllerHoldBack(t *testing.T) {
	e := newCLIEC2(t)
	db := ledgertest.Database(t)
	e.flags = append(e.flags, "--database", db)
	ids := e.fleet.Launch(2, map[string]string{controllers.TagService: "web"})
	ctl := func() {
		t.Helper()
		if out, err := e.run(t, "controller", "--standalone", "--once", "--hold-back", "0", "--metrics-bind-address", "0",
			"--health-probe-bind-address", "0", "--zap-log-level", "error"); err != nil {
			t.Fatalf("controller: %v\n%s", err, out)
		}
	}
	ctl()
	if err := e.fleet.Terminate(ids[0]); err != nil {
		t.Fatal(err)
	}
	ctl() // releases web-0
	if h := holderOf(t, db, "web-0"); h != "" {
		t.Fatalf("web-0 held by %q after its instance terminated", h)
	}

	node := newNodeEnv(t, "web\n")
	node.flags[3] = db // --database
	// An override keeps the gap from a new node...
	if out, err := node.run(t, "register", "--instance-id", "i-new1", "--ip", "10.0.9.1", "--hold-back", "1h"); err != nil || out != "web-2\n" {
		t.Fatalf("register --hold-back 1h = %q, %v; want web-2 (web-0 held back)", out, err)
	}
	// ...the controller's policy reuses it at once.
	if out, err := node.run(t, "register", "--instance-id", "i-new2", "--ip", "10.0.9.2"); err != nil || out != "web-0\n" {
		t.Fatalf("register under the controller's --hold-back 0 = %q, %v; want web-0", out, err)
	}

	out, err := runNode(t, "get", "services", "--ledger", ledgertest.URI(t), "--database", db)
	if err != nil {
		t.Fatalf("get services: %v\n%s", err, out)
	}
	if !strings.Contains(out, "HOLD-BACK") || !regexp.MustCompile(`(?m)^web\s.*\s0s\s+controller --standalone\s`).MatchString(out) {
		t.Errorf("get services does not show web's hold-back 0s set by the controller:\n%s", out)
	}
}

func holderOf(t *testing.T, db, hostname string) string {
	t.Helper()
	recs, err := ledgertest.Open(t, ledger.Options{Database: db, ReadOnly: true}).Records(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Hostname == hostname {
			return r.InstanceID
		}
	}
	return "<none>"
}
