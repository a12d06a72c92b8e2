//go:build !agentonly

package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"

	"github.com/aerostat-io/aerostat/client"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/store/embedded"
)

// storeFlags say which ledger an operator command works on: a MongoDB
// (--ledger, the same default as every command) or, when --data-dir is
// given instead, the embedded store's files the controller keeps there.
type storeFlags struct {
	server, dataDir, database string
	// fl tells whether --data-dir or --ledger was given.
	fl *pflag.FlagSet
	// createDataDir makes a missing --data-dir (the controller owns its
	// store); operator commands instead refuse one, as a typo there would
	// otherwise show an empty ledger.
	createDataDir bool
	// onCommit is ledger.Options.OnCommit (the controller wakes its feed).
	onCommit func()
}

func (f *storeFlags) register(fl *pflag.FlagSet) {
	f.fl = fl
	addLedgerFlag(fl, &f.server, defaultLedger(), ledgerFlagHelp+"; --data-dir without --ledger opens the embedded store instead", true)
	fl.StringVar(&f.dataDir, "data-dir", defaultDataDir(), "embedded store directory: read when given without --ledger (or --ledger \"\")")
	fl.StringVar(&f.database, "database", ledger.DefaultDatabase, "ledger database")
}

// open connects to the ledger (starting the embedded store on --data-dir
// when --ledger is empty, or --data-dir alone was given). readOnly opens
// without any write, not even the index setup. The returned func closes
// both.
func (f *storeFlags) open(ctx context.Context, readOnly bool, logger logr.Logger) (*ledger.Mongo, func(), error) {
	uri := ""
	var srv *embedded.Server
	if f.fl != nil && f.fl.Changed("data-dir") && !ledgerChanged(f.fl) {
		f.server = ""
	}
	if f.server != "" {
		var err error
		if uri, err = client.ServerURI(f.server); err != nil {
			return nil, nil, fmt.Errorf("--ledger: %w", err)
		}
	} else {
		if f.createDataDir {
			if err := os.MkdirAll(f.dataDir, 0o750); err != nil {
				return nil, nil, fmt.Errorf("--data-dir %q: %w", f.dataDir, err)
			}
		} else if _, err := os.Stat(f.dataDir); err != nil {
			return nil, nil, fmt.Errorf("--data-dir %q: %w (or give --ledger)", f.dataDir, err)
		}
		var err error
		srv, err = embedded.Start(ctx, embedded.Options{DataDir: f.dataDir, Logger: logger.WithName("store")})
		if err != nil {
			return nil, nil, fmt.Errorf("starting embedded store in %q: %w", f.dataDir, err)
		}
		uri = srv.URI()
	}
	m, err := ledger.Open(ctx, uri, ledger.Options{Database: f.database, ReadOnly: readOnly, Logger: logger.WithName("ledger"), OnCommit: f.onCommit})
	if err != nil {
		if srv != nil {
			_ = srv.Close()
		}
		return nil, nil, fmt.Errorf("opening ledger: %w", err)
	}
	return m, func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = m.Close(cctx)
		if srv != nil {
			_ = srv.Close()
		}
	}, nil
}
