package ledger

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ErrWatchUnsupported is returned by Watch when the server has no change
// streams (a standalone mongod, FerretDB): the caller polls Rev instead.
var ErrWatchUnsupported = errors.New("ledger: server has no change streams")

// Watch opens a change stream on the servers collection and sends on the
// returned channel (capacity 1, coalescing) after each write. The events
// carry nothing: a reader woken by one still reads Changes(rev > last), so
// the overlap rule keeps applying. The channel is closed when ctx ends or
// the stream fails; the caller then polls and may call Watch again.
//
// Errors: ErrWatchUnsupported (wrapped) when the server refuses a change
// stream for any reason; agents fall back to polling, so a read-only user
// without the changeStream privilege still works.
func (m *Mongo) Watch(ctx context.Context) (<-chan struct{}, error) {
	// Only the fact of a change matters; the projection keeps events small.
	pipeline := bson.A{bson.D{{Key: "$project", Value: bson.D{{Key: "_id", Value: 1}}}}}
	cs, err := m.servers.Watch(ctx, pipeline, options.ChangeStream().SetBatchSize(64))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWatchUnsupported, err)
	}
	ch := make(chan struct{}, 1)
	go func() {
		defer close(ch)
		defer func() { _ = cs.Close(context.WithoutCancel(ctx)) }()
		for cs.Next(ctx) {
			select {
			case ch <- struct{}{}:
			default: // a wake-up is already pending
			}
		}
		if err := cs.Err(); err != nil && ctx.Err() == nil {
			m.log.Info("ledger change stream ended; polling", "error", err.Error())
		}
	}()
	return ch, nil
}
