package client_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
	"github.com/aerostat-io/aerostat/internal/store/embedded"
)

// TestMain gives the Examples what a real admin host has: AEROSTAT_SERVER
// pointing at a ledger that holds a web and a db service. It is an
// embedded store seeded here; the tests share it through ledgertest (one
// database each) unless AEROSTAT_TEST_MONGODB_URI names a real MongoDB.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "aerostat-client-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	srv, err := embedded.Start(ctx, embedded.Options{DataDir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting embedded store:", err)
		return 1
	}
	defer srv.Close()
	if err := seedExample(ctx, srv.URI()); err != nil {
		fmt.Fprintln(os.Stderr, "seeding example ledger:", err)
		return 1
	}
	os.Setenv("AEROSTAT_SERVER", srv.URI())
	if os.Getenv(ledgertest.EnvURI) == "" {
		os.Setenv(ledgertest.EnvURI, srv.URI())
	}
	return m.Run()
}

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

// seedExample names web-0, web-1 (then frees it: a gap), web-2, db-master
// and db-slave-1 in the default database.
func seedExample(ctx context.Context, uri string) error {
	m, err := ledger.Open(ctx, uri, ledger.Options{})
	if err != nil {
		return err
	}
	defer m.Close(ctx)
	return seed(ctx, m)
}

func seed(ctx context.Context, store ledger.Store) error {
	web := instances("i-0a00000000000000", "10.0.1.", 3)
	if err := plan(ctx, store, "web", naming.Iterative, web); err != nil {
		return err
	}
	web[1].State = naming.StateTerminated
	if err := plan(ctx, store, "web", naming.Iterative, web); err != nil {
		return err
	}
	return plan(ctx, store, "db", naming.Masterful, instances("i-0d00000000000000", "10.0.2.", 2))
}

func instances(idPrefix, ipPrefix string, n int) []naming.Instance {
	var out []naming.Instance
	for i := range n {
		out = append(out, naming.Instance{
			ID:         fmt.Sprintf("%s%d", idPrefix, i+1),
			PrivateIP:  fmt.Sprintf("%s%d", ipPrefix, i+1),
			State:      naming.StateRunning,
			LaunchTime: t0.Add(time.Duration(i) * time.Minute),
		})
	}
	return out
}

func plan(ctx context.Context, store ledger.Store, service string, scheme naming.Scheme, in []naming.Instance) error {
	_, err := ledger.Claim(ctx, store, service, func(recs []naming.Record) (naming.Result, error) {
		return naming.Plan(naming.Input{
			Policy:   naming.Policy{Service: service, Scheme: scheme},
			Records:  recs,
			Observed: naming.Observation{Instances: in, Complete: true},
			Now:      t0.Add(time.Hour),
		})
	})
	return err
}
