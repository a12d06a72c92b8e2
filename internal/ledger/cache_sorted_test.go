package ledger_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/feed/feedtest"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// wantRecords is what Records(service) must return: the store's records
// of service ("" for all), sorted as the ledger sorts them.
func wantRecords(t *testing.T, st ledger.Store, service string) []naming.Record {
	t.Helper()
	recs, err := st.Records(context.Background(), service)
	if err != nil {
		t.Fatal(err)
	}
	return ledger.SortRecords(recs)
}

func sameRecords(a, b []naming.Record) bool {
	return slices.EqualFunc(a, b, func(x, y naming.Record) bool {
		return naming.SameRecord(x, y) && x.ReleasedAt.Equal(y.ReleasedAt) && x.LastInstanceID == y.LastInstanceID &&
			x.Role == y.Role && x.Ordinal == y.Ordinal
	})
}

// The Cache's sorted copy, patched by each delta, always equals a fresh
// sort of the store: across binds, releases, new services, a change only
// in hold-back fields (which SameRecord ignores), a burst larger than the
// patch limit, and a deletion that only a full re-read brings.
func TestCacheSortedCopyFollowsDeltas(t *testing.T) {
	ctx := context.Background()
	fc := clocktesting.NewFakeClock(followT0)
	st := feedtest.New()
	for i := range 30 {
		st.Bind(fmt.Sprintf("web-%d", i), "web", fmt.Sprintf("i-%d", i), "10.0.0.1")
	}
	st.Bind("db-master", "db", "i-db", "10.0.1.1")
	// Overlap 0: every committed rev is safe at once, so each Records sees
	// the step before it (the overlap rule has its own tests).
	c := ledger.NewCache(st, ledger.FollowerOptions{Clock: fc, Overlap: time.Nanosecond, ResyncEvery: time.Hour})
	rng := rand.New(rand.NewPCG(1, 2))
	check := func(step string) {
		t.Helper()
		fc.Step(time.Second)
		for _, svc := range []string{"", "web", "db", "api", "zzz"} {
			got, err := c.Records(ctx, svc)
			if err != nil {
				t.Fatal(err)
			}
			if want := wantRecords(t, st, svc); !sameRecords(got, want) {
				t.Fatalf("%s: Records(%q) = %v, want %v", step, svc, hostRevs(got), hostRevs(want))
			}
		}
	}
	check("first read")
	steps := map[string]func(){
		"bind": func() {
			n := rng.IntN(40)
			st.Bind(fmt.Sprintf("web-%d", n), "web", fmt.Sprintf("i-x%d", n), "10.0.0.2")
		},
		"release": func() { st.Release(fmt.Sprintf("web-%d", rng.IntN(30))) },
		"service": func() {
			n := rng.IntN(5)
			st.Bind(fmt.Sprintf("api-%d", n), "api", fmt.Sprintf("i-a%d", n), "10.0.2.1")
		},
		"holdback": func() {
			recs, _ := st.Records(ctx, "web")
			r := recs[rng.IntN(len(recs))]
			r.ReleasedAt, r.LastInstanceID = followT0.Add(time.Duration(rng.IntN(1000))*time.Second), "i-old"
			st.Put(r)
		},
		// A record whose place in the order changes (a 1.x rename moves
		// role and ordinal): moved, not replaced in place.
		"reorder": func() {
			recs, _ := st.Records(ctx, "web")
			r := recs[rng.IntN(len(recs))]
			r.Ordinal = rng.IntN(60)
			st.Put(r)
		},
	}
	names := []string{"bind", "release", "service", "holdback", "reorder"}
	for i := range 200 {
		name := names[rng.IntN(len(names))]
		for range 1 + rng.IntN(3) {
			steps[name]()
		}
		check(fmt.Sprintf("step %d (%s)", i, name))
	}
	for i := range 100 { // more than the patch limit at once
		st.Bind(fmt.Sprintf("web-%d", 100+i), "web", fmt.Sprintf("i-b%d", i), "10.0.0.3")
	}
	check("burst")
	for i := range 40 { // fewer than the patch limit, each inserted
		st.Bind(fmt.Sprintf("web-%d", 300+i), "web", fmt.Sprintf("i-c%d", i), "10.0.0.4")
	}
	check("small burst")
	st.Delete("web-3")
	fc.Step(time.Hour) // the periodic full re-read drops it
	check("deletion")
}

// Records of a 10,000-name copy when nothing changed (an idle controller
// pass reads all; a claim reads its service).
func BenchmarkCacheRecords10k(b *testing.B) {
	for name, service := range map[string]string{"all": "", "service": "web"} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			st := feedtest.New()
			for i := range 10000 {
				svc := []string{"api", "web", "db"}[i%3]
				st.Bind(fmt.Sprintf("%s-%d", svc, i), svc, fmt.Sprintf("i-%d", i), "10.0.0.1")
			}
			c := ledger.NewCache(st, ledger.FollowerOptions{})
			if _, err := c.Records(ctx, ""); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Records(ctx, service); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
