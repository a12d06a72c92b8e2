package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aerostat-io/aerostat/internal/fakeclock"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// countingStore counts lost compare-and-sets, to report contention.
type countingStore struct {
	ledger.Store
	conflicts atomic.Int64
}

func (s *countingStore) Apply(ctx context.Context, changes []naming.Change) (int, error) {
	n, err := s.Store.Apply(ctx, changes)
	if errors.Is(err, ledger.ErrConflict) {
		s.conflicts.Add(1)
	}
	return n, err
}

// 50 instances of one service register at once, each planning
// with only itself observed (as a booting node does). Every instance ends
// with its own name, the names are exactly web-0..web-49, none is lost.
func TestClaimConcurrentRegistrations(t *testing.T) {
	const n = 50
	ctx := context.Background()
	m := ledgertest.New(t)
	store := &countingStore{Store: m}
	launched := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	policy := naming.Policy{Service: "web", Scheme: naming.Iterative}

	var wg sync.WaitGroup
	results := make([]naming.Result, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			self := naming.Instance{
				ID: fmt.Sprintf("i-%04d", i), PrivateIP: fmt.Sprintf("10.0.%d.%d", i/250, i%250+1),
				State: naming.StateRunning, LaunchTime: launched,
			}
			results[i], errs[i] = ledger.Claim(ctx, store, "web", func(recs []naming.Record) (naming.Result, error) {
				return naming.Plan(naming.Input{
					Policy:   policy,
					Records:  recs,
					Observed: naming.Observation{Instances: []naming.Instance{self}},
					Now:      launched,
				})
			})
		}()
	}
	wg.Wait()

	claimed := map[string]string{} // hostname → instance, from the results
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: Claim: %v", i, err)
		}
		for _, c := range results[i].Changes {
			if c.Type == naming.Bind {
				if prev, dup := claimed[c.Hostname]; dup {
					t.Errorf("%s claimed by %s and %s", c.Hostname, prev, c.InstanceID)
				}
				claimed[c.Hostname] = c.InstanceID
			}
		}
	}
	recs := mustRecords(t, m, "web")
	var names []string
	holders := map[string]string{}
	for h, r := range recs {
		names = append(names, h)
		if prev, dup := holders[r.InstanceID]; dup {
			t.Errorf("instance %s holds %s and %s", r.InstanceID, prev, h)
		}
		holders[r.InstanceID] = h
		if claimed[h] != r.InstanceID {
			t.Errorf("%s: ledger says %q, the claim that won said %q", h, r.InstanceID, claimed[h])
		}
	}
	sort.Strings(names)
	for i := range n {
		if _, ok := recs[fmt.Sprintf("web-%d", i)]; !ok {
			t.Errorf("web-%d missing", i)
		}
		if _, ok := holders[fmt.Sprintf("i-%04d", i)]; !ok {
			t.Errorf("instance i-%04d has no name (write lost)", i)
		}
	}
	if len(recs) != n {
		t.Errorf("%d records, want %d: %v", len(recs), n, names)
	}
	t.Logf("%d registrations, %d lost compare-and-sets retried", n, store.conflicts.Load())
}

func TestClaimGivesUpOnPersistentConflict(t *testing.T) {
	m := ledgertest.New(t)
	mustApply(t, m, bind("web-0", 0, "i-0", "10.0.0.1"))
	attempts := 0
	ctx, cancel := context.WithCancel(context.Background())
	_, err := ledger.Claim(ctx, m, "web", func([]naming.Record) (naming.Result, error) {
		attempts++
		if attempts == 3 {
			cancel()
		}
		// Always plans an insert of a name that exists: always loses.
		return naming.Result{Changes: []naming.Change{bind("web-0", 0, "i-1", "10.0.0.2")}}, nil
	})
	if !errors.Is(err, context.Canceled) || attempts != 3 {
		t.Errorf("Claim = %v after %d attempts; want context.Canceled after 3", err, attempts)
	}
}

func TestClaimReturnsPlanErrors(t *testing.T) {
	m := ledgertest.New(t)
	boom := errors.New("boom")
	_, err := ledger.Claim(context.Background(), m, "web", func([]naming.Record) (naming.Result, error) {
		return naming.Result{}, boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("Claim = %v, want the plan error", err)
	}
}

func TestClaimGivesUpWhenStalled(t *testing.T) {
	m := ledgertest.New(t)
	mustApply(t, m, bind("web-0", 0, "i-0", "10.0.0.1"))
	attempts := 0
	_, err := ledger.Claim(context.Background(), m, "web", func([]naming.Record) (naming.Result, error) {
		attempts++
		return naming.Result{Changes: []naming.Change{bind("web-0", 0, "i-1", "10.0.0.2")}}, nil
	})
	var ce *ledger.ConflictError
	if !errors.As(err, &ce) || ce.Hostname != "web-0" {
		t.Errorf("Claim = %v, want a ConflictError for web-0", err)
	}
	if attempts != 11 {
		t.Errorf("%d attempts, want 11 (one, then 10 without progress)", attempts)
	}
}

// Refilling a gap is an update, not an insert, so only the per-document
// compare-and-set stands between racing writers: exactly one may win.
func TestRacingBindsOfOneGap(t *testing.T) {
	const n = 20
	ctx := context.Background()
	m := ledgertest.New(t)
	mustApply(t, m, bind("web-0", 0, "i-0", "10.0.0.1"))
	mustApply(t, m, naming.Change{Type: naming.Release, Hostname: "web-0", ExpectExists: true, ExpectInstanceID: "i-0", ExpectRev: 1})

	var (
		wg   sync.WaitGroup
		wins atomic.Int64
		errs = make([]error, n)
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := bind("web-0", 0, fmt.Sprintf("i-%d", i+1), "10.0.0.2")
			c.ExpectExists, c.ExpectRev = true, 2
			if _, err := m.Apply(ctx, []naming.Change{c}); err == nil {
				wins.Add(1)
			} else if !errors.Is(err, ledger.ErrConflict) {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if wins.Load() != 1 {
		t.Errorf("%d writers bound the gap web-0, want exactly 1", wins.Load())
	}
}

// A lost compare-and-set waits for the clock it was given: no second
// attempt until the pause has passed on it.
func TestClaimPausesOnItsClock(t *testing.T) {
	m := ledgertest.New(t)
	mustApply(t, m, bind("web-0", 0, "i-0", "10.0.0.1"))
	clk := fakeclock.New(time.Unix(0, 0))
	var attempts atomic.Int32
	second := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := ledger.ClaimWithClock(ctx, clk, m, "web", func([]naming.Record) (naming.Result, error) {
			if attempts.Add(1) == 2 {
				close(second)
			}
			return naming.Result{Changes: []naming.Change{bind("web-0", 0, "i-1", "10.0.0.2")}}, nil
		})
		done <- err
	}()
	pause := clk.WaitArmedFunc(t, "the first pause (under 5ms)", func(d time.Duration) bool { return d < 5*time.Millisecond })
	if n := attempts.Load(); n != 1 {
		t.Fatalf("%d attempts before the pause ended, want 1", n)
	}
	clk.Step(pause - time.Nanosecond)
	if n := attempts.Load(); n != 1 {
		t.Fatalf("%d attempts before the pause ended, want 1", n)
	}
	clk.Step(time.Nanosecond)
	<-second
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Claim = %v, want context.Canceled", err)
	}
}
