package ledger_test

import (
	"testing"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
)

// TestCapabilitiesLookThroughCaches: a Cache has the release log's and
// policies' methods whatever it wraps; ReleaseLogOf and PolicyStoreOf
// report what the store underneath keeps.
func TestCapabilitiesLookThroughCaches(t *testing.T) {
	m := ledgertest.New(t)
	storeOnly := struct{ ledger.Store }{m}
	tests := map[string]struct {
		store ledger.Store
		want  bool
	}{
		"mongo":                       {m, true},
		"cache over mongo":            {ledger.NewCache(m, ledger.FollowerOptions{}), true},
		"store only":                  {storeOnly, false},
		"cache over store only":       {ledger.NewCache(storeOnly, ledger.FollowerOptions{}), false},
		"cache over cache over store": {ledger.NewCache(ledger.NewCache(storeOnly, ledger.FollowerOptions{}), ledger.FollowerOptions{}), false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if _, ok := ledger.ReleaseLogOf(tc.store); ok != tc.want {
				t.Errorf("ReleaseLogOf = %v, want %v", ok, tc.want)
			}
			if _, ok := ledger.PolicyStoreOf(tc.store); ok != tc.want {
				t.Errorf("PolicyStoreOf = %v, want %v", ok, tc.want)
			}
		})
	}
}
