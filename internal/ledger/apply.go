package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// ConflictError is a lost compare-and-set: the record no longer matched
// what the planner saw (or, for an insert, already existed).
type ConflictError struct {
	Hostname string
	Change   naming.Change
}

func (e *ConflictError) Error() string {
	if !e.Change.ExpectExists {
		return fmt.Sprintf("%v: %s %s: record already exists", ErrConflict, e.Change.Type, e.Hostname)
	}
	return fmt.Sprintf("%v: %s %s: expected instance %q at rev %d", ErrConflict, e.Change.Type, e.Hostname,
		e.Change.ExpectInstanceID, e.Change.ExpectRev)
}

func (e *ConflictError) Unwrap() error { return ErrConflict }

// Validate checks changes before anything is written: hostnames and
// services are RFC 1123 labels, schemes known, IPs parse, aliases are host
// names. The error names the change, field and value.
func Validate(changes []naming.Change) error {
	for i, c := range changes {
		if err := validate(c); err != nil {
			return fmt.Errorf("change %d (%s %s): %w", i, c.Type, c.Hostname, err)
		}
	}
	return nil
}

func validate(c naming.Change) error {
	if err := naming.ValidateLabel("hostname", c.Hostname); err != nil {
		return err
	}
	if c.ExpectRev < 0 {
		return fmt.Errorf("expectRev %d: must not be negative", c.ExpectRev)
	}
	switch c.Type {
	case naming.Bind:
		if err := naming.ValidateLabel("service", c.Service); err != nil {
			return err
		}
		if _, err := naming.ParseScheme(string(c.Scheme)); err != nil {
			return fmt.Errorf("scheme: %w", err)
		}
		switch c.Role {
		case naming.RoleNone, naming.RoleMaster, naming.RoleSlave:
		default:
			return fmt.Errorf("role %q: must be empty, master or slave", c.Role)
		}
		if c.Ordinal < 0 {
			return fmt.Errorf("ordinal %d: must not be negative", c.Ordinal)
		}
		if err := validateInstanceID(c.InstanceID); err != nil {
			return err
		}
		if c.IP != "" { // a pending instance may have no address yet
			if err := naming.ValidateIP("ip", c.IP); err != nil {
				return err
			}
		}
		return validateAliases(c.Aliases)
	case naming.Release:
	case naming.SetIP:
		if err := naming.ValidateIP("ip", c.IP); err != nil {
			return err
		}
	case naming.SetAliases:
		return validateAliases(c.Aliases)
	default:
		return fmt.Errorf("type %q: unknown change type", c.Type)
	}
	if !c.ExpectExists {
		return fmt.Errorf("expectExists false: only a Bind can create a record")
	}
	return nil
}

func validateInstanceID(id string) error {
	if id == "" {
		return fmt.Errorf("instanceID %q: must not be empty for a Bind", id)
	}
	if len(id) > 128 || strings.IndexFunc(id, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }) >= 0 {
		return fmt.Errorf("instanceID %q: must be at most 128 printable characters without spaces", id)
	}
	return nil
}

func validateAliases(aliases []string) error {
	for i, a := range aliases {
		if err := naming.ValidateHostname(fmt.Sprintf("aliases[%d]", i), a); err != nil {
			return err
		}
	}
	return nil
}

// Apply implements Store. All changes are validated first (a bad one
// means nothing is written); then each is one compare-and-set write,
// stamped with a fresh rev taken from the counter just before it.
//
// A Release keeps the document (the name stays a gap, as in 1.x) and
// clears instance_id, ip and aliases: aliases name a live machine, and the
// planner expects a gap to hold none. It stamps released_at and
// last_instance_id (fields 1.x ignores) for the planner's hold-back; a Bind
// clears them. Once at least one change committed, Options.OnCommit is
// called.
func (m *Mongo) Apply(ctx context.Context, changes []naming.Change) (int, error) {
	n, err := m.applyAll(ctx, changes)
	if n > 0 && m.opts.OnCommit != nil {
		m.opts.OnCommit()
	}
	return n, err
}

