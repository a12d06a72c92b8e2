package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// sliceOnly hides a store's RecordWalker: a Follower over it reads whole
// ledgers through Records, as it does over stores that cannot walk.
type sliceOnly struct{ ledger.Store }

// walkDocs are more documents than one chunk of a walked read, with the
// duplicates 1.x races leave: a gap and a bound copy (the bound one is
// kept), two bound copies at different revs (the higher rev, though first
// in Records order), two at the same rev (the last in Records order, by
// instance id).
func walkDocs() []any {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	var docs []any
	for i := range ledger.RecordChunk + 10 {
		docs = append(docs, bson.M{"_id": bson.NewObjectID(), "hostname": fmt.Sprintf("web-%d", i), "service": "web",
			"service_type": "iterative", "ordinal": int64(i), "instance_id": fmt.Sprintf("i-%d", i),
			"ip": fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), "aliases": bson.A{fmt.Sprintf("w%d.internal", i)},
			"rev": int64(i + 1), "updated_at": now, "claimed_at": now})
	}
	dup := func(host, svc, id string, rev int64) bson.M {
		return bson.M{"_id": bson.NewObjectID(), "hostname": host, "service": svc, "service_type": "masterful", "instance_id": id, "rev": rev}
	}
	return append(docs,
		dup("db-slave-1", "db", "", 9), dup("db-slave-1", "db", "i-b1", 1),
		dup("db-slave-2", "db", "i-b2", 5), dup("db-slave-2", "db", "i-a2", 7),
		dup("db-slave-3", "db", "i-a3", 4), dup("db-slave-3", "db", "i-b3", 4),
		dup("db-master", "db", "i-m", 2),
	)
}

// A Follower builds the same copy walking the ledger as from the slice
// Records returns, whichever order the documents come in, and keeps the
// duplicate the rule says.
func TestFollowerWalkedReadMatchesRecords(t *testing.T) {
	ctx := context.Background()
	for name, reversed := range map[string]bool{"inserted in order": false, "inserted reversed": true} {
		t.Run(name, func(t *testing.T) {
			db := ledgertest.Database(t)
			raw := ledgertest.Open(t, ledger.Options{Database: db, ReadOnly: true})
			docs := walkDocs()
			if reversed {
				slices.Reverse(docs)
			}
			if _, err := servers(raw).InsertMany(ctx, docs); err != nil {
				t.Fatalf("inserting documents: %v", err)
			}
			m := ledgertest.Open(t, ledger.Options{Database: db})

			walked := ledger.NewFollower(m, ledger.FollowerOptions{})
			sliced := ledger.NewFollower(sliceOnly{m}, ledger.FollowerOptions{})
			for _, f := range []*ledger.Follower{walked, sliced} {
				if _, err := f.Poll(ctx); err != nil {
					t.Fatal(err)
				}
			}
			got, want := walked.Records(), sliced.Records()
			if len(got) != ledger.RecordChunk+10+4 {
				t.Errorf("walked copy holds %d records, want %d (one a hostname)", len(got), ledger.RecordChunk+10+4)
			}
			if !slices.EqualFunc(got, want, equalStored) {
				t.Fatalf("walked copy differs from the Records one:\n%v\n%v", hostRevs(got), hostRevs(want))
			}
			for host, id := range map[string]string{"db-slave-1": "i-b1", "db-slave-2": "i-a2", "db-slave-3": "i-b3", "db-master": "i-m"} {
				if r, _ := walked.Record(host); r.InstanceID != id {
					t.Errorf("%s kept %+v, want the copy bound to %s", host, r, id)
				}
			}
			if r, _ := walked.Record("web-260"); r.IP != "10.0.1.11" || !slices.Equal(r.Aliases, []string{"w260.internal"}) || r.Rev != 261 {
				t.Errorf("web-260 = %+v", r)
			}
		})
	}
}

// equalStored compares every field a record is stored with.
func equalStored(a, b naming.Record) bool {
	return equalRecord(a, b) && a.ReleasedAt.Equal(b.ReleasedAt) && a.LastInstanceID == b.LastInstanceID
}

// Mongo.WalkRecords hands over what Records returns, for one service or
// all, in some order.
func TestWalkRecordsMatchesRecords(t *testing.T) {
	ctx := context.Background()
	db := ledgertest.Database(t)
	raw := ledgertest.Open(t, ledger.Options{Database: db, ReadOnly: true})
	if _, err := servers(raw).InsertMany(ctx, walkDocs()); err != nil {
		t.Fatalf("inserting documents: %v", err)
	}
	m := ledgertest.Open(t, ledger.Options{Database: db})
	for _, svc := range []string{"", "db", "none"} {
		var got []naming.Record
		if err := m.WalkRecords(ctx, svc, func(r naming.Record) { got = append(got, r) }); err != nil {
			t.Fatal(err)
		}
		want, err := m.Records(ctx, svc)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(ledger.SortRecords(got), want, equalStored) {
			t.Errorf("WalkRecords(%q) = %v, want %v", svc, hostRevs(got), hostRevs(want))
		}
	}
}

