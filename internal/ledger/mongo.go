package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"k8s.io/utils/clock"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// DefaultDatabase is the 1.x database name.
const DefaultDatabase = "aerostat"

const (
	serversCollection = "servers"
	metaCollection    = "meta"
	revDocID          = "rev"
)

// Options configure Open.
type Options struct {
	// Database defaults to DefaultDatabase ("aerostat", as 1.x).
	Database string
	// ReadOnly opens without any write, not even index creation, for agents
	// holding a read-only user; Apply then fails. Open also skips its ping,
	// so an agent can start while the store is down.
	ReadOnly bool
	// Logger gets problems found in the data (duplicates, corrupt
	// documents); the zero value discards.
	Logger logr.Logger
	// Clock stamps updated_at and claimed_at; the real clock when nil.
	Clock clock.PassiveClock
	// Timeout bounds every store call whose context has no earlier
	// deadline (the driver's client-side operation timeout, also sent to
	// the server as maxTimeMS, which bounds a majority write's wait for its
	// replicas: driver v2 has no separate wtimeout). A half-open
	// connection then fails the call instead of hanging the agent or the
	// controller. Default DefaultTimeout; the URI's timeoutMS overrides.
	Timeout time.Duration
	// OnCommit, if set, is called after an Apply committed at least one
	// change, so that a reader following this store in the same process
	// (the controller's feed) reads it now instead of at its next poll
	// tick: every writer through this Mongo wakes it, the passes and the
	// attested registrations alike. It must not block. Writers in other
	// processes are seen at the reader's poll tick.
	OnCommit func()
}

// DefaultTimeout bounds each store call when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Mongo is the ledger on MongoDB or the embedded FerretDB.
//
// Claims and the reads they depend on use write concern "majority" and read
// concern "majority": on a replica set a w:1 claim can be rolled back on
// failover and come back as a duplicate name. Standalone servers and
// FerretDB accept and ignore both. No multi-document transaction is used.
type Mongo struct {
	client  *mongo.Client
	servers *mongo.Collection
	meta    *mongo.Collection
	changes *mongo.Collection // the change log, see changelog.go
	opts    Options
	log     logr.Logger
	// hostnameUnique is set once the unique index on hostname is known to
	// exist: a new name is then a plain insert (see insert).
	hostnameUnique atomic.Bool

	idsMu sync.Mutex
	ids   docIDs // hostname -> _id, see docids.go

	mu           sync.Mutex
	openProblems []string
	readProblems []string
	unsure       []unsure // writes of unknown outcome, see settle
}

var (
	_ Store        = (*Mongo)(nil)
	_ RecordWalker = (*Mongo)(nil)
)

// Open connects to uri (mongodb://…). Unless ReadOnly it pings the server,
// makes sure the rev counter exists and creates the unique index on
// hostname. An index that cannot be built because 1.x races left duplicate
// hostnames is not an error: it is logged and listed by Problems, and the
// ledger keeps working. Errors: a bad URI, an unreachable server (not in
// ReadOnly mode), or a server refusing the setup writes.
func Open(ctx context.Context, uri string, opts Options) (*Mongo, error) {
	if opts.Database == "" {
		opts.Database = DefaultDatabase
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	log := opts.Logger
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	// Fail fast when the store is down or stuck; the URI can still
	// override these. Finding and dialling the server get half a call's
	// bound, and at least 5 s (the call's own bound still ends a call
	// first when it is shorter).
	reach := max(5*time.Second, opts.Timeout/2)
	co := options.Client().
		SetServerSelectionTimeout(reach).
		SetConnectTimeout(reach).
		SetTimeout(opts.Timeout).
		ApplyURI(uri)
	client, err := mongo.Connect(co)
	if err != nil {
		return nil, fmt.Errorf("connecting to ledger: %w", err)
	}
	majority := options.Collection().
		SetWriteConcern(writeconcern.Majority()).
		SetReadConcern(readconcern.Majority())
	db := client.Database(opts.Database)
	m := &Mongo{
		client:  client,
		servers: db.Collection(serversCollection, majority),
		meta:    db.Collection(metaCollection, majority),
		changes: db.Collection(changesCollection, majority),
		opts:    opts,
		log:     log,
	}
	if opts.ReadOnly {
		return m, nil
	}
	if err := m.setup(ctx); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, err
	}
	return m, nil
}

