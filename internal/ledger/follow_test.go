package ledger_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

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

// On the real store a rev taken but not committed stops the settled rev
// below it, for Changes and for a follower, while the follower's copy
// already holds the higher write; the late commit settles everything.
func TestSettledStopsAtInFlightRev(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	m := ledgertest.New(t)
	mustApply(t, m, bind("web-0", 0, "i-0", "10.0.0.1")) // rev 1
	// An overlap far longer than the test: only the change log moves the
	// settled rev.
	f := ledger.NewFollower(m, ledger.FollowerOptions{Overlap: time.Hour, ResyncEvery: 24 * time.Hour, Clock: clk})
	// The first Poll's full read is followed by a delta read of the
	// change log, which vouches for rev 1 at once.
	if _, err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if f.Settled() != 1 {
		t.Fatalf("settled = %d after rev 1, want 1", f.Settled())
	}

	held, err := m.TakeRev(ctx) // rev 2: in flight
	if err != nil || held != 2 {
		t.Fatalf("TakeRev = %d, %v; want 2", held, err)
	}
	mustApply(t, m, bind("web-1", 1, "i-1", "10.0.0.2")) // rev 3
	if recs, rev, settled, err := m.ChangesSettled(ctx, 0); err != nil || len(recs) != 2 || rev != 3 || settled != 1 {
		t.Fatalf("ChangesSettled(0) = %d records, rev %d, settled %d, %v; want 2, 3, 1", len(recs), rev, settled, err)
	}
	if _, err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Record("web-1"); !ok || f.Rev() != 3 || f.Settled() != 1 {
		t.Fatalf("follower: web-1 %v, rev %d, settled %d; want web-1, rev 3, settled 1", ok, f.Rev(), f.Settled())
	}

	if err := m.WriteWithRev(ctx, bind("web-2", 2, "i-2", "10.0.0.3"), held); err != nil {
		t.Fatal(err)
	}
	if _, _, settled, err := m.ChangesSettled(ctx, 1); err != nil || settled != 3 {
		t.Fatalf("ChangesSettled(1) settled %d, %v; want 3", settled, err)
	}
	clk.SetTime(clk.Now().Add(time.Second)) // the first re-read of an unchanged window
	if changed, err := f.Poll(ctx); err != nil || strings.Join(changed, ",") != "web-2" || f.Settled() != 3 {
		t.Fatalf("Poll after the late commit = %v, %v, settled %d; want web-2, settled 3", changed, err, f.Settled())
	}
	// Everything settled: an idle follower stops re-reading the window.
	_, deltas := f.Reads()
	for range 3 {
		clk.SetTime(clk.Now().Add(time.Minute))
		if _, err := f.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, after := f.Reads(); after != deltas {
		t.Errorf("idle settled follower made %d delta reads, want 0", after-deltas)
	}
}

// A store that cannot tell committed revs apart (no SettledStore) settles
// by the overlap rule alone.
func TestSettledByOverlapWithoutLog(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	m := ledgertest.New(t)
	mustApply(t, m, bind("web-0", 0, "i-0", "10.0.0.1"))
	mustApply(t, m, bind("web-1", 1, "i-1", "10.0.0.2"))
	f := ledger.NewFollower(plainStore{m}, ledger.FollowerOptions{Overlap: 30 * time.Second, ResyncEvery: 24 * time.Hour, Clock: clk})
	poll := func(step time.Duration) {
		t.Helper()
		clk.SetTime(clk.Now().Add(step))
		if _, err := f.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	poll(0)
	poll(time.Second)
	if f.Settled() != 0 || f.Rev() != 2 {
		t.Fatalf("settled = %d (rev %d) within the overlap, want 0 (2)", f.Settled(), f.Rev())
	}
	poll(31 * time.Second)
	if f.Settled() != 2 {
		t.Errorf("settled = %d past the overlap, want 2", f.Settled())
	}
}

// plainStore hides the ledger's SettledStore.
type plainStore struct{ ledger.Store }

// A 1.x client edits a record in place and keeps its rev (change-master
// clears the old master's hostname). A follower's first Poll must keep
// that edit: the change log still holds the write as made, and it is the
// older of the two.
func TestFollowerKeepsOnexInPlaceEdit(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	m := ledgertest.New(t)
	mustApply(t, m, bind("web-0", 0, "i-0", "10.0.0.1"), bind("web-1", 1, "i-1", "10.0.0.2"))
	if _, err := servers(m).UpdateOne(ctx, bson.D{{Key: "hostname", Value: "web-0"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "hostname", Value: ""}}}}); err != nil {
		t.Fatal(err)
	}
	f := ledger.NewFollower(m, ledger.FollowerOptions{Overlap: time.Hour, ResyncEvery: 24 * time.Hour, Clock: clk})
	for i := range 3 {
		if _, err := f.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		if r, ok := f.Record("web-0"); ok {
			t.Fatalf("poll %d: the copy holds web-0 = %+v, which 1.x cleared", i, r)
		}
		if _, ok := f.Record("web-1"); !ok {
			t.Fatalf("poll %d: web-1 missing", i)
		}
		clk.SetTime(clk.Now().Add(time.Minute))
	}
	if f.Settled() != 2 {
		t.Errorf("settled = %d, want 2 (both writes are logged)", f.Settled())
	}
}
