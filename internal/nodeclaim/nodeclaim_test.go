package nodeclaim_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
	"github.com/aerostat-io/aerostat/internal/nodeclaim"
)

func TestMain(m *testing.M) { ledgertest.Main(m) }

var (
	web = naming.Info{Service: "web", Scheme: naming.Iterative}
	db  = naming.Info{Service: "db", Scheme: naming.Masterful}
)

func node(info naming.Info, id string) naming.NodeClaim {
	return naming.NodeClaim{Info: info, InstanceID: id, IP: "10.0.0." + id[len(id)-1:]}
}

func promote(c naming.NodeClaim) naming.NodeClaim {
	c.DesiredMaster = c.InstanceID
	return c
}

func withAliases(c naming.NodeClaim, aliases ...string) naming.NodeClaim {
	c.Info.Aliases = aliases
	return c
}

// refuseDBMaster is the AliasGuard's rule for a ledger where db-master
// exists: no other service's alias may shadow it.
func refuseDBMaster([]naming.Record) naming.AliasRules {
	return naming.AliasRules{Names: map[string]bool{"db-master": true}}
}

func TestClaim(t *testing.T) {
	tests := map[string]struct {
		before  []naming.NodeClaim // claimed first, each must succeed
		claim   naming.NodeClaim
		rules   func([]naming.Record) naming.AliasRules
		want    string
		wantErr error
		// wantHeld is every name of the claim's service afterwards
		// (hostname → instance); nil skips the check.
		wantHeld map[string]string
		// wantAliases are the claimed name's aliases afterwards.
		wantAliases []string
	}{
		"first of an iterative service": {claim: node(web, "i-1"), want: "web-0"},
		"next free number":              {before: []naming.NodeClaim{node(web, "i-1")}, claim: node(web, "i-2"), want: "web-1"},
		"again keeps its name": {before: []naming.NodeClaim{node(web, "i-1"), node(web, "i-2")}, claim: node(web, "i-1"), want: "web-0",
			wantHeld: map[string]string{"web-0": "i-1", "web-1": "i-2"}},
		"first of a masterful service is master": {claim: node(db, "i-1"), want: "db-master"},
		"then slaves from 1":                     {before: []naming.NodeClaim{node(db, "i-1")}, claim: node(db, "i-2"), want: "db-slave-1"},
		"promote a slave: the old master takes its name": {before: []naming.NodeClaim{node(db, "i-1"), node(db, "i-2")}, claim: promote(node(db, "i-2")),
			want: "db-master", wantHeld: map[string]string{"db-master": "i-2", "db-slave-1": "i-1"}},
		"promote a newcomer": {before: []naming.NodeClaim{node(db, "i-1")}, claim: promote(node(db, "i-3")), want: "db-master",
			wantHeld: map[string]string{"db-master": "i-3", "db-slave-1": "i-1"}},
		"promote in an iterative service is refused": {before: []naming.NodeClaim{node(web, "i-1")}, claim: promote(node(web, "i-1")),
			wantErr: nodeclaim.ErrNotMasterful, wantHeld: map[string]string{"web-0": "i-1"}},
		"promote of the master is refused": {before: []naming.NodeClaim{node(db, "i-1"), node(db, "i-2")}, claim: promote(node(db, "i-1")),
			wantErr: nodeclaim.ErrAlreadyMaster, wantHeld: map[string]string{"db-master": "i-1", "db-slave-1": "i-2"}},
		"alias kept": {claim: withAliases(node(web, "i-1"), "www"), rules: refuseDBMaster, want: "web-0", wantAliases: []string{"www"}},
		"alias shadowing another service refused, name still claimed": {before: []naming.NodeClaim{node(db, "i-9")},
			claim: withAliases(node(web, "i-1"), "db-master", "www"), rules: refuseDBMaster, want: "web-0", wantAliases: []string{"www"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			store := ledgertest.New(t)
			opts := nodeclaim.Options{Store: store, Clock: clocktesting.NewFakeClock(time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC))}
			for _, c := range tc.before {
				if _, err := nodeclaim.Claim(ctx, c, opts); err != nil {
					t.Fatalf("claim of %s before the test: %v", c.InstanceID, err)
				}
			}
			rev, err := store.Rev(ctx)
			if err != nil {
				t.Fatal(err)
			}
			opts.AliasRules = tc.rules
			// Preview (register --dry-run) foretells the claim and writes nothing.
			changes, previewed, err := nodeclaim.Preview(ctx, tc.claim, opts)
			if !errors.Is(err, tc.wantErr) || previewed != tc.want {
				t.Errorf("Preview = %q, %v; want %q, %v", previewed, err, tc.want, tc.wantErr)
			}
			if after, _ := store.Rev(ctx); after != rev {
				t.Fatalf("Preview moved the rev from %d to %d", rev, after)
			}
			got, err := nodeclaim.Claim(ctx, tc.claim, opts)
			if err == nil && len(changes) == 0 {
				if after, _ := store.Rev(ctx); after != rev {
					t.Errorf("Preview foresaw no change, Claim moved the rev from %d to %d", rev, after)
				}
			}
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Claim = %q, %v; want %v", got, err, tc.wantErr)
				}
				if after, _ := store.Rev(ctx); after != rev {
					t.Errorf("a refused claim moved the rev from %d to %d", rev, after)
				}
			case err != nil || got != tc.want:
				t.Fatalf("Claim = %q, %v; want %q", got, err, tc.want)
			}
			recs, err := store.Records(ctx, tc.claim.Info.Service)
			if err != nil {
				t.Fatal(err)
			}
			held := map[string]string{}
			for _, r := range recs {
				if !r.Free() {
					held[r.Hostname] = r.InstanceID
				}
				if r.Hostname == got && got != "" && !slices.Equal(r.Aliases, tc.wantAliases) {
					t.Errorf("aliases of %s = %v, want %v", r.Hostname, r.Aliases, tc.wantAliases)
				}
			}
			if tc.wantHeld != nil && !equalMaps(held, tc.wantHeld) {
				t.Errorf("names held = %v, want %v", held, tc.wantHeld)
			}
		})
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestHoldBack(t *testing.T) {
	tests := map[string]struct {
		stored   *ledger.Policy
		want     time.Duration
		wantFrom string
	}{
		"no stored policy: the default": {want: 7 * time.Minute, wantFrom: "default"},
		"the controller's policy":       {stored: &ledger.Policy{Service: "web", HoldBack: 3 * time.Minute, Source: "NamingService web"}, want: 3 * time.Minute, wantFrom: "ledger policy set by NamingService web"},
		"a stored zero is zero":         {stored: &ledger.Policy{Service: "web", Source: "x"}, want: 0, wantFrom: "ledger policy set by x"},
		"another service's policy":      {stored: &ledger.Policy{Service: "db", HoldBack: time.Hour}, want: 7 * time.Minute, wantFrom: "default"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			store := ledgertest.New(t)
			if tc.stored != nil {
				if err := store.PutPolicy(ctx, *tc.stored); err != nil {
					t.Fatal(err)
				}
			}
			got, from, err := nodeclaim.HoldBack(ctx, store, "web", 7*time.Minute)
			if err != nil || got != tc.want || from != tc.wantFrom {
				t.Fatalf("HoldBack = %v, %q, %v; want %v, %q", got, from, err, tc.want, tc.wantFrom)
			}
		})
	}
}