// failingWalk hands over some records, then fails, as a read cut off
// mid-cursor does.
type failingWalk struct {
	ledger.Store
	after int
	err   error
}

func (s *failingWalk) WalkRecords(ctx context.Context, service string, fn func(naming.Record)) error {
	n := 0
	if err := s.Store.(ledger.RecordWalker).WalkRecords(ctx, service, func(r naming.Record) {
		if n < s.after {
			fn(r)
		}
		n++
	}); err != nil {
		return err
	}
	return s.err
}

// A walked read that fails half way leaves the copy as it was; the next
// Poll reads the whole ledger again.
func TestFollowerWalkFailureLeavesCopy(t *testing.T) {
	ctx := context.Background()
	m := ledgertest.New(t)
	mustApply(t, m, bind("web-0", 0, "i-0", "10.0.0.1"), bind("web-1", 1, "i-1", "10.0.0.2"))
	st := &failingWalk{Store: m, after: 1 << 30}
	f := ledger.NewFollower(st, ledger.FollowerOptions{})
	if _, err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	mustApply(t, m, bind("web-2", 2, "i-2", "10.0.0.3"), bind("web-3", 3, "i-3", "10.0.0.4"))
	st.after, st.err = 3, errors.New("connection reset")
	f.Refresh(true)
	if _, err := f.Poll(ctx); err == nil || !errors.Is(err, st.err) {
		t.Fatalf("Poll over a read cut off after 3 records = %v, want the store's error", err)
	}
	if got := hostnames(f.Records(), false); got != "web-0,web-1" {
		t.Fatalf("copy after the failed read = %s, want web-0,web-1 as before it", got)
	}
	st.after, st.err = 1<<30, nil
	changed, err := f.Poll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := hostnames(f.Records(), false); got != "web-0,web-1,web-2,web-3" || !slices.Equal(changed, []string{"web-2", "web-3"}) {
		t.Fatalf("after the retry: copy %s, changed %v; want every record, web-2 and web-3 changed", got, changed)
	}
}

func TestPreferDuplicate(t *testing.T) {
	rec := func(svc, id string, rev int64) naming.Record {
		return naming.Record{Hostname: "web-1", Service: svc, InstanceID: id, Rev: rev}
	}
	tests := map[string]struct {
		r, prev naming.Record
		want    bool
	}{
		"bound over a gap":          {r: rec("web", "i-1", 1), prev: rec("web", "", 9), want: true},
		"a gap never over bound":    {r: rec("web", "", 9), prev: rec("web", "i-1", 1), want: false},
		"higher rev, both bound":    {r: rec("web", "i-0", 7), prev: rec("web", "i-1", 5), want: true},
		"lower rev, both bound":     {r: rec("web", "i-1", 5), prev: rec("web", "i-0", 7), want: false},
		"higher rev, both gaps":     {r: rec("web", "", 3), prev: rec("web", "", 2), want: true},
		"same rev, later instance":  {r: rec("web", "i-b", 4), prev: rec("web", "i-a", 4), want: true},
		"same rev, earlier":         {r: rec("web", "i-a", 4), prev: rec("web", "i-b", 4), want: false},
		"same rev, later service":   {r: rec("x", "i-a", 4), prev: rec("web", "i-a", 4), want: true},
		"identical keeps the first": {r: rec("web", "i-a", 4), prev: rec("web", "i-a", 4), want: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := ledger.PreferDuplicate(&tc.r, &tc.prev); got != tc.want {
				t.Errorf("PreferDuplicate(%+v, %+v) = %v, want %v", tc.r, tc.prev, got, tc.want)
			}
		})
	}
}

// A Follower's full read of 10,000 records: walked into chunks (the
// controller's Cache over the ledger) and through the slice Records
// returns. Compare B/op and allocs/op (-benchmem).
func BenchmarkFollowerFullRead10k(b *testing.B) {
	const n = 10000
	ctx := context.Background()
	m := ledgertest.New(b)
	insertBound(b, m, n)
	for name, st := range map[string]ledger.Store{"walk": m, "records": sliceOnly{m}} {
		b.Run(name, func(b *testing.B) {
			f := ledger.NewFollower(st, ledger.FollowerOptions{})
			for b.Loop() {
				f.Refresh(true)
				if _, err := f.Poll(ctx); err != nil {
					b.Fatal(err)
				}
			}
			if got := len(f.Records()); got != n {
				b.Fatalf("%d records, want %d", got, n)
			}
		})
	}
}
