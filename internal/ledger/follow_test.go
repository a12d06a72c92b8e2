package ledger_test

import (
	"context"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// Two writers commit out of order: A takes rev 2, B takes rev 3 and
// commits first, then A commits. A reader that moves its cursor to the
// highest rev it saw (3) never sees A's write; the Follower, re-reading
// everything above the counter it saw Overlap before its previous poll,
// does, however far apart its polls are.
func TestOutOfOrderCommits(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	m := ledgertest.New(t)
	mustApply(t, m, bind("web-0", 0, "i-0", "10.0.0.1")) // rev 1

	f := ledger.NewFollower(m, ledger.FollowerOptions{Overlap: 30 * time.Second, Resync: 24 * time.Hour, Clock: clk})
	if recs, changed, err := f.Poll(ctx); err != nil || !changed || len(recs) != 1 {
		t.Fatalf("first Poll = %+v, %v, %v", recs, changed, err)
	}

	revA, err := m.TakeRev(ctx) // writer A: rev taken, not yet committed
	if err != nil || revA != 2 {
		t.Fatalf("writer A rev = %d, %v; want 2", revA, err)
	}
	mustApply(t, m, bind("web-1", 1, "i-1", "10.0.0.2")) // writer B: rev 3, committed

	naive, cursor, err := m.Changes(ctx, 1)
	if err != nil || len(naive) != 1 || cursor != 3 {
		t.Fatalf("naive reader: Changes(1) = %+v, rev %d, %v; want web-1 and rev 3", naive, cursor, err)
	}
	clk.SetTime(clk.Now().Add(5 * time.Second))
	if recs, changed, err := f.Poll(ctx); err != nil || !changed || len(recs) != 2 {
		t.Fatalf("Poll after B = %+v, %v, %v; want web-0 and web-1", recs, changed, err)
	}

	// Writer A commits with its older rev.
	moveIP := naming.Change{Type: naming.SetIP, Hostname: "web-0", IP: "10.0.0.99",
		ExpectExists: true, ExpectInstanceID: "i-0", ExpectRev: 1}
	if err := m.WriteWithRev(ctx, moveIP, revA); err != nil {
		t.Fatalf("writer A commit: %v", err)
	}

	// The trap: the naive reader's next delta is empty, forever.
	if missed, _, err := m.Changes(ctx, cursor); err != nil || len(missed) != 0 {
		t.Fatalf("Changes(%d) = %+v, %v; expected the naive reader to miss writer A", cursor, missed, err)
	}

	for _, step := range []time.Duration{time.Hour - time.Second, 40 * time.Second, 5 * time.Second} {
		clk.SetTime(clk.Now().Add(step))
		recs, _, err := f.Poll(ctx)
		if err != nil {
			t.Fatalf("Poll: %v", err)
		}
		if recs[0].Hostname != "web-0" || recs[0].IP != "10.0.0.99" || recs[0].Rev != 2 {
			t.Errorf("after %v the follower has web-0 = %+v; want writer A's ip at rev 2", step, recs[0])
		}
	}
}

// Writers slower than Overlap, and 1.x clients (no rev), are caught by the
// periodic full read.
func TestFollowerResyncCatchesRevlessWrites(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	m := ledgertest.New(t)
	mustApply(t, m, bind("web-0", 0, "i-0", "10.0.0.1"))
	f := ledger.NewFollower(m, ledger.FollowerOptions{Overlap: time.Second, Resync: time.Minute, Clock: clk})
	if _, _, err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	// A 1.x client adds a record without a rev.
	if _, err := servers(m).InsertOne(ctx, map[string]any{"hostname": "web-1", "service": "web",
		"service_type": "iterative", "instance_id": "i-1", "ip": "10.0.0.2", "aliases": []string{}}); err != nil {
		t.Fatal(err)
	}
	clk.SetTime(clk.Now().Add(2 * time.Second))
	if recs, changed, err := f.Poll(ctx); err != nil || changed || len(recs) != 1 {
		t.Fatalf("delta Poll = %d records, changed %v, %v; deltas cannot see rev-less writes", len(recs), changed, err)
	}
	clk.SetTime(clk.Now().Add(time.Minute))
	if recs, changed, err := f.Poll(ctx); err != nil || !changed || len(recs) != 2 {
		t.Fatalf("resync Poll = %d records, changed %v, %v; want both", len(recs), changed, err)
	}
}

func TestFollowerKeepsCopyOnError(t *testing.T) {
	ctx := context.Background()
	m := ledgertest.New(t)
	mustApply(t, m, bind("web-0", 0, "i-0", "10.0.0.1"))
	f := ledger.NewFollower(m, ledger.FollowerOptions{})
	if _, _, err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if recs, _, err := f.Poll(cctx); err == nil || recs != nil {
		t.Fatalf("Poll with a dead context = %v, %v; want an error", recs, err)
	}
	if recs, changed, err := f.Poll(ctx); err != nil || changed || len(recs) != 1 {
		t.Fatalf("Poll after the error = %+v, %v, %v; want the unchanged copy", recs, changed, err)
	}
}
