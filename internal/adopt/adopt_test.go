package adopt_test

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"k8s.io/utils/clock"

	"github.com/aerostat-io/aerostat/internal/adopt"
	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/cloud/fake"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
)

func TestMain(m *testing.M) { ledgertest.Main(m) }

// world is a 1.x fleet: instances behind the fake EC2 server and the
// documents 1.x clients left in aerostat.servers, races included.
type world struct {
	ids   []string
	fleet *fake.Fleet
	ec2   *cloud.EC2
	db    string
	raw   *mongo.Collection
	store *ledger.Mongo
}

// doc is a document as Aerostat 1.x wrote it: no role, ordinal, rev,
// updated_at; gaps with "" instance and ip.
func doc(host, service, typ, id, ip string, aliases ...string) bson.M {
	a := bson.A{}
	for _, s := range aliases {
		a = append(a, s)
	}
	return bson.M{"_id": bson.NewObjectID(), "hostname": host, "ip": ip, "service": service, "service_type": typ, "instance_id": id, "aliases": a}
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{fleet: fake.NewFleet(clock.RealClock{})}
	w.ids = w.fleet.Launch(12, nil)
	srv := httptest.NewServer(fake.NewServer(w.fleet))
	t.Cleanup(srv.Close)
	var err error
	w.ec2, err = cloud.NewEC2(context.Background(), cloud.EC2Options{Region: "us-east-1", Endpoint: srv.URL,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")})
	if err != nil {
		t.Fatal(err)
	}
	w.db = ledgertest.Database(t)
	ro := ledgertest.Open(t, ledger.Options{Database: w.db, ReadOnly: true})
	w.raw = ro.Client().Database(w.db).Collection("servers")
	return w
}

func (w *world) seed(t *testing.T, docs ...bson.M) {
	t.Helper()
	var many []any
	for _, d := range docs {
		many = append(many, d)
	}
	if _, err := w.raw.InsertMany(context.Background(), many); err != nil {
		t.Fatalf("inserting 1.x documents: %v", err)
	}
	// Opened after the 1.x data, as on a real upgrade: the unique index
	// cannot be built over the duplicates.
	w.store = ledgertest.Open(t, ledger.Options{Database: w.db})
}

func (w *world) tag(t *testing.T, i int, kv ...string) {
	t.Helper()
	tags := map[string]string{}
	for k := 0; k < len(kv); k += 2 {
		tags[kv[k]] = kv[k+1]
	}
	if err := w.fleet.Tag(context.Background(), []string{w.ids[i]}, tags); err != nil {
		t.Fatal(err)
	}
}

func (w *world) rawDocs(t *testing.T) []bson.M {
	t.Helper()
	cur, err := w.raw.Find(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var out []bson.M
	if err := cur.All(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAdopt1xLedgerAndTags(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	id := w.ids
	ip := func(i int) string { in, _ := w.fleet.Instance(id[i]); return in.PrivateIP }
	if err := w.fleet.Terminate(id[1]); err != nil {
		t.Fatal(err)
	}
	if err := w.fleet.Stop(id[9]); err != nil {
		t.Fatal(err)
	}
	w.seed(t,
		doc("web-0", "web", "iterative", id[0], ip(0), "www"),
		// Two booting nodes got web-1 (1.x race); the first has since died.
		doc("web-1", "web", "iterative", id[1], ip(1)),
		doc("web-1", "web", "iterative", id[2], ip(2)),
		doc("web-2", "web", "iterative", "", ""),
		// Both holders of web-3 live: the newer document wins.
		doc("web-3", "web", "iterative", id[3], ip(3)),
		doc("web-3", "web", "iterative", id[4], ip(4)),
		doc("db-master", "db", "masterful", id[5], ip(5)),
		bson.M{"_id": bson.NewObjectID(), "hostname": "db-slave-1", "service": "db", "service_type": "masterful", "instance_id": nil, "ip": nil, "aliases": "db.replica"},
	)
	// Names in tags: a new one, one the ledger disagrees with, one it
	// agrees with, one for an untagged service given on the command line,
	// one filling a gap, a stopped instance, and a Name Aerostat does not own.
	w.tag(t, 6, "aerostat:service", "web", "Name", "web-7")
	w.tag(t, 7, "aerostat:service", "web", "Name", "web-0")
	w.tag(t, 0, "aerostat:service", "web", "Name", "web-0")
	w.tag(t, 8, "Name", "api-2")
	w.tag(t, 10, "aerostat:service", "web", "aerostat:hostname", "web-2", "Name", "frontend")
	w.tag(t, 9, "aerostat:service", "db", "aerostat:service-type", "masterful", "Name", "db-slave-4")
	w.tag(t, 11, "Name", "bastion")
	opts := adopt.Options{Ledger: w.store, Cloud: w.ec2, Services: map[string]naming.Scheme{"api": naming.Iterative}}

	// Dry run: a full report, nothing written.
	before := w.rawDocs(t)
	rep, err := adopt.Run(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Applied || !rep.Pending() || rep.Documents != 8 {
		t.Errorf("dry run: applied %v pending %v documents %d", rep.Applied, rep.Pending(), rep.Documents)
	}
	wantDup := map[string]string{"web-1": id[2] + " kept, " + id[1] + " (terminated) removed", "web-3": id[4] + " kept, " + id[3] + " (running) removed"}
	if len(rep.Duplicates) != 2 {
		t.Fatalf("duplicates = %+v, want web-1 and web-3", rep.Duplicates)
	}
	for _, d := range rep.Duplicates {
		got := d.Kept.Instance + " kept, " + d.Removed[0].Instance + " (" + d.Removed[0].State + ") removed"
		if got != wantDup[d.Hostname] {
			t.Errorf("%s: %s, want %s", d.Hostname, got, wantDup[d.Hostname])
		}
	}
	if r := rep.Duplicates[1].Removed[0]; !strings.Contains(r.Why, "next free name") {
		t.Errorf("a live instance losing its duplicate name is not explained: %+v", r)
	}
	if len(rep.Backfills) != 6 {
		t.Errorf("backfills = %+v, want the 6 kept documents", rep.Backfills)
	}
	var binds []string
	for _, b := range rep.Binds {
		binds = append(binds, b.Hostname+"="+b.Instance)
	}
	wantBinds := []string{"api-2=" + id[8], "db-slave-4=" + id[9], "web-2=" + id[10], "web-7=" + id[6]}
	if !slices.Equal(binds, wantBinds) {
		t.Errorf("binds = %v, want %v", binds, wantBinds)
	}
	if rep.AlreadyBound != 1 || len(rep.Conflicts) != 1 || !strings.Contains(rep.Conflicts[0].Reason, "the ledger gives web-0 to "+id[0]) {
		t.Errorf("already bound %d, conflicts %+v; want 1 and web-0's", rep.AlreadyBound, rep.Conflicts)
	}
	if after := w.rawDocs(t); len(after) != len(before) || after[0]["rev"] != nil {
		t.Errorf("dry run wrote: %d documents, first %v", len(after), after[0])
	}

	// Apply: every document complete, one per hostname, the index built,
	// names from tags bound.
	opts.Apply = true
	if rep, err = adopt.Run(ctx, opts); err != nil {
		t.Fatal(err)
	}
	if len(rep.Conflicts) != 1 || len(rep.Problems) != 0 {
		t.Errorf("apply: conflicts %+v problems %q", rep.Conflicts, rep.Problems)
	}
	docs := w.rawDocs(t)
	seen := map[string]bool{}
	for _, d := range docs {
		h := d["hostname"].(string)
		if seen[h] {
			t.Errorf("hostname %s still duplicated", h)
		}
		seen[h] = true
		for _, f := range []string{"role", "ordinal", "rev", "updated_at"} {
			if _, ok := d[f]; !ok {
				t.Errorf("%s lacks %s after adopt", h, f)
			}
		}
	}
	recs, err := w.store.Records(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range recs {
		got[r.Hostname] = r.InstanceID
	}
	for h, want := range map[string]string{"web-0": id[0], "web-1": id[2], "web-2": id[10], "web-3": id[4], "web-7": id[6],
		"db-master": id[5], "db-slave-1": "", "db-slave-4": id[9], "api-2": id[8]} {
		if got[h] != want {
			t.Errorf("%s = %q, want %q", h, got[h], want)
		}
	}
	if len(got) != 9 {
		t.Errorf("records = %v, want 9 names", got)
	}
	// 1.x clients still read what they wrote: aliases kept, service_type as 1.x spells it.
	for _, d := range docs {
		if d["hostname"] == "web-0" && (d["service_type"] != "iterative" || len(d["aliases"].(bson.A)) != 1) {
			t.Errorf("web-0 after adopt = %v", d)
		}
	}
	if _, err := w.raw.InsertOne(ctx, doc("web-0", "web", "iterative", "i-racer", "10.9.9.9")); !mongo.IsDuplicateKeyError(err) {
		t.Errorf("insert of a second web-0 after adopt: %v, want a duplicate key error (unique index)", err)
	}

	// Adopting again has nothing left to do.
	opts.Apply = false
	if rep, err = adopt.Run(ctx, opts); err != nil {
		t.Fatal(err)
	}
	if rep.Pending() {
		t.Errorf("second adopt still pending: %+v", rep)
	}
}

// TestAdoptWithoutCloud resolves duplicates by age alone and reads no tags.
func TestAdoptWithoutCloud(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	older := doc("web-0", "web", "iterative", "i-old", "10.0.0.1")
	newer := doc("web-0", "web", "iterative", "i-new", "10.0.0.2")
	w.seed(t, older, newer)
	rep, err := adopt.Run(ctx, adopt.Options{Ledger: w.store, Apply: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Duplicates) != 1 || rep.Duplicates[0].Kept.Instance != "i-new" || rep.Duplicates[0].Removed[0].State != "unknown" {
		t.Errorf("duplicates = %+v, want i-new kept (newer), i-old unknown", rep.Duplicates)
	}
	recs, _ := w.store.Records(ctx, "")
	if len(recs) != 1 || recs[0].InstanceID != "i-new" || recs[0].Rev == 0 {
		t.Errorf("records = %+v", recs)
	}
}

// TestAdoptLosesToAConcurrentWriter: a 1.x client writes between adopt's
// read and its write; adopt reports the conflict and writes nothing over it.
func TestAdoptLosesToAConcurrentWriter(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.seed(t, doc("web-0", "web", "iterative", "i-a", "10.0.0.1"))
	docs, _, err := w.store.Documents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.raw.UpdateOne(ctx, bson.M{"hostname": "web-0"}, bson.M{"$set": bson.M{"instance_id": "i-b"}}); err != nil {
		t.Fatal(err)
	}
	if err := w.store.Backfill(ctx, docs[0]); !strings.Contains(err.Error(), ledger.ErrConflict.Error()) {
		t.Errorf("backfill over a concurrent write: %v, want a conflict", err)
	}
	if err := w.store.Remove(ctx, docs[0]); err == nil {
		t.Error("remove over a concurrent write succeeded")
	}
	if n, _ := w.raw.CountDocuments(ctx, bson.M{"hostname": "web-0", "instance_id": "i-b", "rev": bson.M{"$exists": false}}); n != 1 {
		t.Errorf("the 1.x client's write was overwritten")
	}
}

func TestAdoptTagRules(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.seed(t, doc("web-9", "web", "iterative", "i-elsewhere", "10.9.0.1"))
	if err := w.fleet.Terminate(w.ids[5]); err != nil {
		t.Fatal(err)
	}
	w.tag(t, 0, "aerostat:service", "web", "Name", "web-1")
	w.tag(t, 1, "aerostat:service", "web", "Name", "web-1") // same tag twice
	w.tag(t, 2, "aerostat:service", "db", "aerostat:service-type", "masterful", "Name", "db-master")
	w.tag(t, 3, "aerostat:service", "web", "Name", "web-x")
	w.tag(t, 4, "aerostat:service", "q", "aerostat:service-type", "star", "Name", "q-0")
	w.tag(t, 5, "aerostat:service", "web", "Name", "web-6") // terminated
	w.tag(t, 6, "aerostat:service", "web", "aerostat:hostname", "web-2", "Name", "web-3")
	w.tag(t, 7, "Name", "WEB-4 ") // untagged service, sloppy case and space
	rep, err := adopt.Run(ctx, adopt.Options{Ledger: w.store, Cloud: w.ec2, Services: map[string]naming.Scheme{"web": naming.Iterative}, Apply: true})
	if err != nil {
		t.Fatal(err)
	}
	var binds []string
	for _, b := range rep.Binds {
		binds = append(binds, b.Hostname+"="+b.Instance+" "+b.Tag)
	}
	want := []string{
		"db-master=" + w.ids[2] + " Name=db-master",
		"web-1=" + w.ids[0] + " Name=web-1",
		"web-2=" + w.ids[6] + " aerostat:hostname=web-2",
		"web-4=" + w.ids[7] + " Name=WEB-4 ",
	}
	if !slices.Equal(binds, want) {
		t.Errorf("binds:\n%s\nwant:\n%s", strings.Join(binds, "\n"), strings.Join(want, "\n"))
	}
	var conflicts []string
	for _, c := range rep.Conflicts {
		conflicts = append(conflicts, c.Hostname+": "+c.Reason)
	}
	for _, w := range []string{"web-1: tag also on", "web-x: not a Iterative name of service web", `q-0: tag aerostat:service-type "star"`} {
		if !strings.Contains(strings.Join(conflicts, "\n"), w) {
			t.Errorf("conflicts lack %q:\n%s", w, strings.Join(conflicts, "\n"))
		}
	}
	recs, _ := w.store.Records(ctx, "db")
	if len(recs) != 1 || recs[0].Role != naming.RoleMaster || recs[0].Scheme != naming.Masterful {
		t.Errorf("db records = %+v, want db-master as a masterful master", recs)
	}
}
