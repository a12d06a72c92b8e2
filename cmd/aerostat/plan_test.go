//go:build !agentonly

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"k8s.io/utils/clock"

	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/cloud/fake"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// cliFleet is a fake EC2 fleet behind the wire-level fake server, a fresh
// ledger database and the command-line flags that reach both.
type cliFleet struct {
	fleet *fake.Fleet
	ec2   *cloud.EC2
	store *ledger.Mongo
	sa    *controllers.Standalone // a real standalone controller on the same fleet and ledger
	flags []string
}

func newCLIFleet(t *testing.T) *cliFleet {
	t.Helper()
	e := newCLIEC2(t)
	e.open(t, ledgertest.Database(t))
	return e
}

// newCLIEC2 starts the fleet and EC2 server only; open adds the ledger
// (after the test seeded its database, for 1.x data).
func newCLIEC2(t *testing.T) *cliFleet {
	t.Helper()
	// The command builds its EC2 client from the environment, as in
	// production; these keep it off any real account and metadata.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	fleet := fake.NewFleet(clock.RealClock{})
	srv := httptest.NewServer(fake.NewServer(fleet))
	t.Cleanup(srv.Close)
	ec2, err := cloud.NewEC2(context.Background(), cloud.EC2Options{Region: "us-east-1", Endpoint: srv.URL,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")})
	if err != nil {
		t.Fatal(err)
	}
	return &cliFleet{fleet: fleet, ec2: ec2, flags: []string{"--ledger", ledgertest.URI(t), "--ec2-endpoint", srv.URL, "--region", "us-east-1"}}
}

func (e *cliFleet) open(t *testing.T, db string) {
	t.Helper()
	e.store = ledgertest.Open(t, ledger.Options{Database: db})
	syncer := controllers.NewSyncer(controllers.SyncerOptions{Cloud: e.ec2, Store: e.store})
	e.sa = controllers.NewStandalone(controllers.StandaloneOptions{Syncer: syncer, Cloud: e.ec2, Store: e.store})
	e.flags = append(e.flags, "--database", db)
}

func (e *cliFleet) run(t *testing.T, cmd string, args ...string) (string, error) {
	t.Helper()
	return runNode(t, append(append([]string{cmd}, e.flags...), args...)...)
}

// plan runs `aerostat plan -o json` and checks its exit status.
func (e *cliFleet) plan(t *testing.T, wantPending bool) controllers.PlanReport {
	t.Helper()
	out, err := e.run(t, "plan", "-o", "json")
	if got := err != nil && exitCode(err) == exitPending; got != wantPending || err != nil && !got {
		t.Fatalf("plan: err %v (exit %d), want pending=%v\n%s", err, exitCode(err), wantPending, out)
	}
	var rep controllers.PlanReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("plan -o json: %v\n%s", err, out)
	}
	return rep
}

func (e *cliFleet) pass(t *testing.T) {
	t.Helper()
	if _, err := e.sa.Pass(context.Background()); err != nil {
		t.Fatalf("controller pass: %v", err)
	}
}

func actions(rep controllers.PlanReport) string {
	var s []string
	for _, c := range rep.Changes {
		s = append(s, c.Action+" "+c.Name)
	}
	for _, h := range rep.Held {
		s = append(s, "hold "+h.Name)
	}
	return strings.Join(s, ", ")
}

func TestPlanCommand(t *testing.T) {
	e := newCLIFleet(t)
	web := e.fleet.Launch(3, map[string]string{controllers.TagService: "web"})
	e.fleet.Launch(2, map[string]string{controllers.TagService: "db", controllers.TagServiceType: "masterful"})

	rep := e.plan(t, true)
	if got := actions(rep); got != "bind db-master, bind db-slave-1, bind web-0, bind web-1, bind web-2" || rep.Pending != 5 {
		t.Errorf("fresh fleet: %q (pending %d)", got, rep.Pending)
	}
	for _, c := range rep.Changes {
		if c.Cause != naming.CauseNewInstance {
			t.Errorf("%s %s: cause %q, want %q", c.Action, c.Name, c.Cause, naming.CauseNewInstance)
		}
	}
	if rev, _ := e.store.Rev(context.Background()); rev != 0 {
		t.Errorf("plan wrote to the ledger: rev %d", rev)
	}

	// After the controller's pass the plan is empty: exit 0.
	e.pass(t)
	if rep := e.plan(t, false); rep.Pending != 0 || len(rep.Held) != 0 {
		t.Errorf("after a pass: %+v", rep)
	}
	out, err := e.run(t, "plan")
	if err != nil || !strings.Contains(out, "No changes") {
		t.Errorf("plan table after a pass: %v\n%s", err, out)
	}

	// A terminated web node: its name is released and then held back; a
	// stopped one keeps its name.
	if err := e.fleet.Terminate(web[1]); err != nil {
		t.Fatal(err)
	}
	if err := e.fleet.Stop(web[2]); err != nil {
		t.Fatal(err)
	}
	rep = e.plan(t, true)
	if got := actions(rep); got != "release web-1, hold web-1, hold web-2" {
		t.Errorf("after terminate and stop: %q", got)
	}
	if c := rep.Changes[0]; c.Cause != naming.CauseReleased || c.Freed != naming.FreedGone {
		t.Errorf("release of web-1: cause %q, freed %q; want %q, %q", c.Cause, c.Freed, naming.CauseReleased, naming.FreedGone)
	}
	if h := rep.Held; h[0].Cause != naming.HoldReleased || h[1].Cause != naming.HoldStopped {
		t.Errorf("holds %+v: want web-1 released, web-2 stopped", h)
	}
	e.pass(t)
	e.fleet.Launch(1, map[string]string{controllers.TagService: "web"})
	rep = e.plan(t, true)
	if got := actions(rep); got != "bind web-3, hold web-1, hold web-2" {
		t.Errorf("new node while web-1 is held: %q", got)
	}
	if h := rep.Held[0]; h.Instance != web[1] || h.Cause != naming.HoldReleased || h.Until.IsZero() {
		t.Errorf("hold of web-1 = %+v", h)
	}

	// The table names the action, the move and the hold; --hold-back 0
	// gives web-1 to the new node at once.
	out, err = e.run(t, "plan", "--hold-back", "0")
	if exitCode(err) != exitPending || !strings.Contains(out, "bind") || !strings.Contains(out, "web-1") || strings.Contains(out, "released from") {
		t.Errorf("plan --hold-back 0: %v\n%s", err, out)
	}
	out, _ = e.run(t, "plan")
	for _, want := range []string{"SERVICE", "ACTION", "hold", "web-3", "until", "Plan: 1 change (1 bind), 0 deferred, 2 held."} {
		if !strings.Contains(out, want) {
			t.Errorf("plan table lacks %q:\n%s", want, out)
		}
	}
	recs, _ := e.store.Records(context.Background(), "web")
	for _, r := range recs {
		if r.Hostname == "web-3" {
			t.Error("plan wrote web-3")
		}
	}

	// Bad input names the flag; nothing runs.
	if _, err := e.run(t, "plan", "-o", "wide"); err == nil || !strings.Contains(err.Error(), "--output") {
		t.Errorf("plan -o wide: %v", err)
	}
	if _, err := e.run(t, "plan", "--hold-back", "-1s"); err == nil || !strings.Contains(err.Error(), "--hold-back") {
		t.Errorf("plan --hold-back -1s: %v", err)
	}
}

func TestWritePlanEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := writePlan(&buf, controllers.PlanReport{}, "", time.Now()); err != nil || !strings.Contains(buf.String(), "No changes") {
		t.Errorf("empty plan: %v %q", err, buf.String())
	}
}
