// Package ledger stores Aerostat's names in MongoDB (database "aerostat",
// collection "servers", the 1.x layout) and applies planner changes as
// per-document compare-and-set writes.
package ledger

import (
	"context"
	"errors"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// ErrConflict is returned (wrapped in *ConflictError) when a record no
// longer matches what the planner saw. The caller re-reads and re-plans.
var ErrConflict = errors.New("ledger: record changed since it was read")

// Store is the ledger as the controller, agents and CLI use it.
//
// Error contract: read methods return an error only when the store could not
// be read completely; they never return partial data with a nil error.
// Apply writes changes in order and stops at the first failure; changes
// before it are committed, the failing one and those after it are not.
type Store interface {
	// Records returns the records of one service, or all services for "".
	Records(ctx context.Context, service string) ([]naming.Record, error)
	// Apply applies planned changes; see the error contract above. A lost
	// compare-and-set returns an error wrapping ErrConflict.
	Apply(ctx context.Context, changes []naming.Change) (applied int, err error)
	// Changes returns the records written with rev > since and the highest
	// rev the store has handed out. Revs are taken before commit, so commits
	// can land out of order: read through a Follower, which re-reads an
	// overlap window.
	Changes(ctx context.Context, since int64) (records []naming.Record, rev int64, err error)
	// Rev returns the highest rev handed out so far.
	Rev(ctx context.Context) (int64, error)
}