func (m *Mongo) applyAll(ctx context.Context, changes []naming.Change) (int, error) {
	if m.opts.ReadOnly {
		return 0, errors.New("applying changes: ledger opened read-only")
	}
	if err := Validate(changes); err != nil {
		return 0, fmt.Errorf("applying changes: %w", err)
	}
	m.settle(ctx)
	for i := 0; i < len(changes); {
		if n := newNames(changes[i:]); n > 1 && m.hostnameUnique.Load() {
			done, err := m.insertMany(ctx, changes[i:i+n])
			if err != nil {
				c := changes[i+done]
				return i + done, fmt.Errorf("applying change %d of %d (%s %s): %w", i+done+1, len(changes), c.Type, c.Hostname, err)
			}
			i += n
			continue
		}
		c := changes[i]
		if err := m.apply(ctx, c); err != nil {
			return i, fmt.Errorf("applying change %d of %d (%s %s): %w", i+1, len(changes), c.Type, c.Hostname, err)
		}
		i++
	}
	return len(changes), nil
}

func (m *Mongo) apply(ctx context.Context, c naming.Change) error {
	rev, err := m.nextRev(ctx)
	if err != nil {
		return err
	}
	err = m.write(ctx, c, rev)
	if err != nil && !errors.Is(err, ErrConflict) {
		m.addUnsure(c.Hostname, rev)
	}
	return err
}

// bindFields are the fields a Bind sets, 1.x's and ours.
func bindFields(c naming.Change, now time.Time) bson.D {
	aliases := c.Aliases
	if aliases == nil {
		aliases = []string{} // 1.x clients iterate it
	}
	return bson.D{
		{Key: "service", Value: c.Service},
		{Key: "service_type", Value: strings.ToLower(string(c.Scheme))},
		{Key: "role", Value: string(c.Role)},
		{Key: "ordinal", Value: int64(c.Ordinal)},
		{Key: "instance_id", Value: c.InstanceID},
		{Key: "ip", Value: c.IP},
		{Key: "aliases", Value: aliases},
		{Key: "claimed_at", Value: now},
		{Key: "released_at", Value: nil},
		{Key: "last_instance_id", Value: nil},
	}
}

// write is one compare-and-set stamped with rev.
func (m *Mongo) write(ctx context.Context, c naming.Change, rev int64) error {
	now := m.opts.Clock.Now().UTC()
	set := bson.D{{Key: "rev", Value: rev}, {Key: "updated_at", Value: now}}
	switch c.Type {
	case naming.Bind:
		set = append(set, bindFields(c, now)...)
		if !c.ExpectExists {
			return m.insert(ctx, c, set)
		}
	case naming.Release:
		set = append(set,
			bson.E{Key: "instance_id", Value: ""},
			bson.E{Key: "ip", Value: ""},
			bson.E{Key: "aliases", Value: []string{}},
			bson.E{Key: "claimed_at", Value: nil},
		)
		if c.ExpectInstanceID != "" {
			// Hold-back counts from here, on the planner's clock when it
			// gave one; a Release that only tidies a gap keeps the
			// original time and holder.
			at := now
			if !c.ReleasedAt.IsZero() {
				at = c.ReleasedAt.UTC()
			}
			set = append(set,
				bson.E{Key: "released_at", Value: at},
				bson.E{Key: "last_instance_id", Value: c.ExpectInstanceID},
			)
		}
	case naming.SetIP:
		set = append(set, bson.E{Key: "ip", Value: c.IP})
	case naming.SetAliases:
		aliases := c.Aliases
		if aliases == nil {
			aliases = []string{}
		}
		set = append(set, bson.E{Key: "aliases", Value: aliases})
	}
	filter := bson.D{
		{Key: "hostname", Value: c.Hostname},
		{Key: "instance_id", Value: c.ExpectInstanceID},
	}
	if c.ExpectRev == 0 {
		// Untouched 1.x documents have no rev field.
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "rev", Value: int64(0)}},
			bson.D{{Key: "rev", Value: bson.D{{Key: "$exists", Value: false}}}},
		}})
	} else {
		filter = append(filter, bson.E{Key: "rev", Value: c.ExpectRev})
	}
	// With the document's _id known, the filter leads with it: MongoDB's
	// _id index finds the document, and the embedded store's serializer
	// reads it by exact _id and checks the rest under its write lock
	// (store/embedded/byid.go) instead of scanning every name.
	id, byID := m.idOf(c.Hostname)
	byID = byID && m.hostnameUnique.Load()
	if byID {
		filter = append(bson.D{{Key: "_id", Value: id}}, filter...)
	}
	// The post-image, returned atomically with the write, is what the
	// change log records.
	var doc bson.Raw
	err := m.servers.FindOneAndUpdate(ctx, filter, bson.D{{Key: "$set", Value: set}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		if byID {
			// Maybe only the _id is stale; the retry filters by hostname.
			m.forgetID(c.Hostname)
		}
		return &ConflictError{Hostname: c.Hostname, Change: c}
	}
	if err != nil {
		return err
	}
	m.logCommitted(ctx, doc)
	return nil
}

