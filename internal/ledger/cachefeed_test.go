package ledger_test

import (
	"context"
	"slices"
	"testing"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// TestCacheFeedSeesEveryChange: the feed's view of a Cache's copy returns
// each change once, whether the feed's poll read it or a plan's Records
// did, and the store is read whole once for both readers.
func TestCacheFeedSeesEveryChange(t *testing.T) {
	ctx := context.Background()
	db := ledgertest.Database(t)
	mine := ledgertest.Open(t, ledger.Options{Database: db})
	other := ledgertest.Open(t, ledger.Options{Database: db})
	mustApply(t, mine, bind("web-0", 0, "i-0", "10.0.0.1"), bind("web-1", 1, "i-1", "10.0.0.2"))

	inner := &fullReads{Store: mine}
	c := ledger.NewCache(inner, ledger.FollowerOptions{})
	if _, err := c.Records(ctx, ""); err != nil { // the controller's first pass
		t.Fatal(err)
	}
	feed := c.Feed()
	if c.Feed() != feed {
		t.Fatal("a second Feed is another view")
	}
	poll := func(want ...string) {
		t.Helper()
		got, err := feed.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("feed Poll = %v, want %v", got, want)
		}
	}
	poll("web-0", "web-1") // attached after the copy was read: all of it is new
	poll()

	// A plan's Records reads this change first; the feed still gets it.
	mustApply(t, other, bind("web-2", 2, "i-2", "10.0.0.3"))
	if recs, err := c.Records(ctx, "web"); err != nil || len(recs) != 3 {
		t.Fatalf("Records = %v, %v; want 3", hostRevs(recs), err)
	}
	rev, err := mine.Rev(ctx)
	if err != nil {
		t.Fatal(err)
	}
	poll("web-2")
	if r, ok := feed.Record("web-2"); !ok || r.IP != "10.0.0.3" || r.InstanceID != "i-2" {
		t.Errorf("Record(web-2) = %+v, %v", r, ok)
	}
	if feed.Rev() != rev {
		t.Errorf("feed Rev = %d, want %d", feed.Rev(), rev)
	}

	// A release the feed's own poll reads, then a change after it that a
	// plan reads: Record answers as of the feed's poll.
	web1, _ := feed.Record("web-1")
	mustApply(t, other, naming.Change{Type: naming.Release, Hostname: "web-1", ExpectExists: true, ExpectInstanceID: "i-1", ExpectRev: web1.Rev})
	poll("web-1")
	rebind := bind("web-1", 1, "i-7", "10.0.0.7")
	rebind.ExpectExists, rebind.ExpectRev = true, rev+1 // the release's
	mustApply(t, other, rebind)
	if _, err := c.Records(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if r, ok := feed.Record("web-1"); !ok || !r.Free() {
		t.Errorf("Record(web-1) before the feed's next poll = %+v, %v; want the released record it polled", r, ok)
	}
	poll("web-1")
	if r, _ := feed.Record("web-1"); r.InstanceID != "i-7" {
		t.Errorf("Record(web-1) = %+v, want i-7", r)
	}
	if inner.fulls != 1 {
		t.Errorf("the store was read whole %d times for both readers, want once", inner.fulls)
	}
}
