package controllers_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"

	v1alpha1 "github.com/aerostat-io/aerostat/api/v1alpha1"
)

// crashingStore commits the first k changes of an Apply and then fails, as
// a controller killed between two writes would leave the ledger.
type crashingStore struct {
	ledger.Store
	k int
}

var errCrash = errors.New("controller killed mid-apply")

func (s crashingStore) Apply(ctx context.Context, changes []naming.Change) (int, error) {
	if len(changes) <= s.k {
		return s.Store.Apply(ctx, changes)
	}
	n, err := s.Store.Apply(ctx, changes[:s.k])
	if err != nil {
		return n, err
	}
	return n, errCrash
}

// TestRestartMidApply: a pass that dies after k of its writes leaves a
// consistent ledger (no name bound twice), and a fresh controller's pass
// finishes the work without renaming what was already named.
func TestRestartMidApply(t *testing.T) {
	_, c := envtestClient(t)
	r := newRig(t)
	const svc = "crashy"
	ids := r.launch(20, svc)
	createService(t, c, v1alpha1.NamingServiceSpec{Service: svc, Scheme: "Masterful"})

	crashed := r.reconciler(c, crashingStore{Store: r.store, k: 7})
	_, err := crashed.Reconcile(context.Background(), reqFor(svc))
	if !errors.Is(err, errCrash) {
		t.Fatalf("reconcile with a crashing store: err = %v, want the crash", err)
	}
	recs, err := r.store.Records(context.Background(), svc)
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, recs)
	partial := r.bound(svc)
	if len(partial) != 7 {
		t.Errorf("%d names bound after a crash after 7 writes, want 7", len(partial))
	}
	if cond := condition(getService(t, c, svc), v1alpha1.ConditionDegraded); cond.Reason != v1alpha1.ReasonLedgerError {
		t.Errorf("Degraded reason = %q, want %q", cond.Reason, v1alpha1.ReasonLedgerError)
	}

	// The restarted controller has no memory and a working store. Kill it
	// once more while it releases and binds, then let it finish.
	if err := r.fleet.Terminate(ids[0], ids[1]); err != nil {
		t.Fatal(err)
	}
	_, err = r.reconciler(c, crashingStore{Store: r.store, k: 1}).Reconcile(context.Background(), reqFor(svc))
	if !errors.Is(err, errCrash) {
		t.Fatalf("second crashing reconcile: err = %v, want the crash", err)
	}
	recs, _ = r.store.Records(context.Background(), svc)
	checkConsistent(t, recs)
	restarted := r.reconciler(c, r.store)
	restarted.pass(t, svc)
	recs, _ = r.store.Records(context.Background(), svc)
	checkConsistent(t, recs)
	final := r.bound(svc)
	if len(final) != 18 {
		t.Errorf("%d names bound after the restarted pass, want 18", len(final))
	}
	for h, id := range partial {
		if id == ids[0] || id == ids[1] {
			continue
		}
		if final[h] != id {
			t.Errorf("%s moved from %s to %s across the restart", h, id, final[h])
		}
	}
	before := r.rev()
	restarted.pass(t, svc)
	if after := r.rev(); after != before {
		t.Errorf("pass after the finished work moved the rev from %d to %d", before, after)
	}
}
