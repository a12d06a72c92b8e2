package ledger_test

import (
	"context"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/feed/feedtest"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

var followT0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

func hostnames(recs []naming.Record, boundOnly bool) string {
	var out []string
	for _, r := range recs {
		if boundOnly && r.Free() {
			continue
		}
		out = append(out, r.Hostname)
	}
	return strings.Join(out, ",")
}

// Two writers take revs 2 and 3; 3 commits first and the reader sees it;
// then 2 commits. The reader must still pick 2 up, by deltas alone.
func TestFollowerOutOfOrderCommits(t *testing.T) {
	ctx := context.Background()
	fc := clocktesting.NewFakeClock(followT0)
	st := feedtest.New()
	st.Bind("web-0", "web", "i-0", "10.0.0.1")
	f := ledger.NewFollower(st, ledger.FollowerOptions{Clock: fc, Overlap: 10 * time.Second, ResyncEvery: time.Hour})
	if _, err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	// Move past the follow-up window.
	fc.Step(11 * time.Second)
	if _, err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	fullsBefore, _ := f.Reads()

	revA := st.TakeRev() // writer A stalls
	revB := st.TakeRev()
	st.Commit(naming.Record{Hostname: "web-2", Service: "web", InstanceID: "i-2", IP: "10.0.0.3"}, revB)
	fc.Step(time.Second)
	if _, err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := hostnames(f.Records(), true); got != "web-0,web-2" {
		t.Fatalf("after B: %s", got)
	}
	fc.Step(time.Second)
	st.Commit(naming.Record{Hostname: "web-1", Service: "web", InstanceID: "i-1", IP: "10.0.0.2"}, revA)
	for range 3 {
		fc.Step(time.Second)
		if _, err := f.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := hostnames(f.Records(), true); got != "web-0,web-1,web-2" {
		t.Fatalf("reader missed the late commit: %s", got)
	}
	if fulls, _ := f.Reads(); fulls != fullsBefore {
		t.Errorf("late commit found by a full read (%d→%d), want by deltas", fullsBefore, fulls)
	}
	// Once the overlap has passed, polls with nothing new read only Rev.
	fc.Step(20 * time.Second)
	if _, err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	changes := st.Calls("Changes")
	for range 5 {
		fc.Step(time.Second)
		if _, err := f.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if st.Calls("Changes") != changes {
		t.Errorf("idle polls fetched changes %d times", st.Calls("Changes")-changes)
	}
}

// After one change and nothing else, the overlap window is re-read with a
// backoff instead of on every poll (each read scans the collection on the
// embedded store), and the read that closes the window still catches a
// write that took its rev before the change and committed just before the
// window closed.
func TestFollowerIdleAfterChangeBacksOff(t *testing.T) {
	ctx := context.Background()
	fc := clocktesting.NewFakeClock(followT0)
	st := feedtest.New()
	st.Bind("web-0", "web", "i-0", "10.0.0.1")
	const overlap = 30 * time.Second
	f := ledger.NewFollower(st, ledger.FollowerOptions{Clock: fc, Overlap: overlap, ResyncEvery: time.Hour})
	poll := func() {
		t.Helper()
		fc.Step(time.Second)
		if _, err := f.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for range 31 { // past the follow-up window
		poll()
	}
	fullsBefore, _ := f.Reads()

	slow := st.TakeRev() // a writer that holds its rev for most of the window
	st.Bind("web-2", "web", "i-2", "10.0.0.3")
	changesBefore := st.Calls("Changes")
	poll() // sees the change
	for range 28 {
		poll()
	}
	if got := hostnames(f.Records(), true); got != "web-0,web-2" {
		t.Fatalf("records before the slow commit = %s", got)
	}
	st.Commit(naming.Record{Hostname: "web-1", Service: "web", InstanceID: "i-1", IP: "10.0.0.2"}, slow)
	for range 30 {
		poll()
	}
	if got := hostnames(f.Records(), true); got != "web-0,web-1,web-2" {
		t.Errorf("records = %s, want the slow commit picked up by deltas", got)
	}
	if fulls, _ := f.Reads(); fulls != fullsBefore {
		t.Errorf("%d full reads, want the slow commit found by a delta read", fulls-fullsBefore)
	}
	// The change, then 1s, 2s, 4s, 8s and 16s later, then the read that
	// closes the window: 6 reads in 59 polls, not one a poll for 30 s.
	if n := st.Calls("Changes") - changesBefore; n != 6 {
		t.Errorf("%d delta reads over %d idle seconds after one change, want 6", n, 59)
	}
}

// A write in flight during the very first full read is picked up.
func TestFollowerInFlightAtStartup(t *testing.T) {
	ctx := context.Background()
	fc := clocktesting.NewFakeClock(followT0)
	st := feedtest.New()
	stalled := st.TakeRev()
	st.Bind("web-1", "web", "i-1", "10.0.0.2")
	f := ledger.NewFollower(st, ledger.FollowerOptions{Clock: fc, Overlap: 10 * time.Second, ResyncEvery: time.Hour})
	if _, err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	st.Commit(naming.Record{Hostname: "web-0", Service: "web", InstanceID: "i-0", IP: "10.0.0.1"}, stalled)
	for range 12 {
		fc.Step(time.Second)
		if _, err := f.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := hostnames(f.Records(), true); got != "web-0,web-1" {
		t.Fatalf("records = %s", got)
	}
}

func TestFollowerErrorsKeepState(t *testing.T) {
	ctx := context.Background()
	fc := clocktesting.NewFakeClock(followT0)
	st := feedtest.New()
	st.Bind("web-0", "web", "i-0", "10.0.0.1")
	f := ledger.NewFollower(st, ledger.FollowerOptions{Clock: fc})
	if _, err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	st.SetDown(true)
	fc.Step(time.Hour) // due for a full read, which fails
	if _, err := f.Poll(ctx); err == nil {
		t.Fatal("Poll succeeded with the store down")
	}
	if got := hostnames(f.Records(), true); got != "web-0" {
		t.Errorf("records after error = %q", got)
	}
	st.SetDown(false)
	st.Delete("web-0") // only a full read can see a deleted document
	changed, err := f.Poll(ctx)
	if err != nil || len(changed) != 1 || len(f.Records()) != 0 {
		t.Errorf("after recovery: changed=%v err=%v records=%v", changed, err, f.Records())
	}
}
