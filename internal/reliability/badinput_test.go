package reliability

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/agent"
	"github.com/aerostat-io/aerostat/internal/hostsfile"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
)

// TestCorruptLedgerDocuments: a ledger holding what years of 1.x clients
// and hand edits leave (documents without a hostname, fields of the wrong
// type, a bad address, a hostname held twice from a 1.x race) is read
// without failing: every finding names the document or hostname and the
// field; the controller keeps naming the fleet, never adds a second
// holder to a name, and leaves the unusable documents alone; agents
// render only usable entries.
func TestCorruptLedgerDocuments(t *testing.T) {
	ctx := context.Background()
	db := ledgertest.Database(t)
	seed := ledgertest.Open(t, ledger.Options{Database: db, ReadOnly: true})
	servers := seed.Client().Database(db).Collection("servers")
	w := newWorld(t)
	ids := w.launch(4, "web", "")
	ip := func(i int) string { in, _ := w.fleet.Instance(ids[i]); return in.PrivateIP }
	corrupt := []any{
		bson.M{"_id": "no-hostname", "service": "web", "instance_id": "i-x", "ip": "10.1.1.1"},
		bson.M{"_id": "numeric-hostname", "hostname": 42, "service": "web"},
		bson.M{"_id": "wrong-types", "hostname": "web-7", "service": "web", "instance_id": "", "ip": "",
			"aliases": 7, "ordinal": "seven", "rev": "x", "updated_at": "yesterday"},
		bson.M{"_id": "bad-ip", "hostname": "web-8", "service": "web", "instance_id": "i-gone", "ip": "10.0.0.300", "aliases": bson.A{}},
		// A 1.x race: two documents for web-0, one per instance.
		bson.M{"_id": "dup-a", "hostname": "web-0", "service": "web", "service_type": "iterative", "instance_id": ids[0], "ip": ip(0), "aliases": bson.A{}},
		bson.M{"_id": "dup-b", "hostname": "web-0", "service": "web", "service_type": "iterative", "instance_id": ids[1], "ip": ip(1), "aliases": bson.A{}},
		bson.M{"_id": "unknown-type", "hostname": "web-1", "service": "web", "service_type": "roundrobin", "instance_id": "", "ip": "", "aliases": bson.A{}},
	}
	if _, err := servers.InsertMany(ctx, corrupt); err != nil {
		t.Fatal(err)
	}
	// The ledger opens on it: the unique index cannot be built, which is a
	// problem it reports, not an error.
	m := ledgertest.Open(t, ledger.Options{Database: db})
	w.store, w.db = m, db
	recs, err := m.Records(ctx, "")
	if err != nil {
		t.Fatalf("Records on corrupt data: %v", err)
	}
	problems := strings.Join(m.Problems(), "\n")
	for _, want := range []string{"unique index", "no-hostname", "numeric-hostname", "field aliases", "field ordinal",
		"field rev", "field updated_at", "web-0: held by 2 documents", `"roundrobin"`} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems do not mention %s:\n%s", want, problems)
		}
	}
	if len(recs) != 5 {
		t.Errorf("%d usable records, want 5 (two without a usable hostname skipped)", len(recs))
	}

	before := map[string]bson.Raw{}
	for _, id := range []string{"no-hostname", "numeric-hostname"} {
		before[id], _ = servers.FindOne(ctx, bson.M{"_id": id}).Raw()
	}
	sa := w.standalone(m)
	for range 2 {
		if _, err := sa.Pass(ctx); err != nil {
			t.Fatalf("pass over corrupt data: %v", err)
		}
	}
	for id, b := range before {
		if after, _ := servers.FindOne(ctx, bson.M{"_id": id}).Raw(); !slices.Equal(after, b) {
			t.Errorf("document %s changed: %s → %s", id, b, after)
		}
	}
	docs, err := ReadDocs(ctx, m.Client().Database(db))
	if err != nil {
		t.Fatal(err)
	}
	if v := CheckUnique(docs); len(v) != 1 || !strings.Contains(v[0], "web-0") {
		t.Errorf("duplicates after the passes: %v; want only the 1.x one (web-0), none added", v)
	}
	// Every live instance is named once, whatever the 1.x duplicate says.
	live, _ := w.live()
	held := map[string]int{}
	for _, r := range w.records() {
		if !r.Free() {
			held[r.InstanceID]++
		}
	}
	for id := range live {
		if held[id] == 0 {
			t.Errorf("live %s has no name", id)
		}
	}

	n := newNodeAgent(t, "corrupt", func(fc *clocktesting.FakeClock) agent.Source {
		return agent.NewLedgerSource(seed, ledger.FollowerOptions{Clock: fc, Overlap: time.Second, ResyncEvery: time.Minute})
	})
	for range 3 {
		if err := n.sync(); err != nil {
			t.Fatal(err)
		}
	}
	block := mustBlock(t, n.path)
	if s := strings.Join(block, "\n"); strings.Contains(s, "10.0.0.300") || strings.Contains(s, "web-8") {
		t.Errorf("agent rendered the record with a bad address:\n%s", s)
	}
	for _, v := range CheckHostsFile(n.path, userHead, nil) {
		t.Error(v)
	}
}

