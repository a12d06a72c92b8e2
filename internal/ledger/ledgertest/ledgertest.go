// Package ledgertest gives tests a real ledger: MongoDB from
// AEROSTAT_TEST_MONGODB_URI when set, otherwise one embedded FerretDB per
// test binary, started on first use on a free 127.0.0.1 port with a temp
// data directory. Each New gets its own database, dropped at cleanup.
//
// Call Main from TestMain to stop the embedded store and remove its data
// directory when the tests end; without it the OS frees the port at exit
// but the directory stays in $TMPDIR.
package ledgertest

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/store/embedded"
)

// EnvURI names the variable that points the tests at a real MongoDB.
const EnvURI = "AEROSTAT_TEST_MONGODB_URI"

// The store is shared by every test in the binary; starting FerretDB per
// test would cost a second each.
var shared struct {
	once sync.Once
	srv  *embedded.Server
	dir  string
	uri  string
	err  error
	dbs  atomic.Int64
}

// URI returns the MongoDB URI tests should use, starting the embedded
// store on first call. It fails the test if the store cannot start.
func URI(t testing.TB) string {
	t.Helper()
	if uri := os.Getenv(EnvURI); uri != "" {
		return uri
	}
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "aerostat-ledgertest-")
		if shared.err != nil {
			return
		}
		shared.srv, shared.err = embedded.Start(context.Background(), embedded.Options{DataDir: shared.dir})
		if shared.err == nil {
			shared.uri = shared.srv.URI()
		}
	})
	if shared.err != nil {
		t.Fatalf("starting embedded store: %v", shared.err)
	}
	return shared.uri
}

// Main runs the tests, then stops the embedded store and removes its data
// directory. Use it as `func TestMain(m *testing.M) { ledgertest.Main(m) }`.
func Main(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		_ = shared.srv.Close()
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// New opens a ledger on a fresh, uniquely named database that is dropped
// when the test ends.
func New(t testing.TB) *ledger.Mongo {
	t.Helper()
	return Open(t, ledger.Options{Database: Database(t)})
}

// Database returns a fresh database name for t (for tests that insert raw
// documents before opening the ledger); it is dropped when the test ends.
func Database(t testing.TB) string {
	t.Helper()
	h := fnv.New32a()
	_, _ = h.Write([]byte(t.Name()))
	name := fmt.Sprintf("t%d_%08x_%d", os.Getpid(), h.Sum32(), shared.dbs.Add(1))
	uri := URI(t)
	t.Cleanup(func() {
		m, err := ledger.Open(context.Background(), uri, ledger.Options{Database: name, ReadOnly: true})
		if err != nil {
			t.Logf("dropping test database %s: %v", name, err)
			return
		}
		defer func() { _ = m.Close(context.Background()) }()
		if err := m.Client().Database(name).Drop(context.Background()); err != nil {
			t.Logf("dropping test database %s: %v", name, err)
		}
	})
	return name
}

// Timeout is each store call's bound in tests that set none.
//
// ledger.DefaultTimeout (10 s) is a production promise: a half-open
// connection fails a call instead of hanging a node. Tests share one
// embedded store, run under -race (which slows FerretDB's SQLite about
// tenfold) beside other packages on two cores, and some start a hundred
// registrations at once: traced at load 10, no request stalled in the
// store's serializer, but reads queued for CPU up to 11 s. Those tests
// check naming under contention, not latency, so they get a bound a
// loaded machine keeps; tests of the bound itself set their own
// (reliability's TestStuckStore).
const Timeout = 2 * time.Minute

// Open opens a ledger on the test store with opts (Database should come
// from Database) and closes it when the test ends. A zero Logger logs to
// t; a zero Timeout is the package's Timeout.
func Open(t testing.TB, opts ledger.Options) *ledger.Mongo {
	t.Helper()
	if opts.Logger.GetSink() == nil {
		opts.Logger = testr.NewWithInterface(t, testr.Options{})
	}
	if opts.Timeout == 0 {
		opts.Timeout = Timeout
	}
	m, err := ledger.Open(context.Background(), URI(t), opts)
	if err != nil {
		t.Fatalf("opening ledger: %v", err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

// PartialIndexes reports whether the test store has partial indexes
// (MongoDB does, the embedded FerretDB v1 does not).
func PartialIndexes(t testing.TB) bool {
	t.Helper()
	return os.Getenv(EnvURI) != ""
}
