package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// Fields 2.x adds to a 1.x document; 1.x clients ignore them.
var newFields = []string{"role", "ordinal", "rev", "updated_at"}

// Document is one stored document as `aerostat adopt` sees it: the record
// decoded from it (1.x tolerant), its _id, and the 2.x fields it lacks.
type Document struct {
	Record naming.Record
	// ID is the _id as text (ObjectID hex for 1.x documents).
	ID string
	// Missing lists the fields of newFields the document does not have.
	Missing []string
	// Onex lists the 1.x fields it lacks or holds with a type 1.x
	// clients cannot read (see onexRepair); Backfill writes them.
	Onex []string
	onex bson.D
	// Created is the time in an ObjectID _id (zero otherwise): for 1.x
	// documents, which have no updated_at, the best age there is.
	Created bson.DateTime

	id bson.RawValue
}

// Documents reads every document of the servers collection, duplicates
// included (Records keeps them too, but without their ids). Documents
// without a usable hostname are skipped and returned as problems.
func (m *Mongo) Documents(ctx context.Context) ([]Document, []string, error) {
	cur, err := m.servers.Find(ctx, bson.D{}, options.Find().SetBatchSize(5000))
	if err != nil {
		return nil, nil, fmt.Errorf("reading documents: %w", err)
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	var (
		docs     []Document
		problems []string
	)
	for cur.Next(ctx) {
		raw := slices.Clone(cur.Current)
		rec, probs, ok := decodeRecord(raw)
		problems = append(problems, probs...)
		if !ok {
			continue
		}
		rec = inferRecord(raw, rec)
		d := Document{Record: rec, ID: docID(raw), id: raw.Lookup("_id")}
		d.Onex, d.onex = onexRepair(raw, rec)
		if oid, isOID := d.id.ObjectIDOK(); isOID {
			d.Created = bson.NewDateTimeFromTime(oid.Timestamp())
		}
		for _, f := range newFields {
			if v, err := raw.LookupErr(f); err != nil || v.Type == bson.TypeNull {
				d.Missing = append(d.Missing, f)
			}
		}
		docs = append(docs, d)
	}
	if err := cur.Err(); err != nil {
		return nil, nil, fmt.Errorf("reading documents: %w", err)
	}
	slices.SortFunc(docs, func(a, b Document) int {
		if c := cmpRecords(a.Record, b.Record); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return docs, problems, nil
}

// casFilter matches the document only while it still is what was read:
// same _id, holder and rev (or, read without one, still without one).
func (d Document) casFilter() bson.D {
	f := bson.D{{Key: "_id", Value: d.id}}
	if d.Record.InstanceID == "" {
		// 1.x gaps may hold "" or null, or lack the field.
		f = append(f, bson.E{Key: "instance_id", Value: bson.D{{Key: "$in", Value: bson.A{"", nil}}}})
	} else {
		f = append(f, bson.E{Key: "instance_id", Value: d.Record.InstanceID})
	}
	if d.Record.Rev == 0 {
		f = append(f, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "rev", Value: int64(0)}},
			bson.D{{Key: "rev", Value: bson.D{{Key: "$exists", Value: false}}}},
		}})
	} else {
		f = append(f, bson.E{Key: "rev", Value: d.Record.Rev})
	}
	return f
}

// Backfill gives a document the 2.x fields it lacks (role and ordinal as
// derived from its hostname), the 1.x fields it lacks or holds with the
// wrong type (Onex), and a fresh rev and updated_at, so followers
// re-read it, as one compare-and-set on the document as read. A lost
// compare-and-set returns an error wrapping ErrConflict.
func (m *Mongo) Backfill(ctx context.Context, d Document) error {
	if m.opts.ReadOnly {
		return fmt.Errorf("backfilling %s: ledger opened read-only", d.Record.Hostname)
	}
	rev, err := m.nextRev(ctx)
	if err != nil {
		return err
	}
	set := bson.D{{Key: "rev", Value: rev}, {Key: "updated_at", Value: m.opts.Clock.Now().UTC()}}
	if slices.Contains(d.Missing, "role") {
		set = append(set, bson.E{Key: "role", Value: string(d.Record.Role)})
	}
	if slices.Contains(d.Missing, "ordinal") {
		set = append(set, bson.E{Key: "ordinal", Value: int64(d.Record.Ordinal)})
	}
	set = append(set, d.onex...)
	var doc bson.Raw
	err = m.servers.FindOneAndUpdate(ctx, d.casFilter(), bson.D{{Key: "$set", Value: set}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return fmt.Errorf("backfilling %s (%s): %w", d.Record.Hostname, d.ID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("backfilling %s (%s): %w", d.Record.Hostname, d.ID, err)
	}
	m.logCommitted(ctx, doc)
	return nil
}

// Remove deletes one document (a duplicate hostname left by a 1.x race)
// as a compare-and-set on the document as read. A lost compare-and-set
// returns an error wrapping ErrConflict. Followers learn of the deletion
// when the kept document of the same hostname is rewritten (Backfill) or
// at their next full resync.
func (m *Mongo) Remove(ctx context.Context, d Document) error {
	if m.opts.ReadOnly {
		return fmt.Errorf("removing %s: ledger opened read-only", d.Record.Hostname)
	}
	res, err := m.servers.DeleteOne(ctx, d.casFilter())
	if err != nil {
		return fmt.Errorf("removing %s (%s): %w", d.Record.Hostname, d.ID, err)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("removing %s (%s): %w", d.Record.Hostname, d.ID, ErrConflict)
	}
	return nil
}

// EnsureUniqueHostname builds the unique index on hostname that Open could
// not build while duplicates existed. An existing index is not an error.
func (m *Mongo) EnsureUniqueHostname(ctx context.Context) error {
	if _, err := m.ensureHostnameIndex(ctx); err != nil {
		return fmt.Errorf("creating unique index on hostname: %w", err)
	}
	m.mu.Lock()
	m.openProblems = nil
	m.mu.Unlock()
	return nil
}
