package ledger_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// fullReads counts the full reads that reach the store.
type fullReads struct {
	ledger.Store
	fulls int
}

func (s *fullReads) Records(ctx context.Context, service string) ([]naming.Record, error) {
	s.fulls++
	return s.Store.Records(ctx, service)
}

// A Cache reads the whole ledger once, then only deltas; a plan made on a
// copy that another writer has since overtaken loses its insert, and the
// next Records has the other writer's record.
func TestCachePlansFromDeltas(t *testing.T) {
	ctx := context.Background()
	db := ledgertest.Database(t)
	mine := ledgertest.Open(t, ledger.Options{Database: db})
	other := ledgertest.Open(t, ledger.Options{Database: db})
	mustApply(t, mine, bind("web-0", 0, "i-0", "10.0.0.1"))
	mustApply(t, mine, naming.Change{Type: naming.Bind, Hostname: "db-master", Service: "db", Scheme: naming.Masterful,
		Role: naming.RoleMaster, InstanceID: "i-9", IP: "10.0.1.1"})

	inner := &fullReads{Store: mine}
	c := ledger.NewCache(inner, ledger.FollowerOptions{})
	recs, err := c.Records(ctx, "web")
	if err != nil || len(recs) != 1 || recs[0].Hostname != "web-0" {
		t.Fatalf("Records(web) = %v, %v; want web-0 only", hostRevs(recs), err)
	}

	// Another writer takes web-1 behind the copy's back; a plan from the
	// copy that also wants web-1 loses.
	mustApply(t, other, bind("web-1", 1, "i-1", "10.0.0.2"))
	_, err = c.Apply(ctx, []naming.Change{bind("web-1", 1, "i-2", "10.0.0.3")})
	var ce *ledger.ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("insert of a name taken since the copy was read = %v, want a conflict", err)
	}
	recs, err = c.Records(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hostRevs(recs), []string{"db-master@2", "web-0@1", "web-1@3"}; !slices.Equal(got, want) {
		t.Fatalf("Records after the conflict = %v, want %v", got, want)
	}
	if recs[2].InstanceID != "i-1" {
		t.Errorf("web-1 = %+v, want the other writer's i-1", recs[2])
	}
	if inner.fulls != 1 {
		t.Errorf("the store was read whole %d times, want once (then deltas)", inner.fulls)
	}
}

// inFlight is a store whose change log the test can hide, as a reader
// sees it while a writer's records have committed and their log entries
// not yet; during runs after Apply's writes, before Apply returns.
type inFlight struct {
	ledger.Store
	hide   bool
	during func()
}

func (s *inFlight) Changes(ctx context.Context, since int64) ([]naming.Record, int64, error) {
	recs, rev, err := s.Store.Changes(ctx, since)
	if s.hide {
		recs = nil
	}
	return recs, rev, err
}

func (s *inFlight) Apply(ctx context.Context, changes []naming.Change) (int, error) {
	n, err := s.Store.Apply(ctx, changes)
	if s.during != nil {
		s.during()
	}
	return n, err
}

// A Cache's next Records holds what its own Apply wrote, even when a poll
// ran while the write was in flight (the feed's, sharing the follower): it
// saw the counter move and no log entries, and the follower's backoff
// would skip that window, so the controller's next pass planned the same
// binds again and lost them ("record already exists").
func TestCacheSeesItsOwnWrites(t *testing.T) {
	ctx := context.Background()
	m := ledgertest.Open(t, ledger.Options{Database: ledgertest.Database(t)})
	mustApply(t, m, bind("web-0", 0, "i-0", "10.0.0.1"))
	st := &inFlight{Store: m}
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC))
	c := ledger.NewCache(st, ledger.FollowerOptions{Clock: clk, ResyncEvery: time.Hour})
	if _, err := c.Records(ctx, ""); err != nil {
		t.Fatal(err)
	}
	st.during = func() {
		st.hide = true
		recs, err := c.Records(ctx, "") // the concurrent poll
		st.hide = false
		if err != nil || len(recs) != 1 {
			t.Errorf("poll during the write = %v, %v; want web-0 alone (the log hidden)", hostRevs(recs), err)
		}
	}
	if _, err := c.Apply(ctx, []naming.Change{bind("web-1", 1, "i-1", "10.0.0.2"), bind("web-2", 2, "i-2", "10.0.0.3")}); err != nil {
		t.Fatal(err)
	}
	st.during = nil
	recs, err := c.Records(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hostRevs(recs), []string{"web-0@1", "web-1@2", "web-2@3"}; !slices.Equal(got, want) {
		t.Fatalf("Records after its own Apply = %v, want %v", got, want)
	}
}
