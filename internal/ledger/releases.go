package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
)

// releasesCollection holds one document per service listing the names the
// controller released recently (collection aerostat.releases, ignored by
// 1.x). The release budget is counted from it, so a wrong listing that
// still looks complete cannot free most names by running pass after pass,
// nor by restarting the controller or moving its leadership: the count
// lives in the ledger, not in a process.
//
// Reads are exact-_id finds (pushed down to SQL on the embedded store);
// the compare-and-set write filters on _id and a version, which the
// embedded store checks in Go over a collection of one document per
// service.
const releasesCollection = "releases"

// ReleaseEntry is one pass's releases: when, and how many.
type ReleaseEntry struct {
	At    time.Time `bson:"t"`
	Count int       `bson:"n"`
}

// ReleaseWindow is a service's recent releases as stored. Version is 0
// when the service has no document yet.
type ReleaseWindow struct {
	Service string         `bson:"_id"`
	Version int64          `bson:"v"`
	Entries []ReleaseEntry `bson:"e"`
}

// ReleaseLog keeps each service's recent releases.
//
// Error contract: ReleaseWindow fails only when the store could not be
// read (a missing document is an empty window, not an error).
// PutReleaseWindow writes w only if the stored version is still
// w.Version; otherwise it changes nothing and returns an error wrapping
// ErrConflict (another controller reserved in between: re-read, re-plan).
// Any other error means the write may not have happened; the document is
// never half-written.
type ReleaseLog interface {
	ReleaseWindow(ctx context.Context, service string) (ReleaseWindow, error)
	PutReleaseWindow(ctx context.Context, w ReleaseWindow) error
}

var _ ReleaseLog = (*Mongo)(nil)

func (m *Mongo) releases() *mongo.Collection {
	return m.client.Database(m.opts.Database).Collection(releasesCollection,
		options.Collection().SetWriteConcern(writeconcern.Majority()).SetReadConcern(readconcern.Majority()))
}

// ReleaseWindow implements ReleaseLog.
func (m *Mongo) ReleaseWindow(ctx context.Context, service string) (ReleaseWindow, error) {
	var w ReleaseWindow
	err := m.releases().FindOne(ctx, bson.D{{Key: "_id", Value: service}}).Decode(&w)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return ReleaseWindow{Service: service}, nil
	case err != nil:
		return ReleaseWindow{}, fmt.Errorf("reading release window of service %q: %w", service, err)
	}
	return w, nil
}

// PutReleaseWindow implements ReleaseLog; the stored version becomes
// w.Version+1.
func (m *Mongo) PutReleaseWindow(ctx context.Context, w ReleaseWindow) error {
	if m.opts.ReadOnly {
		return fmt.Errorf("writing release window of service %q: ledger opened read-only", w.Service)
	}
	entries := bson.A{}
	for _, e := range w.Entries {
		entries = append(entries, bson.D{{Key: "t", Value: e.At.UTC()}, {Key: "n", Value: e.Count}})
	}
	if w.Version == 0 {
		_, err := m.releases().InsertOne(ctx, bson.D{{Key: "_id", Value: w.Service}, {Key: "v", Value: int64(1)}, {Key: "e", Value: entries}})
		if mongo.IsDuplicateKeyError(err) {
			return fmt.Errorf("creating release window of service %q: another writer created it: %w", w.Service, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("creating release window of service %q: %w", w.Service, err)
		}
		return nil
	}
	res, err := m.releases().UpdateOne(ctx,
		bson.D{{Key: "_id", Value: w.Service}, {Key: "v", Value: w.Version}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: w.Version + 1}, {Key: "e", Value: entries}}}},
		options.UpdateOne())
	if err != nil {
		return fmt.Errorf("updating release window of service %q: %w", w.Service, err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("updating release window of service %q: no longer at version %d: %w", w.Service, w.Version, ErrConflict)
	}
	return nil
}

var _ ReleaseLog = (*Cache)(nil)

// ReleaseLogOf returns s's release log, if the store under s keeps one. A
// Cache has ReleaseLog's methods whatever it wraps, so a type assertion on
// one cannot tell; callers that treat "no release log" as "no budget"
// must ask here, or every pass over a Cache of such a store fails.
func ReleaseLogOf(s Store) (ReleaseLog, bool) { return keeps[ReleaseLog](s) }

// keeps returns s as T if the store under s, looking through caches,
// implements T.
func keeps[T any](s Store) (T, bool) {
	if c, ok := s.(*Cache); ok {
		if _, ok := keeps[T](c.store); !ok {
			var none T
			return none, false
		}
		t, ok := any(c).(T)
		return t, ok
	}
	t, ok := s.(T)
	return t, ok
}

// ReleaseWindow implements ReleaseLog through the underlying store
// (windows are not cached: a stale count could overspend the budget).
// Errors: the store's, or one saying it keeps no release windows.
func (c *Cache) ReleaseWindow(ctx context.Context, service string) (ReleaseWindow, error) {
	rl, ok := c.store.(ReleaseLog)
	if !ok {
		return ReleaseWindow{}, fmt.Errorf("reading release window of service %q: %T keeps none", service, c.store)
	}
	return rl.ReleaseWindow(ctx, service)
}

// PutReleaseWindow implements ReleaseLog through the underlying store; see
// ReleaseWindow.
func (c *Cache) PutReleaseWindow(ctx context.Context, w ReleaseWindow) error {
	rl, ok := c.store.(ReleaseLog)
	if !ok {
		return fmt.Errorf("writing release window of service %q: %T keeps none", w.Service, c.store)
	}
	return rl.PutReleaseWindow(ctx, w)
}
