package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// The change log (collection aerostat.changes, ignored by 1.x) makes a
// delta read cost what changed, not the size of the fleet.
//
// Every write that commits a record at rev r also pushes the record as
// committed (the write's post-image) into the log document of bucket
// r/changeBucket, whose _id is "c<bucket>". A delta read Changes(since)
// then fetches the buckets from since to the counter, one exact-_id read
// each: the only filter the embedded store (FerretDB on SQLite) answers in
// SQL instead of decoding every document of the collection in Go, and a
// point read of the _id index on MongoDB. Buckets rather than one document
// a rev keep a poll to one or two reads, and the collection small: the
// embedded store's _id lookup still parses every row of that collection
// in SQL, so each log read or append costs what the log holds (about 640
// records), whatever the fleet's size. Few large buckets rather than many
// small ones make a batch of new names a couple of appends.
//
// The log entry is written after the record, so a reader can see a record
// before its entry but never an entry before its record. Readers already
// re-read an overlap window for writers that took their rev before
// committing (see Follower); a writer that crashes between the two writes, a
// 1.x client (no rev) and an older 2.x binary (no log) leave no entry and
// are caught by the readers' periodic full read.
//
// The log keeps changeKeep buckets: whoever creates a bucket deletes the
// one changeKeep below it. A delta that reaches below what is certainly
// kept (changeWindow revs under the counter) reads the servers collection
// instead: correct, only slower.
const (
	changesCollection = "changes"
	changeBucket      = 64
	changeKeep        = 10
	// changeWindow is how far below the counter a delta may start and still
	// be served from the log: two buckets short of what is kept, so a
	// bucket created (and its old neighbour deleted) while a reader works
	// never removes one the reader still needs.
	changeWindow = (changeKeep - 2) * changeBucket
)

func bucketOf(rev int64) int64 { return rev / changeBucket }

func bucketID(b int64) string { return "c" + strconv.FormatInt(b, 10) }

// logChanges appends committed documents (each carrying its rev) to the
// log. Documents are grouped by bucket, one $push each. A failure is
// returned but the records are already committed: callers report it and
// move on (readers' resync covers the missing entry).
func (m *Mongo) logChanges(ctx context.Context, docs []bson.Raw) error {
	var (
		cur     int64 = -1
		entries bson.A
	)
	flush := func() error {
		if len(entries) == 0 {
			return nil
		}
		err := m.pushBucket(ctx, cur, entries)
		entries = nil
		return err
	}
	for _, d := range docs {
		rev, ok := intValue(d.Lookup("rev"))
		if !ok || rev <= 0 {
			continue
		}
		if b := bucketOf(rev); b != cur {
			if err := flush(); err != nil {
				return err
			}
			cur = b
		}
		entries = append(entries, bson.D{{Key: "r", Value: rev}, {Key: "d", Value: d}})
	}
	return flush()
}

