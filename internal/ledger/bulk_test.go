package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
)

func newBinds(from, n int) []naming.Change {
	out := make([]naming.Change, n)
	for i := range out {
		k := from + i
		out[i] = bind(fmt.Sprintf("web-%d", k), k, fmt.Sprintf("i-%d", k), fmt.Sprintf("10.0.%d.%d", k/250, k%250+1))
	}
	return out
}

// A plan naming a fleet from nothing is written in ordered batches, one
// counter increment a batch: every record lands with its own rev, 1.x's
// fields and the change log entry deltas read.
func TestApplyManyNewNames(t *testing.T) {
	ctx := context.Background()
	m := ledgertest.New(t)
	const n = 2500 // three batches
	if got, err := m.Apply(ctx, newBinds(0, n)); err != nil || got != n {
		t.Fatalf("Apply(%d new names) = %d, %v", n, got, err)
	}
	recs, err := m.Records(ctx, "web")
	if err != nil || len(recs) != n {
		t.Fatalf("Records = %d, %v; want %d", len(recs), err, n)
	}
	revs := map[int64]bool{}
	for _, r := range recs {
		if r.Rev < 1 || r.Rev > n || revs[r.Rev] {
			t.Fatalf("record %s has rev %d: want distinct revs 1..%d", r.Hostname, r.Rev, n)
		}
		revs[r.Rev] = true
	}
	if rev, err := m.Rev(ctx); err != nil || rev != n {
		t.Errorf("Rev = %d, %v; want %d", rev, err, n)
	}
	var raw bson.M
	if err := servers(m).FindOne(ctx, bson.D{{Key: "hostname", Value: "web-1234"}}).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"hostname", "ip", "service", "service_type", "instance_id", "aliases"} {
		if _, ok := raw[f]; !ok {
			t.Errorf("web-1234 lacks 1.x field %q: %v", f, raw)
		}
	}
	delta, _, err := m.Changes(ctx, n-10)
	if err != nil || len(delta) != 10 {
		t.Errorf("Changes(%d) = %v, %v; want the last 10 from the log", n-10, hostRevs(delta), err)
	}
}

// A name taken since the plan stops the batch there: the names before it
// are committed, it is a lost compare-and-set, the ones after it are not
// written.
func TestApplyManyNewNamesStopsAtATakenName(t *testing.T) {
	ctx := context.Background()
	m := ledgertest.New(t)
	// A 1.x client took web-1550 (no rev, no 2.x fields).
	if _, err := servers(m).InsertOne(ctx, bson.M{"hostname": "web-1550", "service": "web", "service_type": "iterative",
		"instance_id": "i-x", "ip": "10.9.9.9", "aliases": nil}); err != nil {
		t.Fatal(err)
	}
	got, err := m.Apply(ctx, newBinds(0, 2000))
	var ce *ledger.ConflictError
	if got != 1550 || !errors.As(err, &ce) || !errors.Is(err, ledger.ErrConflict) || ce.Hostname != "web-1550" {
		t.Fatalf("Apply = %d, %v; want 1550 applied and a conflict on web-1550", got, err)
	}
	recs, err := m.Records(ctx, "web")
	if err != nil || len(recs) != 1551 {
		t.Fatalf("Records = %d, %v; want 1,550 new and the 1.x one", len(recs), err)
	}
	for _, r := range recs {
		if r.Ordinal > 1550 {
			t.Errorf("%s written after the conflict", r.Hostname)
		}
		if r.Hostname == "web-1550" && r.InstanceID != "i-x" {
			t.Errorf("web-1550 = %+v, want the 1.x holder kept", r)
		}
	}
}

// A Cache whose plans keep losing to a write no delta shows (a 1.x client
// writes no change log) re-reads the whole ledger after a few losses, so
// a claim through it converges instead of giving up.
func TestCacheRereadsAfterLostWritesNoDeltaExplains(t *testing.T) {
	ctx := context.Background()
	m := ledgertest.New(t)
	mustApply(t, m, bind("web-0", 0, "i-0", "10.0.0.1"))
	c := ledger.NewCache(m, ledger.FollowerOptions{})
	if _, err := c.Records(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := servers(m).InsertOne(ctx, bson.M{"hostname": "web-1", "service": "web", "service_type": "iterative",
		"instance_id": "i-1x", "ip": "10.0.0.9", "aliases": bson.A{}}); err != nil {
		t.Fatal(err)
	}
	plan := func(recs []naming.Record) (naming.Result, error) {
		return naming.Plan(naming.Input{
			Policy:  naming.Policy{Service: "web", Scheme: naming.Iterative},
			Records: recs,
			Observed: naming.Observation{Instances: []naming.Instance{
				{ID: "i-0", PrivateIP: "10.0.0.1", State: naming.StateRunning},
				{ID: "i-2", PrivateIP: "10.0.0.3", State: naming.StateRunning},
			}},
		})
	}
	res, err := ledger.Claim(ctx, c, "web", plan)
	if err != nil {
		t.Fatalf("Claim through a Cache that missed a 1.x write: %v", err)
	}
	var host string
	for _, ch := range res.Changes {
		if ch.Type == naming.Bind && ch.InstanceID == "i-2" {
			host = ch.Hostname
		}
	}
	if host != "web-2" {
		t.Errorf("i-2 bound as %q, want web-2 (web-1 is the 1.x client's)", host)
	}
}
