package agent

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/feed"
	"github.com/aerostat-io/aerostat/internal/feed/feedtest"
	"github.com/aerostat-io/aerostat/internal/hostsfile"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

const userLines = "127.0.0.1 localhost\n# mine\n"

type fixture struct {
	agent *Agent
	clock *clocktesting.FakeClock
	path  string
	reg   *prometheus.Registry
}

func newFixture(t *testing.T, src func(*clocktesting.FakeClock) Source, opts Options) *fixture {
	t.Helper()
	fc := clocktesting.NewFakeClock(t0)
	path := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(path, []byte(userLines), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	opts.Source = src(fc)
	opts.Writer = &hostsfile.Writer{Path: path}
	opts.Clock = fc
	opts.Metrics = reg
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{agent: a, clock: fc, path: path, reg: reg}
}

func ledgerSource(st *feedtest.MemStore) func(*clocktesting.FakeClock) Source {
	return func(fc *clocktesting.FakeClock) Source {
		return NewLedgerSource(st, ledger.FollowerOptions{Clock: fc, Overlap: 5 * time.Second, ResyncEvery: time.Hour})
	}
}

func (f *fixture) block(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), userLines) {
		t.Fatalf("user lines lost: %q", b)
	}
	p, err := hostsfile.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range p.Entries {
		out = append(out, e.IP+" "+e.Hostname)
	}
	return strings.Join(out, ",")
}

func (f *fixture) sync(t *testing.T) error {
	t.Helper()
	f.clock.Step(time.Second)
	return f.agent.SyncOnce(context.Background())
}

func (f *fixture) readyz(t *testing.T) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	f.agent.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	return rec.Code, rec.Body.String()
}

func TestAgentFollowsLedgerAndSurvivesOutage(t *testing.T) {
	st := feedtest.New()
	st.Bind("web-0", "web", "i-0", "10.0.0.1", "www")
	st.Bind("web-1", "web", "i-1", "10.0.0.2")
	f := newFixture(t, ledgerSource(st), Options{})

	if code, _ := f.readyz(t); code != http.StatusServiceUnavailable {
		t.Errorf("readyz before the first sync = %d", code)
	}
	if err := f.sync(t); err != nil {
		t.Fatal(err)
	}
	if got := f.block(t); got != "10.0.0.1 web-0,10.0.0.2 web-1,10.0.0.1 www" {
		t.Fatalf("block = %s", got)
	}
	if code, _ := f.readyz(t); code != http.StatusOK {
		t.Errorf("readyz = %d", code)
	}

	st.Bind("web-2", "web", "i-2", "10.0.0.3")
	if err := f.sync(t); err != nil {
		t.Fatal(err)
	}
	if got := f.block(t); !strings.Contains(got, "10.0.0.3 web-2") {
		t.Fatalf("block = %s", got)
	}

	// Store down: file untouched, degraded, metrics say so.
	good, _ := os.ReadFile(f.path)
	st.SetDown(true)
	for range 3 {
		if err := f.sync(t); !errors.Is(err, feedtest.ErrDown) {
			t.Fatalf("sync with store down: %v", err)
		}
	}
	f.clock.Step(2 * time.Hour) // even a due full resync must not blank the file
	if err := f.sync(t); err == nil {
		t.Fatal("sync succeeded with the store down")
	}
	if now, _ := os.ReadFile(f.path); string(now) != string(good) {
		t.Fatalf("file changed while the store was down:\n%s", now)
	}
	if code, body := f.readyz(t); code != http.StatusServiceUnavailable || !strings.Contains(body, "degraded") {
		t.Errorf("readyz while down = %d %q", code, body)
	}
	if v := testutil.ToFloat64(f.agent.m.sourceUp); v != 0 {
		t.Errorf("source_up = %v", v)
	}

	// Recovery.
	st.SetDown(false)
	st.Release("web-1")
	if err := f.sync(t); err != nil {
		t.Fatal(err)
	}
	if got := f.block(t); got != "10.0.0.1 web-0,10.0.0.3 web-2,10.0.0.1 www" {
		t.Fatalf("block after recovery = %s", got)
	}
	if code, _ := f.readyz(t); code != http.StatusOK {
		t.Errorf("readyz after recovery = %d", code)
	}
	if v := testutil.ToFloat64(f.agent.m.writes); v != 3 {
		t.Errorf("writes_total = %v, want 3", v)
	}
	rec := httptest.NewRecorder()
	f.agent.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, name := range []string{"aerostat_agent_source_up 1", "aerostat_agent_applied_rev", "aerostat_agent_last_success_timestamp_seconds", "aerostat_agent_writes_total 3"} {
		if !strings.Contains(rec.Body.String(), name) {
			t.Errorf("/metrics lacks %q", name)
		}
	}
}

