package main

import (
	"context"
	"errors"

	"github.com/go-logr/logr"

	"github.com/aerostat-io/aerostat/internal/ledger"
)

// errWritableCredentials refuses an agent whose ledger credentials can
// write: the agent only reads, and a node holding write access to the
// ledger can move any name to its own address.
var errWritableCredentials = errors.New("the --ledger credentials can write the ledger; the agent needs only read access " +
	"(a MongoDB user with the read role on the aerostat database), or use --feed; " +
	"--allow-write-credentials accepts them (the 1.x migration mode, where nodes share one read-write user)")

// checkAgentCredentials refuses credentials that can write unless allowed.
// A store that cannot be asked now (down) is logged, not fatal: the agent
// starts while the store is down, and keeps the hosts file as it was.
func checkAgentCredentials(ctx context.Context, store *ledger.Mongo, allow bool, log logr.Logger) error {
	canWrite, err := store.CredentialsCanWrite(ctx)
	switch {
	case err != nil:
		log.Error(err, "could not check that the ledger credentials are read-only; starting anyway")
	case canWrite && allow:
		log.Info("the ledger credentials can write; accepted by --allow-write-credentials")
	case canWrite:
		return errWritableCredentials
	}
	return nil
}
