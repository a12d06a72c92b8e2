package ledger

import (
	"context"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// Split Apply's two steps so tests can interleave writers between them.

func (m *Mongo) TakeRev(ctx context.Context) (int64, error) { return m.nextRev(ctx) }

func (m *Mongo) WriteWithRev(ctx context.Context, c naming.Change, rev int64) error {
	return m.write(ctx, c, rev)
}
