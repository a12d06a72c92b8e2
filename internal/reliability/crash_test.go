package reliability

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// crashScenario prepares a world whose next pass has work of every kind:
// it returns a function running that pass against a given store.
type crashScenario struct {
	setup func(w *world) func(ctx context.Context, store ledger.Store) (int, error)
	// twoNames allows an instance two names between the writes of a
	// change-over (documented in naming.Plan); the master name is still
	// held at most once.
	twoNames bool
}

var crashScenarios = map[string]crashScenario{
	// Standalone pass over two services: a dead master refilled, dead
	// slaves and iterative names handed over in one write each, new
	// instances taking gaps and new numbers, a stopped instance released.
	"standalone churn": {setup: func(w *world) func(context.Context, ledger.Store) (int, error) {
		ctx := context.Background()
		db := w.launch(6, "db", "masterful")
		w.clock.Step(time.Second)
		web := w.launch(6, "web", "")
		if _, err := w.standalone(w.store).Pass(ctx); err != nil {
			w.t.Fatal(err)
		}
		w.clock.Step(time.Minute)
		if err := w.fleet.Terminate(db[0], db[2], web[1], web[4]); err != nil {
			w.t.Fatal(err)
		}
		if err := w.fleet.Stop(web[5]); err != nil {
			w.t.Fatal(err)
		}
		w.launch(3, "db", "masterful")
		w.launch(2, "web", "")
		return func(ctx context.Context, store ledger.Store) (int, error) {
			sum, err := w.standalone(store).Pass(ctx)
			return sum.Changes, err
		}
	}},
	// A master change-over asked for by a slave, with aliases on the
	// master name, through the Syncer a NamingService uses.
	"change-over": {twoNames: true, setup: func(w *world) func(context.Context, ledger.Store) (int, error) {
		ctx := context.Background()
		ids := w.launch(5, "db", "masterful")
		svc := controllers.Service{Policy: naming.Policy{Service: "db", Scheme: naming.Masterful, Reap: controllers.DefaultReap(),
			Aliases: map[string][]string{"db-master": {"db"}}}}
		syncer := func(store ledger.Store) *controllers.Syncer {
			return controllers.NewSyncer(controllers.SyncerOptions{Cloud: w.ec2, Store: store, Clock: w.clock})
		}
		if _, err := syncer(w.store).Sync(ctx, svc); err != nil {
			w.t.Fatal(err)
		}
		if err := w.fleet.Terminate(ids[1]); err != nil { // frees db-slave-1
			w.t.Fatal(err)
		}
		svc.Policy.DesiredMaster = ids[3]
		return func(ctx context.Context, store ledger.Store) (int, error) {
			pass, err := syncer(store).Sync(ctx, svc)
			return pass.Applied, err
		}
	}},
}

// TestControllerKilledAtEveryWrite cancels the controller's context after
// k writes of a pass, for every k from 0 to the pass's length. The ledger
// is valid after every crash (no name held twice, no instance with two
// names), names already held by live instances survive, and a restarted
// controller (no memory) converges in one pass.
func TestControllerKilledAtEveryWrite(t *testing.T) {
	for name, sc := range crashScenarios {
		t.Run(name, func(t *testing.T) {
			ref := newWorld(t)
			n, err := sc.setup(ref)(context.Background(), ref.store)
			if err != nil || n < 3 {
				t.Fatalf("uncrashed pass: %d changes, %v; want a pass with work", n, err)
			}
			for k := 0; k <= n; k++ {
				t.Run(fmt.Sprintf("after %d of %d writes", k, n), func(t *testing.T) {
					w := newWorld(t)
					pass := sc.setup(w)
					before := w.bound()
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					crash := &StopAfter{Store: w.store, K: k, Stop: cancel}
					_, err := pass(ctx, crash)
					if k < n && err == nil {
						t.Fatalf("pass killed after %d writes returned no error", k)
					}
					if crash.Writes() != k {
						t.Fatalf("%d writes committed, want %d", crash.Writes(), k)
					}
					w.checkRaw()
					checkValid(t, w.records(), sc.twoNames)
					live, _ := w.live()
					for h, id := range before {
						if _, ok := live[id]; ok && w.bound()[h] != id && !sc.twoNames {
							t.Errorf("%s moved from live %s to %q by a crash", h, id, w.bound()[h])
						}
					}

					// A restarted controller finishes the work.
					if _, err := pass(context.Background(), w.store); err != nil {
						t.Fatalf("pass after restart: %v", err)
					}
					w.checkRaw()
					w.checkSettled()
					if m, err := pass(context.Background(), w.store); err != nil || m != 0 {
						t.Errorf("second pass after restart: %d changes, %v; want none", m, err)
					}
					if got, want := w.bound(), ref.bound(); fmt.Sprint(got) != fmt.Sprint(want) {
						t.Errorf("after the crash and restart:\n got %v\nwant %v (uncrashed)", got, want)
					}
				})
			}
		})
	}
}