func TestAgentNeverWritesBeforeFirstGoodRead(t *testing.T) {
	st := feedtest.New()
	st.SetDown(true)
	f := newFixture(t, ledgerSource(st), Options{})
	if err := f.sync(t); err == nil {
		t.Fatal("sync succeeded with the store down")
	}
	if b, _ := os.ReadFile(f.path); string(b) != userLines {
		t.Errorf("file written without a good read: %q", b)
	}
}

func TestAgentShrinkGuard(t *testing.T) {
	st := feedtest.New()
	for i, h := range []string{"web-0", "web-1", "web-2", "web-3"} {
		st.Bind(h, "web", "i-"+h, "10.0.0."+string(rune('1'+i)))
	}
	f := newFixture(t, ledgerSource(st), Options{})
	if err := f.sync(t); err != nil {
		t.Fatal(err)
	}
	// Releases are authoritative: three of four may go.
	st.Release("web-1")
	st.Release("web-2")
	st.Release("web-3")
	if err := f.sync(t); err != nil {
		t.Fatal(err)
	}
	if got := f.block(t); got != "10.0.0.1 web-0" {
		t.Fatalf("block = %s", got)
	}
	// Documents vanishing from a full read are not: the file is kept.
	for _, h := range []string{"web-4", "web-5", "web-6"} {
		st.Bind(h, "web", "i-"+h, "10.0.1.1")
	}
	if err := f.sync(t); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"web-0", "web-4", "web-5", "web-6"} {
		st.Delete(h)
	}
	f.clock.Step(2 * time.Hour)
	if err := f.sync(t); !errors.Is(err, hostsfile.ErrShrink) {
		t.Fatalf("sync = %v, want ErrShrink", err)
	}
	if got := f.block(t); strings.Count(got, ",") != 3 {
		t.Errorf("block changed: %s", got)
	}
}