// logCommitted appends committed documents to the change log. The records
// are committed whatever happens here, so a failure is only logged:
// readers pick the records up at their next full read.
func (m *Mongo) logCommitted(ctx context.Context, docs ...bson.Raw) {
	m.noteIDs(docs...)
	if err := m.logChanges(ctx, docs); err != nil {
		m.log.Error(err, "change log not written; followers see these records at their next full read", "records", len(docs))
	}
}

// insert creates a record that must not exist yet. With the unique index
// on hostname it is a plain insert (no query at all: the embedded store
// scans nothing, MongoDB checks the index), and a racing insert of the
// same name, or a 1.x document holding it, fails with a duplicate key:
// a lost compare-and-set. Where the index could not be built (1.x
// duplicates) an upsert that only sets fields on insert keeps the check.
func (m *Mongo) insert(ctx context.Context, c naming.Change, set bson.D) error {
	id := bson.NewObjectID()
	raw, err := bson.Marshal(append(bson.D{{Key: "_id", Value: id}, {Key: "hostname", Value: c.Hostname}}, set...))
	if err != nil {
		return fmt.Errorf("encoding record %s: %w", c.Hostname, err)
	}
	if m.hostnameUnique.Load() {
		_, err = m.servers.InsertOne(ctx, bson.Raw(raw))
		if mongo.IsDuplicateKeyError(err) {
			return &ConflictError{Hostname: c.Hostname, Change: c}
		}
		if err != nil {
			return err
		}
		m.logCommitted(ctx, raw)
		return nil
	}
	onInsert := append(bson.D{{Key: "_id", Value: id}}, set...)
	res, err := m.servers.UpdateOne(ctx,
		bson.D{{Key: "hostname", Value: c.Hostname}},
		bson.D{{Key: "$setOnInsert", Value: onInsert}},
		options.UpdateOne().SetUpsert(true))
	if mongo.IsDuplicateKeyError(err) {
		return &ConflictError{Hostname: c.Hostname, Change: c}
	}
	if err != nil {
		return err
	}
	if res.UpsertedCount == 0 {
		return &ConflictError{Hostname: c.Hostname, Change: c}
	}
	if err := m.restoreEmpty(ctx, onInsert); err != nil {
		return err
	}
	m.logCommitted(ctx, raw)
	return nil
}

// restoreEmpty sets again the null and empty-array fields of a document
// just created by an upsert: FerretDB v1 drops them from $setOnInsert, and
// 1.x's updater reads item['aliases'] of every record, so a record without
// the field kills every 1.x updater. Real MongoDB keeps them; the write is
// then a no-op. Its filter pins the rev just written, so it never touches
// a record another writer changed since.
func (m *Mongo) restoreEmpty(ctx context.Context, doc bson.D) error {
	var id, rev any
	var empty bson.D
	for _, e := range doc {
		switch v := e.Value.(type) {
		case nil:
			empty = append(empty, e)
		case []string:
			if len(v) == 0 {
				empty = append(empty, e)
			}
		}
		switch e.Key {
		case "_id":
			id = e.Value
		case "rev":
			rev = e.Value
		}
	}
	if len(empty) == 0 {
		return nil
	}
	_, err := m.servers.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "rev", Value: rev}},
		bson.D{{Key: "$set", Value: empty}})
	if err != nil {
		return fmt.Errorf("writing the empty 1.x fields of %v: %w", id, err)
	}
	return nil
}

// nextRev takes the next rev from the counter document.
func (m *Mongo) nextRev(ctx context.Context) (int64, error) { return m.takeRevs(ctx, 1) }
