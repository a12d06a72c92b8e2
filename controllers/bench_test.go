package controllers_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

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
// change since the last pass and must write nothing; "churn" replaces 1% of
// the fleet before each pass (terminate the oldest, launch as many).
//
// The rig's EC2 client has no call budget; with the default budget of 5
// calls a second, a 10-page listing adds about 1.8 s of waiting.
func BenchmarkPass(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("instances=%d/steady", n), func(b *testing.B) { benchPass(b, n, 0) })
		b.Run(fmt.Sprintf("instances=%d/churn=1%%", n), func(b *testing.B) { benchPass(b, n, n/100) })
	}
}

func benchPass(b *testing.B, n, churn int) {
	ctx := context.Background()
	r := newRig(b)
	const name = "bench"
	live := r.launch(n, name)
	store := &writeCounter{Store: r.store}
	syncer := r.syncer(store)
	svc := controllers.Service{Policy: naming.Policy{Service: name, Scheme: naming.Iterative, Reap: controllers.DefaultReap()}}

	start := time.Now()
	pass, err := syncer.Sync(ctx, svc)
	if err != nil || pass.ObserveErr != nil || pass.Applied != n {
		b.Fatalf("first pass: applied %d of %d, err %v, observe err %v", pass.Applied, n, err, pass.ObserveErr)
	}
	b.Logf("first pass named %d instances in %v with %d EC2 calls", n, time.Since(start).Round(time.Millisecond), r.server.TotalCalls())

	r.server.Reset()
	store.writes.Store(0)
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
	if churn > 0 && writes < int64(b.N*churn) {
		b.Errorf("churn passes wrote %d ledger documents in %d passes, want at least %d a pass", writes, b.N, churn)
	}
}