func (m *Mongo) setup(ctx context.Context) error {
	if err := m.client.Ping(ctx, nil); err != nil {
		return fmt.Errorf("pinging ledger: %w", err)
	}
	// Creating the counter up front saves racing first writers from an
	// upsert duplicate-key error.
	_, err := m.meta.UpdateOne(ctx, bson.D{{Key: "_id", Value: revDocID}},
		bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "n", Value: int64(0)}}}},
		options.UpdateOne().SetUpsert(true))
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("creating rev counter: %w", err)
	}
	if _, err = m.ensureHostnameIndex(ctx); err != nil {
		var se mongo.ServerError
		if !errors.As(err, &se) {
			return fmt.Errorf("creating unique index on hostname: %w", err)
		}
		// Duplicates from 1.x races, or a 1.x non-unique index on the same
		// key: keep working, say so. Inserts are then guarded only by the
		// store's own atomicity (the embedded store serialises writes).
		p := fmt.Sprintf("unique index on hostname not created (duplicate hostnames or a conflicting 1.x index?): %v", err)
		if dups, derr := m.duplicates(ctx); derr == nil && len(dups) > 0 {
			p += "; duplicated: " + strings.Join(dups, ", ")
		}
		m.log.Error(nil, "ledger problem", "problem", p)
		m.mu.Lock()
		m.openProblems = append(m.openProblems, p)
		m.mu.Unlock()
	}
	_, err = m.servers.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "rev", Value: 1}},
		Options: options.Index().SetName("rev"),
	})
	if err != nil {
		m.log.Info("index on rev not created; deltas read the whole collection", "err", err.Error())
	}
	return nil
}

// duplicates lists hostnames held by more than one document.
func (m *Mongo) duplicates(ctx context.Context) ([]string, error) {
	cur, err := m.servers.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "hostname", Value: 1}}))
	if err != nil {
		return nil, err
	}
	var docs []bson.Raw
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	n := map[string]int{}
	for _, d := range docs {
		if h, ok := d.Lookup("hostname").StringValueOK(); ok {
			n[h]++
		}
	}
	var dups []string
	for h, c := range n {
		if c > 1 {
			dups = append(dups, h)
		}
	}
	slices.Sort(dups)
	return dups, nil
}

// Close disconnects.
func (m *Mongo) Close(ctx context.Context) error {
	if err := m.client.Disconnect(ctx); err != nil {
		return fmt.Errorf("disconnecting from ledger: %w", err)
	}
	return nil
}

// Problems lists what is wrong with the stored data but did not stop the
// ledger: a unique index that could not be built at Open, and the corrupt
// or duplicated documents found by the latest Records or Changes call.
func (m *Mongo) Problems() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Concat(m.openProblems, m.readProblems)
}

// Records implements Store. Documents are decoded leniently (1.x data):
// missing new fields get defaults, ordinal and role are derived from the
// hostname, aliases stored as a string are split; documents without a
// usable hostname are skipped. Both kinds of finding, and hostnames held
// by several documents, are logged and listed by Problems.
func (m *Mongo) Records(ctx context.Context, service string) ([]naming.Record, error) {
	m.settle(ctx)
	filter := bson.D{}
	if service != "" {
		filter = bson.D{{Key: "service", Value: service}}
	}
	recs, err := m.find(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("reading records of service %q: %w", service, err)
	}
	return recs, nil
}

// Changes implements Store. The counter is read before the records, so
// every write that committed (record and change log entry) before the call
// with a rev <= the returned rev is in the result or in an earlier one; a
// write whose rev is <= it but that commits later is not (see Follower for
// the overlap rule). Within the change log's window it reads only the log
// (see changelog.go); below it, the servers collection.
func (m *Mongo) Changes(ctx context.Context, since int64) ([]naming.Record, int64, error) {
	recs, rev, _, err := m.ChangesSettled(ctx, since)
	return recs, rev, err
}

