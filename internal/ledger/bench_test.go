package ledger_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// One Bind of a new name: a counter round trip plus an insert.
func BenchmarkApplyBind(b *testing.B) {
	ctx := context.Background()
	m := ledgertest.New(b)
	i := 0
	for b.Loop() {
		c := bind(fmt.Sprintf("web-%d", i), i, fmt.Sprintf("i-%d", i), "10.0.0.1")
		if _, err := m.Apply(ctx, []naming.Change{c}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// insertBound inserts n bound records of service web, web-0 to web-<n-1>,
// raw in one batch: through Apply, n single-document writes on FerretDB's
// SQLite backend take minutes.
func insertBound(b *testing.B, m *ledger.Mongo, n int) {
	b.Helper()
	now := time.Now().UTC()
	docs := make([]any, n)
	for i := range docs {
		docs[i] = bson.M{
			"_id": bson.NewObjectID(), "hostname": fmt.Sprintf("web-%d", i), "service": "web",
			"service_type": "iterative", "role": "", "ordinal": int64(i), "instance_id": fmt.Sprintf("i-%d", i),
			"ip": fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), "aliases": bson.A{fmt.Sprintf("w%d.internal", i)},
			"rev": int64(i + 1), "updated_at": now, "claimed_at": now,
		}
	}
	if _, err := servers(m).InsertMany(context.Background(), docs); err != nil {
		b.Fatal(err)
	}
}

// Reading and decoding one service of 1,000 records.
func BenchmarkRecords(b *testing.B) {
	const n = 1000
	ctx := context.Background()
	m := ledgertest.New(b)
	insertBound(b, m, n)
	for b.Loop() {
		recs, err := m.Records(ctx, "web")
		if err != nil {
			b.Fatal(err)
		}
		if len(recs) != n {
			b.Fatalf("%d records, want %d", len(recs), n)
		}
	}
}

// One compare-and-set on an existing record among 10,000 (a SetIP at the
// record's current rev): on the embedded store its cost should not follow
// the fleet (see the package doc and TestCompareAndSetNeverScans).
func BenchmarkCompareAndSet10k(b *testing.B) {
	const n = 10000
	ctx := context.Background()
	m := ledgertest.New(b)
	changes := make([]naming.Change, n)
	for i := range changes {
		changes[i] = bind(fmt.Sprintf("web-%d", i), i, fmt.Sprintf("i-%d", i), "10.0.0.1")
	}
	if _, err := m.Apply(ctx, changes); err != nil {
		b.Fatal(err)
	}
	recs, err := m.Records(ctx, "web")
	if err != nil {
		b.Fatal(err)
	}
	revs := make(map[string]int64, n)
	for _, r := range recs {
		revs[r.Hostname] = r.Rev
	}
	i := 0
	for b.Loop() {
		h := fmt.Sprintf("web-%d", i%n)
		c := naming.Change{Type: naming.SetIP, Hostname: h, IP: fmt.Sprintf("10.0.1.%d", i%250+1),
			ExpectExists: true, ExpectInstanceID: fmt.Sprintf("i-%d", i%n), ExpectRev: revs[h]}
		if _, err := m.Apply(ctx, []naming.Change{c}); err != nil {
			b.Fatal(err)
		}
		rev, err := m.Rev(ctx)
		if err != nil {
			b.Fatal(err)
		}
		revs[h] = rev
		i++
	}
}
