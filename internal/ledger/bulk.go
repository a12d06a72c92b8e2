package ledger

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// insertChunk bounds one InsertMany. It must not exceed FerretDB v1's
// internal insert batch (100 documents, fixed in its ferretdb package):
// after a duplicate key in one batch, an ordered insert there still
// writes the next batch of the same command before it stops, which would
// commit changes after a lost compare-and-set. Within one batch it stops
// at the failing document, as MongoDB does. A lost reply also leaves at
// most this many writes unsure.
const insertChunk = 100

// newNames counts the leading changes that create a record (a Bind of a
// name not in the ledger yet).
func newNames(changes []naming.Change) int {
	for i, c := range changes {
		if c.Type != naming.Bind || c.ExpectExists {
			return i
		}
	}
	return len(changes)
}

// insertMany creates the records of consecutive new-name Binds (see
// newNames) in ordered InsertMany batches, each stamped from one block of
// revs taken with a single counter increment: naming a fleet from nothing
// costs a few round trips a thousand names, not three a name. Only with
// the unique hostname index: a name taken since the plan (by a racing
// writer or a 1.x client) is then a duplicate key, which stops the ordered
// batch there, as Apply's contract asks: the changes before it are
// committed, it is a lost compare-and-set, those after it are not written.
//
// It returns how many changes were committed and, if not all, why.
func (m *Mongo) insertMany(ctx context.Context, changes []naming.Change) (int, error) {
	done := 0
	for done < len(changes) {
		chunk := changes[done:min(done+insertChunk, len(changes))]
		last, err := m.takeRevs(ctx, int64(len(chunk)))
		if err != nil {
			return done, err
		}
		first := last - int64(len(chunk)) + 1
		now := m.opts.Clock.Now().UTC()
		docs := make([]bson.Raw, len(chunk))
		for i, c := range chunk {
			d := append(bson.D{
				{Key: "_id", Value: bson.NewObjectID()}, {Key: "hostname", Value: c.Hostname},
				{Key: "rev", Value: first + int64(i)}, {Key: "updated_at", Value: now},
			}, bindFields(c, now)...)
			if docs[i], err = bson.Marshal(d); err != nil {
				return done, fmt.Errorf("encoding record %s: %w", c.Hostname, err)
			}
		}
		_, err = m.servers.InsertMany(ctx, docs, options.InsertMany().SetOrdered(true))
		if err == nil {
			m.logCommitted(ctx, docs...)
			done += len(chunk)
			continue
		}
		var bwe mongo.BulkWriteException
		if errors.As(err, &bwe) && len(bwe.WriteErrors) > 0 && bwe.WriteConcernError == nil {
			// Ordered: the documents before the first failed one committed.
			at := bwe.WriteErrors[0].Index
			m.logCommitted(ctx, docs[:at]...)
			done += at
			if mongo.IsDuplicateKeyError(bwe.WriteErrors[0]) {
				return done, &ConflictError{Hostname: changes[done].Hostname, Change: changes[done]}
			}
			return done, err
		}
		// Lost reply, timeout, write concern: any prefix may have
		// committed; settle finds out at the next call.
		for i, c := range chunk {
			m.addUnsure(c.Hostname, first+int64(i))
		}
		return done, err
	}
	return done, nil
}

// takeRevs takes n revs from the counter at once and returns the highest;
// the block is (last-n, last].
func (m *Mongo) takeRevs(ctx context.Context, n int64) (int64, error) {
	var doc bson.Raw
	err := m.meta.FindOneAndUpdate(ctx,
		bson.D{{Key: "_id", Value: revDocID}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: n}}}},
		options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After),
	).Decode(&doc)
	if err != nil {
		return 0, fmt.Errorf("taking %d revs: %w", n, err)
	}
	last, ok := intValue(doc.Lookup("n"))
	if !ok || last < n {
		return 0, fmt.Errorf("taking %d revs: counter document holds %v", n, doc.Lookup("n"))
	}
	return last, nil
}
