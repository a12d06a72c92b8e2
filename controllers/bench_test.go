package controllers_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// writeCounter counts the ledger documents a pass writes (committed
// changes), whatever the number of Apply calls.
type writeCounter struct {
	ledger.Store
	writes atomic.Int64
}

func (w *writeCounter) Apply(ctx context.Context, changes []naming.Change) (int, error) {
	n, err := w.Store.Apply(ctx, changes)
	w.writes.Add(int64(n))
	return n, err
}

// BenchmarkPass times one controller pass for one service (list through the
// real SDK against the fake EC2 Query server, read the ledger from the
// embedded store, plan, apply) at 1,000 and 10,000 instances, and reports
// the EC2 calls and ledger writes per pass. "steady" is a fleet that did not
// change since the last pass and must write nothing; "churn=10" terminates
// the 10 oldest instances and launches 10 before each pass (10 releases
// and 10 binds).
//
// The rig's EC2 client has no call budget; with the default budget of 5
// calls a second, a 10-page listing adds about 1.8 s of waiting.
func BenchmarkPass(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("instances=%d/steady", n), func(b *testing.B) { benchPass(b, n, 0) })
		b.Run(fmt.Sprintf("instances=%d/churn=10", n), func(b *testing.B) { benchPass(b, n, 10) })
		b.Run(fmt.Sprintf("instances=%d/standalone/steady", n), func(b *testing.B) { benchStandalone(b, n, false) })
		b.Run(fmt.Sprintf("instances=%d/standalone-cache/steady", n), func(b *testing.B) { benchStandalone(b, n, true) })
	}
}

// benchStandalone times an idle standalone pass (one listing of every
// tagged instance, then one pass per service) and reports its ledger
// reads: each reads the whole collection on the embedded store. With
// cache the pass plans from a ledger.Cache, as `aerostat controller`
// wires it: after the first pass, deltas only.
func benchStandalone(b *testing.B, n int, cache bool) {
	ctx := context.Background()
	r := newRig(b)
	const name = "bench"
	seedNames(b, r, name, r.launch(n, name))
	store := &readCounter{Store: r.store}
	var plan ledger.Store = store
	if cache {
		// Over the store itself: a Cache passes policies through, which
		// the read counter does not keep (ledger-reads/pass then counts
		// nothing).
		plan = ledger.NewCache(r.store, ledger.FollowerOptions{})
		if _, err := plan.Records(ctx, ""); err != nil {
			b.Fatal(err)
		}
	}
	sa := controllers.NewStandalone(controllers.StandaloneOptions{Syncer: r.syncer(plan), Cloud: r.ec2, Store: plan, Clock: r.clock})
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := sa.Pass(ctx); err != nil {
			b.Fatalf("pass: %v", err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(store.records.Load()+store.changes.Load())/float64(b.N), "ledger-reads/pass")
	b.ReportMetric(float64(r.server.TotalCalls())/float64(b.N), "ec2-calls/pass")
	if w := store.writes.Load(); w != 0 {
		b.Errorf("steady-state passes wrote %d ledger documents, want 0", w)
	}
}

func benchPass(b *testing.B, n, churn int) {
	ctx := context.Background()
	r := newRig(b)
	const name = "bench"
	live := r.launch(n, name)
	seedNames(b, r, name, live)
	store := &writeCounter{Store: r.store}
	syncer := r.syncer(store)
	svc := controllers.Service{Policy: naming.Policy{Service: name, Scheme: naming.Iterative, Reap: controllers.DefaultReap()}}

	var terminated []string
	b.ResetTimer()
	for b.Loop() {
		if churn > 0 {
			b.StopTimer()
			r.fleet.Remove(terminated...) // gone from listings, as EC2 drops them after an hour
			terminated = live[:churn]
			if err := r.fleet.Terminate(terminated...); err != nil {
				b.Fatal(err)
			}
			live = append(live[churn:], r.launch(churn, name)...)
			r.clock.Step(controllers.DefaultPollInterval)
			b.StartTimer()
		}
		pass, err := syncer.Sync(ctx, svc)
		if err != nil || pass.ObserveErr != nil {
			b.Fatalf("pass: err %v, observe err %v", err, pass.ObserveErr)
		}
	}
	b.StopTimer()
	calls, writes := r.server.TotalCalls(), store.writes.Load()
	b.ReportMetric(float64(calls)/float64(b.N), "ec2-calls/pass")
	b.ReportMetric(float64(writes)/float64(b.N), "ledger-writes/pass")
	if churn == 0 && writes != 0 {
		b.Errorf("steady-state passes wrote %d ledger documents, want 0", writes)
	}
	if churn > 0 && writes != int64(2*churn*b.N) {
		b.Errorf("churn passes wrote %d ledger documents in %d passes, want %d a pass", writes, b.N, 2*churn)
	}
}

// seedNames names ids service-0, service-1, … in one bulk insert, as the
// controller's binds would (one compare-and-set write a name on the
// embedded store costs tens of milliseconds at 10,000 records, which would
// make the set-up the benchmark), and moves the rev counter past them.
func seedNames(b *testing.B, r *rig, service string, ids []string) {
	b.Helper()
	ctx := context.Background()
	m, ok := r.store.(*ledger.Mongo)
	if !ok {
		b.Fatalf("the rig's store is a %T, want *ledger.Mongo", r.store)
	}
	now := r.clock.Now().UTC().Truncate(time.Millisecond)
	docs := make([]any, 0, len(ids))
	for i, id := range ids {
		in, _ := r.fleet.Instance(id)
		docs = append(docs, bson.D{
			{Key: "_id", Value: bson.NewObjectID()}, {Key: "hostname", Value: fmt.Sprintf("%s-%d", service, i)},
			{Key: "service", Value: service}, {Key: "service_type", Value: "iterative"}, {Key: "role", Value: ""},
			{Key: "ordinal", Value: int64(i)}, {Key: "instance_id", Value: id}, {Key: "ip", Value: in.PrivateIP},
			{Key: "aliases", Value: bson.A{}}, {Key: "rev", Value: int64(i + 1)},
			{Key: "updated_at", Value: now}, {Key: "claimed_at", Value: now},
		})
	}
	db := m.Client().Database(m.Database())
	for chunk := range slices.Chunk(docs, 5000) {
		if _, err := db.Collection("servers").InsertMany(ctx, chunk); err != nil {
			b.Fatalf("seeding names: %v", err)
		}
	}
	if _, err := db.Collection("meta").UpdateOne(ctx, bson.D{{Key: "_id", Value: "rev"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: int64(len(ids))}}}}, options.UpdateOne().SetUpsert(true)); err != nil {
		b.Fatalf("seeding the rev counter: %v", err)
	}
	// The seed must read back as a ledger the planner leaves alone.
	recs, err := m.Records(ctx, service)
	if err != nil || len(recs) != len(ids) {
		b.Fatalf("seeded records: %d of %d, err %v", len(recs), len(ids), err)
	}
	r.server.Reset()
}