// TestAgentHandEditedHostsFile: an /etc/hosts whose managed block was
// broken by hand (a begin marker without its end) is left exactly as it
// is, the agent reports what is wrong (line and marker) and stays
// degraded until the file is repaired; duplicated blocks are merged into
// one, keeping the user's lines between them.
func TestAgentHandEditedHostsFile(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.launch(3, "web", "")
	if _, err := w.standalone(w.store).Pass(ctx); err != nil {
		t.Fatal(err)
	}
	ro := ledgertest.Open(t, ledger.Options{Database: w.db, ReadOnly: true})
	n := newNodeAgent(t, "edited", func(fc *clocktesting.FakeClock) agent.Source {
		return agent.NewLedgerSource(ro, ledger.FollowerOptions{Clock: fc, Overlap: time.Second, ResyncEvery: time.Minute})
	})
	want := Want(w.records())

	broken := userHead + "# AEROSTAT\n10.0.0.1 web-0\n10.0.0.2 stale-entry\n"
	if err := os.WriteFile(n.path, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	err := n.sync()
	if !errors.Is(err, hostsfile.ErrBrokenBlock) || !strings.Contains(err.Error(), "line") {
		t.Errorf("sync of a broken block: %v, want ErrBrokenBlock naming the line", err)
	}
	if got := n.file(t); got != broken {
		t.Errorf("broken file rewritten:\n%s", got)
	}
	if _, degraded := n.agent.Status(); degraded == nil {
		t.Error("agent not degraded on a broken block")
	}

	dup := "# AEROSTAT\n10.0.0.9 web-0\n# /AEROSTAT\n" + userHead + "# AEROSTAT\n10.0.0.8 web-1\n# /AEROSTAT\n"
	if err := os.WriteFile(n.path, []byte(dup), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.sync(); err != nil {
		t.Fatalf("sync of a duplicated block: %v", err)
	}
	got := n.file(t)
	if strings.Count(got, "# AEROSTAT\n") != 1 || !strings.Contains(got, userHead) {
		t.Errorf("duplicated blocks not merged into one, or user lines lost:\n%s", got)
	}
	if b := mustBlock(t, n.path); !slices.Equal(b, want) {
		t.Errorf("block = %v, want %v", b, want)
	}
}

// TestAgentLegacyUpdaterFailsOrHangs: a 1.x legacy updater that fails or
// hangs is killed at its timeout; the agent keeps the legacy section it
// had and still writes the names.
func TestAgentLegacyUpdaterFailsOrHangs(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh to run test updaters")
	}
	ctx := context.Background()
	w := newWorld(t)
	w.launch(2, "web", "")
	sa := w.standalone(w.store)
	if _, err := sa.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	legacyFile := filepath.Join(dir, "hosts.legacy")
	prog := filepath.Join(dir, "updater")
	script := func(body string) {
		if err := os.WriteFile(prog, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script("echo '192.168.7.7 old-db' > " + legacyFile + "\n")
	ro := ledgertest.Open(t, ledger.Options{Database: w.db, ReadOnly: true})
	fc := clocktesting.NewFakeClock(epoch)
	path := filepath.Join(dir, "hosts")
	if err := os.WriteFile(path, []byte(userHead), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Options{
		Source: agent.NewLedgerSource(ro, ledger.FollowerOptions{Clock: fc, Overlap: time.Second, ResyncEvery: time.Minute}),
		Writer: &hostsfile.Writer{Path: path},
		Legacy: func(ctx context.Context) ([]byte, error) {
			return hostsfile.RunLegacy(ctx, prog, legacyFile, 300*time.Millisecond)
		},
		ReassertEvery: time.Second, Clock: fc, Metrics: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	syncOnce := func() error { fc.Step(2 * time.Second); return a.SyncOnce(ctx) }
	if err := syncOnce(); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(path)
	if !strings.Contains(string(good), "192.168.7.7 old-db") {
		t.Fatalf("legacy section missing:\n%s", good)
	}
	for name, body := range map[string]string{
		"fails": "echo broken > " + legacyFile + "\nexit 3\n",
		"hangs": "sleep 30\n",
	} {
		t.Run(name, func(t *testing.T) {
			script(body)
			w.launch(1, "web", "")
			if _, err := sa.Pass(ctx); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err := syncOnce()
			if took := time.Since(start); took > 20*time.Second {
				t.Errorf("sync with a %s updater took %s: not bounded by its timeout", name, took)
			}
			if err != nil {
				t.Fatalf("sync with a %s updater: %v", name, err)
			}
			b, _ := os.ReadFile(path)
			if !strings.Contains(string(b), "192.168.7.7 old-db") || strings.Contains(string(b), "broken") {
				t.Errorf("legacy section not kept:\n%s", b)
			}
			if got, want := mustBlock(t, path), Want(w.records()); !slices.Equal(got, want) {
				t.Errorf("names not written past a %s updater: %v, want %v", name, got, want)
			}
		})
	}
}