// Two writers commit out of order while the agent polls; it must end up
// with both names.
func TestAgentOutOfOrderWriters(t *testing.T) {
	st := feedtest.New()
	st.Bind("web-0", "web", "i-0", "10.0.0.1")
	f := newFixture(t, ledgerSource(st), Options{})
	for range 10 { // past the startup follow-up read
		if err := f.sync(t); err != nil {
			t.Fatal(err)
		}
	}
	revA, revB := st.TakeRev(), st.TakeRev()
	st.Commit(naming.Record{Hostname: "web-2", Service: "web", InstanceID: "i-2", IP: "10.0.0.3"}, revB)
	if err := f.sync(t); err != nil {
		t.Fatal(err)
	}
	st.Commit(naming.Record{Hostname: "web-1", Service: "web", InstanceID: "i-1", IP: "10.0.0.2"}, revA)
	for range 10 {
		if err := f.sync(t); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.block(t); got != "10.0.0.1 web-0,10.0.0.2 web-1,10.0.0.3 web-2" {
		t.Fatalf("block = %s", got)
	}
}

// The applied rev is the follower's settled rev: while rev 2 is in flight
// a file holding rev 3's name is at rev 1; the late commit brings it to 3.
// A rev that never commits is passed once the overlap has, without a write
// (the file already holds every name).
func TestAgentAppliedRevIsSettled(t *testing.T) {
	st := feedtest.New()
	st.Bind("web-0", "web", "i-0", "10.0.0.1") // rev 1
	f := newFixture(t, ledgerSource(st), Options{})
	applied := func(want int64, step string) {
		t.Helper()
		if err := f.sync(t); err != nil {
			t.Fatal(err)
		}
		if v := testutil.ToFloat64(f.agent.m.appliedRev); v != float64(want) {
			t.Fatalf("%s: applied rev = %v, want %d (block %s)", step, v, want, f.block(t))
		}
	}
	applied(1, "first sync")

	held := st.TakeRev()                       // rev 2: in flight
	st.Bind("web-1", "web", "i-1", "10.0.0.2") // rev 3
	applied(1, "rev 2 in flight")
	if got := f.block(t); got != "10.0.0.1 web-0,10.0.0.2 web-1" {
		t.Fatalf("block = %s", got)
	}
	st.Commit(naming.Record{Hostname: "web-2", Service: "web", InstanceID: "i-2", IP: "10.0.0.3"}, held)
	applied(3, "rev 2 committed")

	st.TakeRev()                               // rev 4: never commits
	st.Bind("web-3", "web", "i-3", "10.0.0.4") // rev 5
	applied(3, "rev 4 abandoned")
	writes := testutil.ToFloat64(f.agent.m.writes)
	for range 4 { // 1s to 4s after rev 5 was first seen; the overlap is 5s
		applied(3, "within the overlap")
	}
	applied(5, "past the overlap")
	if got := testutil.ToFloat64(f.agent.m.writes); got != writes {
		t.Errorf("%v writes while the abandoned rev settled, want none", got-writes)
	}
}

func TestAgentOverFeed(t *testing.T) {
	ctx := context.Background()
	st := feedtest.New()
	st.Bind("db-master", "db", "i-0", "10.0.0.1")
	h := feed.NewHandler(st, feed.Options{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	if err := h.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(*clocktesting.FakeClock) Source {
		c, err := feed.NewClient(srv.URL, srv.Client(), 0)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}, Options{})
	if err := f.sync(t); err != nil {
		t.Fatal(err)
	}
	st.Bind("db-slave-1", "db", "i-1", "10.0.0.2")
	if err := h.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.sync(t); err != nil {
		t.Fatal(err)
	}
	if got := f.block(t); got != "10.0.0.1 db-master,10.0.0.2 db-slave-1" {
		t.Fatalf("block = %s", got)
	}
	srv.Close()
	if err := f.sync(t); err == nil {
		t.Fatal("sync succeeded with the feed down")
	}
	if got := f.block(t); got != "10.0.0.1 db-master,10.0.0.2 db-slave-1" {
		t.Fatalf("block after feed outage = %s", got)
	}
}

func TestAgentLegacy(t *testing.T) {
	st := feedtest.New()
	st.Bind("web-0", "web", "i-0", "10.0.0.1")
	legacyOut, legacyErr := "192.168.0.9 old-db\n", error(nil)
	f := newFixture(t, ledgerSource(st), Options{Legacy: func(context.Context) ([]byte, error) {
		return []byte(legacyOut), legacyErr
	}})
	if err := f.sync(t); err != nil {
		t.Fatal(err)
	}
	want := userLines + "# AEROSTAT LEGACY\n192.168.0.9 old-db\n# /AEROSTAT LEGACY\n# AEROSTAT\n10.0.0.1 web-0\n# /AEROSTAT\n"
	if b, _ := os.ReadFile(f.path); string(b) != want {
		t.Fatalf("file = %q", b)
	}
	// A failing updater keeps the previous legacy section.
	legacyErr = errors.New("updater exited 1")
	st.Bind("web-1", "web", "i-1", "10.0.0.2")
	if err := f.sync(t); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(f.path); !strings.Contains(string(b), "192.168.0.9 old-db\n# /AEROSTAT LEGACY\n") || !strings.Contains(string(b), "web-1") {
		t.Fatalf("file = %q", b)
	}
}

func TestAgentDryRun(t *testing.T) {
	st := feedtest.New()
	st.Bind("web-0", "web", "i-0", "10.0.0.1")
	f := newFixture(t, ledgerSource(st), Options{DryRun: true})
	if err := f.sync(t); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(f.path); string(b) != userLines {
		t.Errorf("dry run wrote the file: %q", b)
	}
	if res := f.agent.LastResult(); !res.Changed || !strings.Contains(string(res.New), "10.0.0.1 web-0") {
		t.Errorf("LastResult = %+v", res)
	}
}

func TestAgentBackoff(t *testing.T) {
	f := newFixture(t, ledgerSource(feedtest.New()), Options{Interval: time.Second, BackoffMin: time.Second, BackoffMax: 8 * time.Second})
	tests := map[string]struct {
		failures int
		err      error
		lo, hi   time.Duration
	}{
		"healthy":       {0, nil, 800 * time.Millisecond, 1200 * time.Millisecond},
		"first failure": {1, io.EOF, 800 * time.Millisecond, 1200 * time.Millisecond},
		"third failure": {3, io.EOF, 3200 * time.Millisecond, 4800 * time.Millisecond},
		"capped":        {20, io.EOF, 6400 * time.Millisecond, 9600 * time.Millisecond},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f.agent.failures = tc.failures
			if d := f.agent.nextWait(tc.err); d < tc.lo || d > tc.hi {
				t.Errorf("wait = %v, want in [%v, %v]", d, tc.lo, tc.hi)
			}
		})
	}
}

func TestAgentRunStopsOnCancel(t *testing.T) {
	st := feedtest.New()
	st.Bind("web-0", "web", "i-0", "10.0.0.1")
	f := newFixture(t, ledgerSource(st), Options{Interval: time.Second})
	armed := make(chan struct{}, 10)
	f.agent.armed = func(time.Duration, bool) { armed <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.agent.Run(ctx) }()
	select { // first sync done, waiting for the next
	case <-armed:
	case err := <-done:
		t.Fatalf("Run returned early: %v", err)
	}
	if got := f.block(t); got != "10.0.0.1 web-0" {
		t.Errorf("block = %s", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestAgentSharesRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	for range 2 {
		if _, err := New(Options{Source: ledgerSource(feedtest.New())(clocktesting.NewFakeClock(t0)),
			Writer: &hostsfile.Writer{Path: filepath.Join(t.TempDir(), "hosts")}, Metrics: reg}); err != nil {
			t.Fatalf("New with a shared registry: %v", err)
		}
	}
}
