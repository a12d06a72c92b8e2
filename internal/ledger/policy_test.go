package ledger_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
)

func TestPolicyStore(t *testing.T) {
	ctx := context.Background()
	m := ledgertest.New(t)
	if _, found, err := m.Policy(ctx, "web"); err != nil || found {
		t.Fatalf("policy of a fresh ledger: found %v, %v", found, err)
	}
	want := ledger.Policy{Service: "web", HoldBack: 0, StoppedGracePeriod: time.Hour, GracePeriod: 5 * time.Minute, MaxReleaseFraction: 0.5, Source: "controller --standalone"}
	if err := m.PutPolicy(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, found, err := m.Policy(ctx, "web")
	if err != nil || !found || !got.Same(want) || got.Source != want.Source {
		t.Fatalf("policy = %+v, %v, %v; want %+v", got, found, err, want)
	}

	bad := map[string]struct {
		p    ledger.Policy
		want string
	}{
		"service":  {ledger.Policy{Service: "Web_1"}, `service "Web_1"`},
		"holdBack": {ledger.Policy{Service: "web", HoldBack: -time.Second}, "holdBack -1s"},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			if err := m.PutPolicy(ctx, tc.p); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("PutPolicy(%+v) = %v, want an error naming %s", tc.p, err, tc.want)
			}
			if got, _, _ := m.Policy(ctx, "web"); !got.Same(want) {
				t.Errorf("a refused policy changed the stored one: %+v", got)
			}
		})
	}
	all, err := m.Policies(ctx)
	if err != nil || len(all) != 1 {
		t.Errorf("Policies = %+v, %v", all, err)
	}
}
