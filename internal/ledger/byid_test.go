package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
	"github.com/aerostat-io/aerostat/internal/store/embedded"
)

// scanLog counts, while on, the commands on the servers collection that
// FerretDB received with a filter other than exactly {_id}: each one
// decodes every name in Go.
type scanLog struct {
	on    atomic.Bool
	mu    sync.Mutex
	scans []embedded.Query
	byID  map[string]int
}

func (l *scanLog) record(q embedded.Query) {
	if !l.on.Load() || q.Collection != "servers" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !q.ExactID {
		l.scans = append(l.scans, q)
		return
	}
	if l.byID == nil {
		l.byID = map[string]int{}
	}
	l.byID[q.Command]++
}

// A compare-and-set on an existing record reaches the embedded store only
// as exact-_id commands, whether it wins or loses, and a 1.x write still
// makes it lose.
func TestCompareAndSetNeverScans(t *testing.T) {
	if os.Getenv(ledgertest.EnvURI) != "" {
		t.Skip("counts the embedded store's queries; " + ledgertest.EnvURI + " points at another server")
	}
	ctx := context.Background()
	var log scanLog
	srv, err := embedded.Start(ctx, embedded.Options{DataDir: t.TempDir(), Listen: "127.0.0.1:0", QueryLog: log.record})
	if err != nil {
		t.Fatalf("starting store: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	m, err := ledger.Open(ctx, srv.URI(), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(ctx) })

	var binds []naming.Change
	for i := range 50 {
		binds = append(binds, bind(fmt.Sprintf("web-%d", i), i, fmt.Sprintf("i-%d", i), fmt.Sprintf("10.0.0.%d", i+1)))
	}
	mustApply(t, m, binds...)
	// A 1.x document, inserted by a 1.x client: no rev, learnt by a read.
	if _, err := m.Client().Database(ledger.DefaultDatabase).Collection("servers").InsertOne(ctx, bson.D{
		{Key: "hostname", Value: "old-0"}, {Key: "service", Value: "old"}, {Key: "service_type", Value: "iterative"},
		{Key: "instance_id", Value: "i-old"}, {Key: "ip", Value: "10.1.0.1"}, {Key: "aliases", Value: bson.A{}},
	}); err != nil {
		t.Fatal(err)
	}
	recs := mustRecords(t, m, "")

	log.on.Store(true)
	web3 := recs["web-3"]
	steps := map[string]struct {
		c        naming.Change
		conflict bool
	}{
		"set ip": {c: naming.Change{Type: naming.SetIP, Hostname: "web-1", IP: "10.0.9.1", ExpectExists: true,
			ExpectInstanceID: "i-1", ExpectRev: recs["web-1"].Rev}},
		"release": {c: naming.Change{Type: naming.Release, Hostname: "web-2", ExpectExists: true,
			ExpectInstanceID: "i-2", ExpectRev: recs["web-2"].Rev}},
		"stale rev": {c: naming.Change{Type: naming.SetIP, Hostname: "web-3", IP: "10.0.9.3", ExpectExists: true,
			ExpectInstanceID: "i-3", ExpectRev: web3.Rev + 100}, conflict: true},
		"other instance": {c: naming.Change{Type: naming.SetIP, Hostname: "web-4", IP: "10.0.9.4", ExpectExists: true,
			ExpectInstanceID: "i-x", ExpectRev: recs["web-4"].Rev}, conflict: true},
		"1.x record, no rev": {c: naming.Change{Type: naming.SetIP, Hostname: "old-0", IP: "10.1.0.2", ExpectExists: true,
			ExpectInstanceID: "i-old"}},
	}
	for name, s := range steps {
		_, err := m.Apply(ctx, []naming.Change{s.c})
		if got := errors.Is(err, ledger.ErrConflict); got != s.conflict || (err != nil && !got) {
			t.Errorf("%s: Apply = %v, want conflict %v", name, err, s.conflict)
		}
	}

	// A 1.x client's unconditional update by hostname (a scan of its own,
	// not counted) makes the next compare-and-set on that name lose.
	log.on.Store(false)
	if _, err := m.Client().Database(ledger.DefaultDatabase).Collection("servers").UpdateOne(ctx,
		bson.D{{Key: "hostname", Value: "web-5"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "instance_id", Value: "i-1x"}}}}); err != nil {
		t.Fatal(err)
	}
	log.on.Store(true)
	_, err = m.Apply(ctx, []naming.Change{{Type: naming.Release, Hostname: "web-5", ExpectExists: true,
		ExpectInstanceID: "i-5", ExpectRev: recs["web-5"].Rev}})
	if !errors.Is(err, ledger.ErrConflict) {
		t.Errorf("release of web-5 after a 1.x rebind = %v, want a conflict", err)
	}
	log.on.Store(false)

	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.scans) > 0 {
		t.Errorf("compare-and-sets sent %d commands that scan the collection: %+v", len(log.scans), log.scans)
	}
	// Six writes: each reads its document by _id; the three winners also
	// write it by _id.
	if log.byID["find"] != 6 || log.byID["findAndModify"] != 3 {
		t.Errorf("exact-_id commands = %v, want 6 find and 3 findAndModify", log.byID)
	}
	got := mustRecords(t, m, "")
	if got["web-1"].IP != "10.0.9.1" || got["web-2"].InstanceID != "" || got["old-0"].IP != "10.1.0.2" {
		t.Errorf("winning writes not applied: web-1 %+v, web-2 %+v, old-0 %+v", got["web-1"], got["web-2"], got["old-0"])
	}
	if got["web-3"].IP != web3.IP || got["web-4"].IP != recs["web-4"].IP || got["web-5"].InstanceID != "i-1x" {
		t.Errorf("a losing write changed a record: web-3 %+v, web-4 %+v, web-5 %+v", got["web-3"], got["web-4"], got["web-5"])
	}
}