// checkValid fails on a hostname held twice, or (unless twoNames) an
// instance holding two names of one service.
func checkValid(t *testing.T, recs []naming.Record, twoNames bool) {
	t.Helper()
	hosts := map[string]bool{}
	held := map[string]string{}
	for _, r := range recs {
		if hosts[r.Hostname] {
			t.Errorf("hostname %s has two records", r.Hostname)
		}
		hosts[r.Hostname] = true
		if r.Free() {
			continue
		}
		if other, ok := held[r.Service+"/"+r.InstanceID]; ok && !twoNames {
			t.Errorf("instance %s holds %s and %s", r.InstanceID, other, r.Hostname)
		}
		held[r.Service+"/"+r.InstanceID] = r.Hostname
	}
}

// lostAck commits a write and then fails as if the reply was lost: the
// caller cannot tell the write happened.
type lostAck struct{ ledger.Store }

var errLostAck = errors.New("connection reset before the reply")

func (s lostAck) Apply(ctx context.Context, changes []naming.Change) (int, error) {
	if _, err := s.Store.Apply(ctx, changes); err != nil {
		return 0, err
	}
	return 0, errLostAck
}

// TestRegisterKilledAfterClaim: a node is killed after its claim was
// committed but before it set its hostname (or before it even learnt the
// claim succeeded). Registering again returns the same name and writes
// nothing.
func TestRegisterKilledAfterClaim(t *testing.T) {
	tests := map[string]func(w *world) ledger.Store{
		"killed after the claim": func(w *world) ledger.Store { return w.store },
		"reply of the claim lost": func(w *world) ledger.Store {
			return lostAck{w.store}
		},
	}
	for name, store := range tests {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			w := newWorld(t)
			for i := range 3 {
				if _, err := Register(ctx, w.store, "web", naming.Iterative, fmt.Sprintf("i-other%d", i), fmt.Sprintf("10.0.1.%d", i+1), "", epoch); err != nil {
					t.Fatal(err)
				}
			}
			// The first attempt: the claim commits, then the process dies.
			_, _ = ledger.Claim(ctx, store(w), "web", RegisterPlan("web", naming.Iterative, "i-self", "10.0.0.9", "", epoch))
			claimed := Holding(w.records(), "i-self")
			if claimed == "" {
				t.Fatal("the killed registration committed nothing; the test needs a committed claim")
			}
			rev := w.rev()
			again, err := Register(ctx, w.store, "web", naming.Iterative, "i-self", "10.0.0.9", "", epoch.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if again != claimed {
				t.Errorf("re-register returned %s, want %s from the killed attempt", again, claimed)
			}
			if w.rev() != rev {
				t.Errorf("re-register wrote: rev %d → %d", rev, w.rev())
			}
			checkValid(t, w.records(), false)
		})
	}
}
