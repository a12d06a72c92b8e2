package ledger_test

import (
	"context"
	"errors"
	"slices"
	"testing"

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
