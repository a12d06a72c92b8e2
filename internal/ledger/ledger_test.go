package ledger_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
)

func TestMain(m *testing.M) { ledgertest.Main(m) }

func bind(host string, ord int, id, ip string) naming.Change {
	return naming.Change{
		Type: naming.Bind, Hostname: host, Service: "web", Scheme: naming.Iterative,
		Ordinal: ord, InstanceID: id, IP: ip,
	}
}

func servers(m *ledger.Mongo) *mongo.Collection {
	return m.Client().Database(m.Database()).Collection("servers")
}

func mustApply(t *testing.T, m *ledger.Mongo, changes ...naming.Change) {
	t.Helper()
	if n, err := m.Apply(context.Background(), changes); err != nil {
		t.Fatalf("Apply: applied %d: %v", n, err)
	}
}

func mustRecords(t *testing.T, m *ledger.Mongo, service string) map[string]naming.Record {
	t.Helper()
	recs, err := m.Records(context.Background(), service)
	if err != nil {
		t.Fatalf("Records(%q): %v", service, err)
	}
	out := map[string]naming.Record{}
	for _, r := range recs {
		out[r.Hostname] = r
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	m := ledgertest.Open(t, ledger.Options{Database: ledgertest.Database(t), Clock: clk})

	b0 := bind("web-0", 0, "i-0", "10.0.0.1")
	b0.Aliases = []string{"www.internal"}
	mustApply(t, m, b0, bind("web-1", 1, "i-1", "10.0.0.2"))

	got := mustRecords(t, m, "web")
	want := naming.Record{
		Hostname: "web-0", Service: "web", Scheme: naming.Iterative, InstanceID: "i-0", IP: "10.0.0.1",
		Aliases: []string{"www.internal"}, Rev: 1, UpdatedAt: clk.Now(), ClaimedAt: clk.Now(),
	}
	if r := got["web-0"]; !equalRecord(r, want) {
		t.Errorf("web-0 = %+v, want %+v", r, want)
	}
	if len(got) != 2 || got["web-1"].Rev != 2 {
		t.Errorf("records = %+v, want web-0 (rev 1) and web-1 (rev 2)", got)
	}

	// The stored document is what a 1.x client expects.
	var raw bson.M
	if err := servers(m).FindOne(ctx, bson.M{"hostname": "web-0"}).Decode(&raw); err != nil {
		t.Fatalf("raw read: %v", err)
	}
	if _, ok := raw["_id"].(bson.ObjectID); !ok {
		t.Errorf("_id is %T, want ObjectID", raw["_id"])
	}
	if raw["service_type"] != "iterative" {
		t.Errorf("service_type = %v, want iterative (1.x spelling)", raw["service_type"])
	}
	if a, ok := raw["aliases"].(bson.A); !ok || len(a) != 1 {
		t.Errorf("aliases = %#v, want a one-element array", raw["aliases"])
	}

	clk.SetTime(clk.Now().Add(time.Minute))
	r0 := got["web-0"]
	r1 := got["web-1"]
	mustApply(t, m,
		naming.Change{Type: naming.Release, Hostname: "web-0", ExpectExists: true, ExpectInstanceID: "i-0", ExpectRev: r0.Rev},
		naming.Change{Type: naming.SetIP, Hostname: "web-1", IP: "10.0.0.9", ExpectExists: true, ExpectInstanceID: "i-1", ExpectRev: r1.Rev},
	)
	got = mustRecords(t, m, "web")
	if r := got["web-0"]; !r.Free() || r.IP != "" || len(r.Aliases) != 0 || r.Rev != 3 || !r.ClaimedAt.IsZero() || !r.UpdatedAt.Equal(clk.Now()) {
		t.Errorf("released web-0 = %+v, want a gap at rev 3", r)
	}
	if r := got["web-0"]; !r.ReleasedAt.Equal(clk.Now()) || r.LastInstanceID != "i-0" {
		t.Errorf("released web-0 has released_at %v last_instance_id %q, want %v and i-0 (hold-back)", r.ReleasedAt, r.LastInstanceID, clk.Now())
	}
	if r := got["web-1"]; r.IP != "10.0.0.9" || r.InstanceID != "i-1" || r.Rev != 4 {
		t.Errorf("web-1 after SetIP = %+v", r)
	}
	mustApply(t, m,
		naming.Change{Type: naming.SetAliases, Hostname: "web-1", Aliases: []string{"a.b", "c"}, ExpectExists: true, ExpectInstanceID: "i-1", ExpectRev: 4},
		naming.Change{Type: naming.Bind, Hostname: "web-0", Service: "web", Scheme: naming.Iterative, InstanceID: "i-2", IP: "10.0.0.3", ExpectExists: true, ExpectRev: 3},
	)
	got = mustRecords(t, m, "")
	if r := got["web-1"]; !slices.Equal(r.Aliases, []string{"a.b", "c"}) {
		t.Errorf("web-1 aliases = %v", r.Aliases)
	}
	if r := got["web-0"]; r.InstanceID != "i-2" || r.Rev != 6 || !r.ReleasedAt.IsZero() || r.LastInstanceID != "" {
		t.Errorf("refilled web-0 = %+v, want i-2 at rev 6 with no release stamp", r)
	}
	if rev, err := m.Rev(ctx); err != nil || rev != 6 {
		t.Errorf("Rev = %d, %v; want 6", rev, err)
	}
	if p := m.Problems(); len(p) != 0 {
		t.Errorf("Problems on clean data = %q", p)
	}
}

func equalRecord(a, b naming.Record) bool {
	return a.Hostname == b.Hostname && a.Service == b.Service && a.Scheme == b.Scheme && a.Role == b.Role &&
		a.Ordinal == b.Ordinal && a.InstanceID == b.InstanceID && a.IP == b.IP && slices.Equal(a.Aliases, b.Aliases) &&
		a.Rev == b.Rev && a.UpdatedAt.Equal(b.UpdatedAt) && a.ClaimedAt.Equal(b.ClaimedAt)
}

// Documents as Aerostat 1.x wrote them, including the damage its races and
// hand edits left behind.
func Test1xDocuments(t *testing.T) {
	ctx := context.Background()
	db := ledgertest.Database(t)
	raw := ledgertest.Open(t, ledger.Options{Database: db, ReadOnly: true})
	docs := []any{
		bson.M{"_id": bson.NewObjectID(), "hostname": "web-0", "ip": "10.0.0.1", "service": "web", "service_type": "iterative", "instance_id": "i-0", "aliases": bson.A{"www"}},
		bson.M{"_id": bson.NewObjectID(), "hostname": "web-1", "ip": "", "service": "web", "service_type": "iterative", "instance_id": "", "aliases": bson.A{}},
		bson.M{"_id": bson.NewObjectID(), "hostname": "web-2", "ip": "10.0.0.3", "service": "web", "service_type": "iterative", "instance_id": "i-3", "aliases": bson.A{}},
		bson.M{"_id": bson.NewObjectID(), "hostname": "web-2", "ip": "10.0.0.4", "service": "web", "service_type": "iterative", "instance_id": "i-4", "aliases": bson.A{}},
		bson.M{"_id": bson.NewObjectID(), "hostname": "db-master", "ip": "10.0.1.1", "service": "db", "service_type": "masterful", "instance_id": "i-5", "aliases": "db.internal db2"},
		bson.M{"_id": bson.NewObjectID(), "hostname": "db-slave-3", "ip": 42, "service": "db", "service_type": "masterful", "instance_id": "i-6"},
		bson.M{"_id": bson.NewObjectID(), "ip": "10.0.0.7", "service": "web", "instance_id": "i-7"},
		bson.M{"_id": bson.NewObjectID(), "hostname": 7, "service": "web"},
	}
	if _, err := servers(raw).InsertMany(ctx, docs); err != nil {
		t.Fatalf("inserting 1.x documents: %v", err)
	}

	m := ledgertest.Open(t, ledger.Options{Database: db})
	if p := strings.Join(m.Problems(), "\n"); !strings.Contains(p, "unique index") || !strings.Contains(p, "web-2") {
		t.Errorf("Problems after Open = %q, want the unique index failure naming web-2", p)
	}

	recs, err := m.Records(ctx, "")
	if err != nil {
		t.Fatalf("Records: %v", err)
	}
	if len(recs) != 6 {
		t.Errorf("got %d records, want 6 (two documents have no usable hostname): %+v", len(recs), recs)
	}
	byHost := map[string][]naming.Record{}
	for _, r := range recs {
		byHost[r.Hostname] = append(byHost[r.Hostname], r)
	}
	if r := byHost["db-master"][0]; r.Scheme != naming.Masterful || r.Role != naming.RoleMaster || !slices.Equal(r.Aliases, []string{"db.internal", "db2"}) {
		t.Errorf("db-master = %+v", r)
	}
	if r := byHost["db-slave-3"][0]; r.Role != naming.RoleSlave || r.Ordinal != 3 || r.IP != "" || r.InstanceID != "i-6" {
		t.Errorf("db-slave-3 = %+v", r)
	}
	if r := byHost["web-0"][0]; r.Ordinal != 0 || r.Rev != 0 || r.InstanceID != "i-0" || !slices.Equal(r.Aliases, []string{"www"}) {
		t.Errorf("web-0 = %+v", r)
	}
	if len(byHost["web-2"]) != 2 {
		t.Errorf("web-2 has %d records, want both duplicates returned for the planner", len(byHost["web-2"]))
	}
	problems := strings.Join(m.Problems(), "\n")
	for _, want := range []string{"no hostname", "web-2: held by 2 documents", "field ip has type"} {
		if !strings.Contains(problems, want) {
			t.Errorf("Problems lack %q:\n%s", want, problems)
		}
	}

	// A 1.x record (no rev field) is updated with ExpectRev 0.
	mustApply(t, m, naming.Change{Type: naming.Bind, Hostname: "web-1", Service: "web", Scheme: naming.Iterative,
		Ordinal: 1, InstanceID: "i-8", IP: "10.0.0.8", ExpectExists: true, ExpectInstanceID: "", ExpectRev: 0})
	if r := mustRecords(t, m, "web")["web-1"]; r.InstanceID != "i-8" || r.Rev == 0 {
		t.Errorf("web-1 after bind = %+v", r)
	}
}

func TestConflicts(t *testing.T) {
	tests := map[string]naming.Change{
		"insert existing": bind("web-0", 0, "i-9", "10.0.0.9"),
		"stale rev": {Type: naming.Bind, Hostname: "web-0", Service: "web", Scheme: naming.Iterative,
			InstanceID: "i-9", ExpectExists: true, ExpectInstanceID: "i-0", ExpectRev: 7},
		"other instance": {Type: naming.Release, Hostname: "web-0", ExpectExists: true, ExpectInstanceID: "i-5", ExpectRev: 1},
		"missing record": {Type: naming.SetIP, Hostname: "web-5", IP: "10.0.0.5", ExpectExists: true, ExpectInstanceID: "i-5", ExpectRev: 1},
	}
	for name, c := range tests {
		t.Run(name, func(t *testing.T) {
			m := ledgertest.New(t)
			mustApply(t, m, bind("web-0", 0, "i-0", "10.0.0.1"))
			n, err := m.Apply(context.Background(), []naming.Change{c})
			if !errors.Is(err, ledger.ErrConflict) {
				t.Fatalf("Apply = %d, %v; want ErrConflict", n, err)
			}
			var ce *ledger.ConflictError
			if !errors.As(err, &ce) || ce.Hostname != c.Hostname {
				t.Errorf("error %v is not a *ConflictError for %s", err, c.Hostname)
			}
			if r := mustRecords(t, m, "web")["web-0"]; r.InstanceID != "i-0" || r.Rev != 1 {
				t.Errorf("web-0 changed by a lost write: %+v", r)
			}
		})
	}
}

func TestChangesSince(t *testing.T) {
	ctx := context.Background()
	m := ledgertest.New(t)
	recs, rev, err := m.Changes(ctx, 0)
	if err != nil || len(recs) != 0 || rev != 0 {
		t.Fatalf("Changes on empty ledger = %v, %d, %v", recs, rev, err)
	}
	mustApply(t, m, bind("web-0", 0, "i-0", "10.0.0.1"), bind("web-1", 1, "i-1", "10.0.0.2"))
	recs, rev, err = m.Changes(ctx, 0)
	if err != nil || len(recs) != 2 || rev != 2 {
		t.Fatalf("Changes(0) = %d records, rev %d, %v; want 2, 2", len(recs), rev, err)
	}
	mustApply(t, m, naming.Change{Type: naming.SetIP, Hostname: "web-0", IP: "10.0.0.7", ExpectExists: true, ExpectInstanceID: "i-0", ExpectRev: 1})
	recs, rev, err = m.Changes(ctx, 2)
	if err != nil || len(recs) != 1 || recs[0].Hostname != "web-0" || recs[0].IP != "10.0.0.7" || rev != 3 {
		t.Fatalf("Changes(2) = %+v, rev %d, %v; want web-0 at rev 3", recs, rev, err)
	}
	recs, rev, err = m.Changes(ctx, 3)
	if err != nil || len(recs) != 0 || rev != 3 {
		t.Fatalf("Changes(3) = %+v, rev %d, %v; want nothing, rev 3", recs, rev, err)
	}
}

func TestUniqueHostnameIndex(t *testing.T) {
	m := ledgertest.New(t)
	mustApply(t, m, bind("web-0", 0, "i-0", "10.0.0.1"))
	_, err := servers(m).InsertOne(context.Background(), bson.M{"hostname": "web-0", "instance_id": "i-1"})
	if !mongo.IsDuplicateKeyError(err) {
		t.Fatalf("raw insert of a second web-0: %v, want a duplicate key error", err)
	}
}

func TestBadInputWritesNothing(t *testing.T) {
	good := bind("web-0", 0, "i-0", "10.0.0.1")
	tests := map[string]struct {
		change naming.Change
		want   string // the field and value the error must name
	}{
		"hostname upper case": {bind("Web-0", 0, "i-1", "10.0.0.2"), `hostname "Web-0"`},
		"hostname with dot":   {bind("web.0", 0, "i-1", "10.0.0.2"), `hostname "web.0"`},
		"empty hostname":      {bind("", 0, "i-1", "10.0.0.2"), `hostname ""`},
		"bad ip":              {bind("web-1", 1, "i-1", "10.0.0.300"), `ip "10.0.0.300"`},
		"bad service": {naming.Change{Type: naming.Bind, Hostname: "web-1", Service: "web_x", Scheme: naming.Iterative,
			InstanceID: "i-1"}, `service "web_x"`},
		"bad scheme": {naming.Change{Type: naming.Bind, Hostname: "web-1", Service: "web", Scheme: "Roundrobin",
			InstanceID: "i-1"}, `"Roundrobin"`},
		"bad alias": {naming.Change{Type: naming.SetAliases, Hostname: "web-0", Aliases: []string{"ok", "bad alias"},
			ExpectExists: true, ExpectInstanceID: "i-0", ExpectRev: 1}, `aliases[1] "bad alias"`},
		"empty instance": {bind("web-1", 1, "", "10.0.0.2"), `instanceID ""`},
		"unknown type":   {naming.Change{Type: "Rename", Hostname: "web-0", ExpectExists: true}, `"Rename"`},
		"setip no ip": {naming.Change{Type: naming.SetIP, Hostname: "web-0", ExpectExists: true,
			ExpectInstanceID: "i-0", ExpectRev: 1}, `ip ""`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			m := ledgertest.New(t)
			n, err := m.Apply(ctx, []naming.Change{good, tc.change})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Apply = %d, %v; want an error naming %s", n, err, tc.want)
			}
			if n != 0 {
				t.Errorf("applied = %d, want 0", n)
			}
			if recs := mustRecords(t, m, ""); len(recs) != 0 {
				t.Errorf("records written despite bad input: %+v", recs)
			}
			if rev, err := m.Rev(ctx); err != nil || rev != 0 {
				t.Errorf("Rev = %d, %v; want 0", rev, err)
			}
		})
	}
}

func TestReadOnly(t *testing.T) {
	db := ledgertest.Database(t)
	w := ledgertest.Open(t, ledger.Options{Database: db})
	mustApply(t, w, bind("web-0", 0, "i-0", "10.0.0.1"))
	r := ledgertest.Open(t, ledger.Options{Database: db, ReadOnly: true})
	if got := mustRecords(t, r, "web"); got["web-0"].InstanceID != "i-0" {
		t.Errorf("read-only Records = %+v", got)
	}
	if _, err := r.Apply(context.Background(), []naming.Change{bind("web-1", 1, "i-1", "10.0.0.2")}); err == nil {
		t.Error("Apply on a read-only ledger succeeded")
	}
}
