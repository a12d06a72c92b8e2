package ledger_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// OnCommit fires once per Apply that committed something (the feed reads
// it at once), and never for one that wrote nothing: a refused change, a
// lost compare-and-set.
func TestOnCommit(t *testing.T) {
	ctx := context.Background()
	commits := 0
	m := ledgertest.Open(t, ledger.Options{Database: ledgertest.Database(t), OnCommit: func() { commits++ }})
	tests := []struct {
		name    string
		changes []naming.Change
		wantErr error
		want    int
	}{
		{"one bind", []naming.Change{bind("web-0", 0, "i-0", "10.0.0.1")}, nil, 1},
		{"two new names at once", []naming.Change{bind("web-1", 1, "i-1", "10.0.0.2"), bind("web-2", 2, "i-2", "10.0.0.3")}, nil, 2},
		{"invalid change", []naming.Change{{Type: naming.Bind, Hostname: "WEB 3", Service: "web"}}, nil, 2},
		{"lost compare-and-set", []naming.Change{bind("web-0", 0, "i-9", "10.0.0.9")}, ledger.ErrConflict, 2},
	}
	for _, tc := range tests { // in order: each builds on the ledger the one before left
		_, err := m.Apply(ctx, tc.changes)
		if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
			t.Fatalf("%s: Apply = %v, want %v", tc.name, err, tc.wantErr)
		}
		if tc.name != "invalid change" && tc.wantErr == nil && err != nil {
			t.Fatalf("%s: Apply = %v", tc.name, err)
		}
		if commits != tc.want {
			t.Fatalf("%s: OnCommit called %d times in all, want %d", tc.name, commits, tc.want)
		}
	}
	recs, err := m.Records(ctx, "web")
	if err != nil || len(recs) != 3 {
		t.Fatalf("Records = %v, %v; want web-0..2", hostRevs(recs), err)
	}
	r := recs[1]
	mustApply(t, m, naming.Change{Type: naming.Release, Hostname: r.Hostname, Service: r.Service, Scheme: r.Scheme,
		Ordinal: r.Ordinal, ExpectExists: true, ExpectInstanceID: r.InstanceID, ExpectRev: r.Rev})
	if commits != 3 {
		t.Fatalf("release: OnCommit called %d times in all, want 3", commits)
	}
}