// ChangesSettled implements SettledStore: settled is where the first rev
// above since without a change log entry begins (a log entry is written
// after its record, so an entry proves the write committed). Read from the
// servers collection (below the log's window) it is since.
func (m *Mongo) ChangesSettled(ctx context.Context, since int64) ([]naming.Record, int64, int64, error) {
	m.settle(ctx)
	rev, err := m.Rev(ctx)
	if err != nil {
		return nil, 0, 0, err
	}
	recs, settled, logged, err := m.logged(ctx, since, rev)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("reading changes since rev %d: %w", since, err)
	}
	if !logged {
		// Below the log's floor: the whole collection, filtered by rev.
		recs, err = m.find(ctx, bson.D{{Key: "rev", Value: bson.D{{Key: "$gt", Value: since}}}})
		if err != nil {
			return nil, 0, 0, fmt.Errorf("reading changes since rev %d: %w", since, err)
		}
		settled = since
	}
	// Writes that took a rev after our counter read may already be here.
	for _, r := range recs {
		rev = max(rev, r.Rev)
	}
	return recs, rev, min(settled, rev), nil
}

// Rev implements Store: the highest rev handed out, 0 for a fresh or 1.x store.
func (m *Mongo) Rev(ctx context.Context) (int64, error) {
	var doc bson.Raw
	err := m.meta.FindOne(ctx, bson.D{{Key: "_id", Value: revDocID}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading rev counter: %w", err)
	}
	n, _ := intValue(doc.Lookup("n"))
	return n, nil
}

func (m *Mongo) find(ctx context.Context, filter bson.D) ([]naming.Record, error) {
	var recs []naming.Record
	if err := m.walk(ctx, filter, func(r naming.Record) { recs = append(recs, r) }); err != nil {
		return nil, err
	}
	sortRecords(recs)
	return recs, nil
}

// WalkRecords implements RecordWalker: Records without the slice, each
// record handed to fn as it is decoded, in no particular order. Documents
// are decoded, and their problems logged and listed, as Records does.
func (m *Mongo) WalkRecords(ctx context.Context, service string, fn func(naming.Record)) error {
	m.settle(ctx)
	filter := bson.D{}
	if service != "" {
		filter = bson.D{{Key: "service", Value: service}}
	}
	if err := m.walk(ctx, filter, fn); err != nil {
		return fmt.Errorf("reading records of service %q: %w", service, err)
	}
	return nil
}

// walk decodes each document filter matches and hands its record to fn;
// see Records for what it logs and lists as problems. On error fn may have
// seen some of the records.
func (m *Mongo) walk(ctx context.Context, filter bson.D, fn func(naming.Record)) error {
	// One batch where the server allows: fewer round trips per read.
	cur, err := m.servers.Find(ctx, filter, options.Find().SetBatchSize(5000))
	if err != nil {
		return err
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	var (
		problems []string
		seen     = map[string]int{}
	)
	for cur.Next(ctx) {
		rec, probs, ok := decodeRecord(cur.Current)
		problems = append(problems, probs...)
		if !ok {
			continue
		}
		m.noteID(rec.Hostname, cur.Current)
		seen[rec.Hostname]++
		fn(rec)
	}
	if err := cur.Err(); err != nil {
		return err
	}
	for h, n := range seen {
		if n > 1 {
			problems = append(problems, fmt.Sprintf("hostname %s: held by %d documents (1.x race)", h, n))
		}
	}
	slices.Sort(problems)
	for _, p := range problems {
		m.log.Info("ledger problem", "problem", p)
	}
	m.mu.Lock()
	m.readProblems = problems
	m.mu.Unlock()
	return nil
}

func sortRecords(recs []naming.Record) { slices.SortFunc(recs, cmpRecords) }

func cmpRecords(a, b naming.Record) int { return cmpRecordPtrs(&a, &b) }

// cmpRecordPtrs is naming.CompareNames, then the holder: duplicate
// records of one hostname (a 1.x race) still sort the same every read.
func cmpRecordPtrs(a, b *naming.Record) int {
	if c := naming.CompareNames(a, b); c != 0 {
		return c
	}
	return strings.Compare(a.InstanceID, b.InstanceID)
}

// Client is the underlying driver client, for tools and tests that need
// raw access (1.x data migration, fault injection).
func (m *Mongo) Client() *mongo.Client { return m.client }

// Database is the name of the ledger's database.
func (m *Mongo) Database() string { return m.opts.Database }
