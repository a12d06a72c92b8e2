package ledger

import (
	"context"
	"fmt"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// TakeRev and WriteWithRev are Apply's two steps for one change, apart:
// fault and race tests (here and in the agent and reliability packages)
// use them to make writers commit out of order, as a writer that stalls
// between taking its rev and committing does.

// TakeRev takes the next rev from the counter without writing anything.
func (m *Mongo) TakeRev(ctx context.Context) (int64, error) { return m.nextRev(ctx) }

// WriteWithRev validates c and commits it stamped with rev (from TakeRev),
// change log entry included. A lost compare-and-set wraps ErrConflict.
func (m *Mongo) WriteWithRev(ctx context.Context, c naming.Change, rev int64) error {
	if err := Validate([]naming.Change{c}); err != nil {
		return fmt.Errorf("applying change: %w", err)
	}
	return m.write(ctx, c, rev)
}
