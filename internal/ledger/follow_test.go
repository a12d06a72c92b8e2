package ledger_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// Two writers commit out of order on the real store: A takes rev N, B takes
// N+1 and commits first, then A commits. A reader that moves its cursor to
// the highest rev it saw never sees A's write; the Follower, re-reading the
// revs above the mark it observed Overlap ago, does, by deltas alone.
func TestOutOfOrderCommits(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	m := ledgertest.New(t)
	mustApply(t, m, bind("web-0", 0, "i-0", "10.0.0.1")) // rev 1

	f := ledger.NewFollower(m, ledger.FollowerOptions{Overlap: 30 * time.Second, ResyncEvery: 24 * time.Hour, Clock: clk})
	if changed, err := f.Poll(ctx); err != nil || len(changed) != 1 {
		t.Fatalf("first Poll = %v, %v", changed, err)
	}
	clk.SetTime(clk.Now().Add(31 * time.Second)) // past the follow-up window
	if _, err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	fullsBefore, _ := f.Reads()

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
	if changed, err := f.Poll(ctx); err != nil || strings.Join(changed, ",") != "web-1" {
		t.Fatalf("Poll after B = %v, %v; want web-1", changed, err)
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

	for _, step := range []time.Duration{time.Second, 40 * time.Second, 5 * time.Second} {
		clk.SetTime(clk.Now().Add(step))
		if _, err := f.Poll(ctx); err != nil {
			t.Fatalf("Poll: %v", err)
		}
	}
	if r, ok := f.Record("web-0"); !ok || r.IP != "10.0.0.99" || r.Rev != 2 {
		t.Errorf("the follower has web-0 = %+v; want writer A's ip at rev 2", r)
	}
	if fulls, _ := f.Reads(); fulls != fullsBefore {
		t.Errorf("writer A found by a full read (%d -> %d), want by deltas", fullsBefore, fulls)
	}
}

// Writers slower than Overlap, and 1.x clients (no rev), are caught by the
// periodic full read.
func TestFollowerResyncCatchesRevlessWrites(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	m := ledgertest.New(t)
	mustApply(t, m, bind("web-0", 0, "i-0", "10.0.0.1"))
	f := ledger.NewFollower(m, ledger.FollowerOptions{Overlap: time.Second, ResyncEvery: time.Minute, Clock: clk})
	for range 2 { // the first full read and a delta
		if _, err := f.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		clk.SetTime(clk.Now().Add(2 * time.Second))
	}
	// A 1.x client adds a record without a rev.
	if _, err := servers(m).InsertOne(ctx, map[string]any{"hostname": "web-1", "service": "web",
		"service_type": "iterative", "instance_id": "i-1", "ip": "10.0.0.2", "aliases": []string{}}); err != nil {
		t.Fatal(err)
	}
	if changed, err := f.Poll(ctx); err != nil || len(changed) != 0 || len(f.Records()) != 1 {
		t.Fatalf("delta Poll = changed %v, %d records, %v; deltas cannot see rev-less writes", changed, len(f.Records()), err)
	}
	clk.SetTime(clk.Now().Add(time.Minute))
	if changed, err := f.Poll(ctx); err != nil || strings.Join(changed, ",") != "web-1" || len(f.Records()) != 2 {
		t.Fatalf("resync Poll = changed %v, %d records, %v; want web-1 added", changed, len(f.Records()), err)
	}
}

func TestFollowerKeepsCopyOnError(t *testing.T) {
	ctx := context.Background()
	m := ledgertest.New(t)
	mustApply(t, m, bind("web-0", 0, "i-0", "10.0.0.1"))
	f := ledger.NewFollower(m, ledger.FollowerOptions{})
	if _, err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if changed, err := f.Poll(cctx); err == nil || changed != nil {
		t.Fatalf("Poll with a dead context = %v, %v; want an error", changed, err)
	}
	if changed, err := f.Poll(ctx); err != nil || len(changed) != 0 || len(f.Records()) != 1 {
		t.Fatalf("Poll after the error = %v, %v, %d records; want the unchanged copy", changed, err, len(f.Records()))
	}
}

// A write that took its rev before the follower's first full read and
// commits after it is found by the deltas of the following Overlap, from
// the change log: the start costs one full read, not two.
func TestFollowerFirstReadCoversWritesInFlight(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	m := ledgertest.New(t)
	mustApply(t, m, bind("web-0", 0, "i-0", "10.0.0.1"))
	held, err := m.TakeRev(ctx) // writer A stalls holding rev 2
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, m, bind("web-2", 2, "i-2", "10.0.0.3")) // rev 3 commits
	inner := &fullReads{Store: m}
	f := ledger.NewFollower(inner, ledger.FollowerOptions{Overlap: 10 * time.Second, Clock: clk})
	if _, err := f.Poll(ctx); err != nil || len(f.Records()) != 2 {
		t.Fatalf("first Poll = %d records, %v; want web-0 and web-2", len(f.Records()), err)
	}
	if err := m.WriteWithRev(ctx, bind("web-1", 1, "i-1", "10.0.0.2"), held); err != nil {
		t.Fatal(err)
	}
	var found bool
	for range 10 { // each step is past the follower's recheck backoff
		clk.SetTime(clk.Now().Add(time.Second))
		changed, err := f.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(changed, "web-1") {
			found = true
			break
		}
	}
	if !found {
		t.Fatalf("web-1 (rev %d, committed after the first read) not found within the overlap; records %v", held, hostRevs(f.Records()))
	}
	if inner.fulls != 1 {
		t.Errorf("%d full reads, want 1 (the late commit found by a delta)", inner.fulls)
	}
}