// pushBucket appends entries to bucket b, creating it (and trimming the
// log) when it is new. An upsert can lose a creation race on MongoDB with
// a duplicate key error; the bucket then exists and the push is retried.
func (m *Mongo) pushBucket(ctx context.Context, b int64, entries bson.A) error {
	update := bson.D{
		{Key: "$push", Value: bson.D{{Key: "e", Value: bson.D{{Key: "$each", Value: entries}}}}},
		{Key: "$setOnInsert", Value: bson.D{{Key: "b", Value: b}}},
	}
	var (
		res *mongo.UpdateResult
		err error
	)
	for range 2 {
		res, err = m.changes.UpdateOne(ctx, bson.D{{Key: "_id", Value: bucketID(b)}}, update, options.UpdateOne().SetUpsert(true))
		if !mongo.IsDuplicateKeyError(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("appending to change log bucket %d: %w", b, err)
	}
	if res.UpsertedCount > 0 && b >= changeKeep {
		// Exact _id again; a bucket missed here (a crash) is left behind,
		// harmless: readers never ask for it.
		if _, err := m.changes.DeleteOne(ctx, bson.D{{Key: "_id", Value: bucketID(b - changeKeep)}}); err != nil {
			m.log.Info("trimming change log failed", "bucket", b-changeKeep, "err", err.Error())
		}
	}
	return nil
}

// logged reads the log entries with since < rev, from the buckets up to
// and including the one of upTo (the counter read before). settled is the
// highest rev r such that every rev in (since, r] has an entry. ok is
// false when the log does not reach down to since: the caller reads the
// servers collection instead.
func (m *Mongo) logged(ctx context.Context, since, upTo int64) (recs []naming.Record, settled int64, ok bool, err error) {
	if upTo-since > changeWindow {
		return nil, since, false, nil
	}
	latest := map[string]naming.Record{}
	var (
		problems []string
		revs     []int64
	)
	for b := bucketOf(since + 1); b <= bucketOf(upTo)+1; b++ {
		var doc bson.Raw
		err := m.changes.FindOne(ctx, bson.D{{Key: "_id", Value: bucketID(b)}}).Decode(&doc)
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue // no write committed in it (yet), or all lost their compare-and-set
		}
		if err != nil {
			return nil, since, false, fmt.Errorf("reading change log bucket %d: %w", b, err)
		}
		arr, isArr := doc.Lookup("e").ArrayOK()
		if !isArr {
			return nil, since, false, nil // not ours to interpret: read the collection
		}
		vals, verr := arr.Values()
		if verr != nil {
			return nil, since, false, nil
		}
		for _, v := range vals {
			e, isDoc := v.DocumentOK()
			if !isDoc {
				continue
			}
			rev, _ := intValue(e.Lookup("r"))
			d, isDoc := e.Lookup("d").DocumentOK()
			if rev <= since || !isDoc {
				continue
			}
			revs = append(revs, rev)
			rec, probs, good := decodeRecord(d)
			problems = append(problems, probs...)
			if !good {
				continue
			}
			m.noteIDs(d)
			if old, seen := latest[rec.Hostname]; !seen || old.Rev < rec.Rev {
				latest[rec.Hostname] = rec
			}
		}
	}
	// Writers that took revs while this read ran may have created buckets
	// enough to trim one read above as missing: then the read proves
	// nothing, and the caller reads the collection.
	after, err := m.Rev(ctx)
	if err != nil {
		return nil, since, false, err
	}
	if bucketOf(after)-changeKeep >= bucketOf(since+1) {
		return nil, since, false, nil
	}
	for _, p := range problems {
		m.log.Info("ledger problem", "problem", p)
	}
	recs = make([]naming.Record, 0, len(latest))
	for _, r := range latest {
		recs = append(recs, r)
	}
	sortRecords(recs)
	return recs, contiguous(since, revs), true, nil
}

// contiguous returns the highest r such that every rev in (since, r] is
// in revs (which may repeat a rev: a write settled twice).
func contiguous(since int64, revs []int64) int64 {
	slices.Sort(revs)
	settled := since
	for _, r := range revs {
		if r > settled+1 {
			break
		}
		settled = max(settled, r)
	}
	return settled
}

// unsure is a write whose outcome the writer could not learn (its reply
// was lost, or it timed out): it may have committed without its change
// log entry. settle finds out at the writer's next call.
type unsure struct {
	hostname string
	rev      int64
}

func (m *Mongo) addUnsure(hostname string, rev int64) {
	m.mu.Lock()
	m.unsure = append(m.unsure, unsure{hostname, rev})
	m.mu.Unlock()
}

// settle logs the writes of earlier calls that committed unbeknown to
// their writer: it reads each such record (a scan on the embedded store;
// this only happens after a failed write) and, if it still holds the
// write's rev, appends it to the change log. Writes it cannot settle now
// (the store still failing) are kept for the next call; a process that
// exits first leaves them to the readers' periodic full read.
func (m *Mongo) settle(ctx context.Context) {
	m.mu.Lock()
	todo := m.unsure
	m.unsure = nil
	m.mu.Unlock()
	var keep []unsure
	for _, u := range todo {
		var doc bson.Raw
		err := m.servers.FindOne(ctx, bson.D{{Key: "hostname", Value: u.hostname}, {Key: "rev", Value: u.rev}}).Decode(&doc)
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
			// Not committed, or overwritten since: its writer logged it.
		case err != nil:
			keep = append(keep, u)
		case m.logChanges(ctx, []bson.Raw{doc}) != nil:
			keep = append(keep, u)
		}
	}
	if len(keep) > 0 {
		m.mu.Lock()
		m.unsure = append(keep, m.unsure...)
		m.mu.Unlock()
	}
}
