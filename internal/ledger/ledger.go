// Package ledger stores Aerostat's names in MongoDB (database "aerostat",
// collection "servers", the 1.x layout) and applies planner changes as
// per-document compare-and-set writes.
//
// # What each call sends, and why it is fast on both backends
//
// The same queries run on MongoDB and on the embedded FerretDB v1 on
// SQLite. FerretDB pushes down to SQL only a filter that is exactly
// {_id: <string|ObjectId>}; any other filter decodes every document of the
// collection in Go. Its pushed-down query expression misses its own _id
// index, so the embedded store adds an index on that exact expression to
// each collection written through it (store/embedded/idindex.go): an
// exact-_id read or write then touches one row. A plain insert queries nothing (the
// unique indexes check it). MongoDB serves every filter below from an
// index. So the hot paths send inserts and exact-_id reads and writes,
// and the collection of names is read whole only by full
// reads (a follower's first read and its periodic resync, a one-shot CLI).
//
//   - Rev: find meta {_id: "rev"}. takeRevs (every write): findAndModify
//     meta {_id: "rev"} $inc n. One document, exact _id on both.
//   - Apply, a new name (Bind, ExpectExists false) with the unique hostname
//     index: insert servers (a run of them: ordered InsertMany, 100 a batch,
//     one $inc for the batch's revs). No query on either backend; the unique
//     index makes a second holder a duplicate key, reported as a lost
//     compare-and-set (see bulk.go for the FerretDB batch limit). Without
//     the index (1.x duplicates): upsert {hostname} $setOnInsert.
//   - Apply, any other change: findAndModify servers {_id, hostname,
//     instance_id, rev} $set, returning the post-image. The _id is the one
//     this ledger last saw for the hostname (every document it reads or
//     writes teaches it; docids.go); a hostname it has not seen yet, or
//     whose last compare-and-set lost, sends the filter without _id (a
//     FerretDB scan, once). MongoDB: the _id index finds the document, the
//     rest is checked on it, atomically; a stale _id (a 1.x client deleted
//     and re-inserted the name) matches nothing, a lost compare-and-set
//     whose retry filters by hostname. FerretDB: the store's serializer,
//     which already lets one write command through at a time, sends find
//     {_id} (limit 1), checks hostname, instance_id and rev on that one
//     document, and then sends the findAndModify with its filter cut to
//     {_id} (or answers "no document" itself); store/embedded/byid.go.
//     Every write, a 1.x client's unconditional update by hostname or
//     insert included, reaches FerretDB through that serializer, so none
//     runs between the check and the write: as atomic as MongoDB's
//     single-document findAndModify. Both commands are exact _id: one
//     document, whatever the fleet. TestCompareAndSetNeverScans counts
//     them through the store's query log.
//   - After each committed write: update changes {_id: "c<rev/64>"} $push
//     (upsert), and on a new bucket delete changes {_id: "c<bucket-10>"}.
//     Exact _id on a collection of at most 10 documents of up to 64 records.
//   - Changes(since): Rev, find changes {_id: "c<b>"} for each bucket from
//     since to the counter, Rev again; one to three buckets for a follower
//     that keeps up. Below the log's floor (since more than 512 revs back,
//     or buckets trimmed while reading): find servers {rev: {$gt: since}},
//     MongoDB's rev index, a FerretDB scan; correct, only slower.
//   - Records(service): find servers {service} (or {}): a full read.
//   - Cache.Records: Rev, then Changes only when something was written; the
//     plan is made from the copy. Cache.Apply is Apply.
//
// Correctness does not rest on the change log: every write is still a
// single-document compare-and-set (or a unique insert), so a plan made from
// a stale copy loses its write and is re-planned after a delta (Claim,
// Cache). A write whose log entry is missing (a crash between the two
// writes, a 1.x client, an older 2.x) is found by the followers' periodic
// full resync, and by a Cache after repeated lost writes.
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

// RecordWalker is a Store that can hand over a read of records one at a
// time, so that a reader keeping its own copy (a Follower) builds it
// without a slice of every record in between: at 50,000 names that slice
// and its growth were the largest allocation of a controller's start.
//
// Error contract: WalkRecords calls fn with each record of service (every
// service for ""), in no particular order, and returns nil once it has
// handed over every one; an error means the read was incomplete, and the
// records fn saw so far must be dropped. fn must not call the store.
type RecordWalker interface {
	WalkRecords(ctx context.Context, service string, fn func(naming.Record)) error
}

// SettledStore is a Store that can also tell how far its writes are known
// committed (Mongo can, from its change log). A store that cannot leaves
// its readers to the overlap rule alone (see Follower).
type SettledStore interface {
	Store
	// ChangesSettled is Changes plus settled (since <= settled <= rev):
	// every write with a rev at or below settled has committed and is in
	// this result or a read below since. A rev that was taken but has no
	// committed write (in flight, a lost compare-and-set, a crashed
	// writer) stops settled below it; errors as Changes.
	ChangesSettled(ctx context.Context, since int64) (records []naming.Record, rev, settled int64, err error)
}

// changesSettled reads Changes from store, with settled where the store
// knows it and since (nothing known beyond the caller's mark) where not.
func changesSettled(ctx context.Context, store Store, since int64) ([]naming.Record, int64, int64, error) {
	if s, ok := keeps[SettledStore](store); ok {
		return s.ChangesSettled(ctx, since)
	}
	recs, rev, err := store.Changes(ctx, since)
	return recs, rev, since, err
}
