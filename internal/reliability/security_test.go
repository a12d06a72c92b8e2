package reliability

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/agent"
	"github.com/aerostat-io/aerostat/internal/feed"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// repoRoot is the module root, two levels up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	return root
}

// TestNoShellingOut: no shipped code starts processes, except the legacy
// updater runner, which runs one configured program with no shell and no
// arguments (1.x ran os.system('/bin/hostname %s')). Shipped code is every
// non-test Go file outside hack/ (developer tools).
func TestNoShellingOut(t *testing.T) {
	root := repoRoot(t)
	allowed := map[string]bool{"internal/hostsfile/write.go": true} // RunLegacy
	forbidden := map[string]bool{"syscall.Exec": true, "syscall.ForkExec": true, "syscall.StartProcess": true,
		"os.StartProcess": true, "unix.Exec": true, "unix.ForkExec": true}
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			// hack/ and test/ hold build scripts and test harnesses (the e2e
			// cluster starts kubelet and containerd); nothing there ships.
			if rel == "hack" || rel == "test" || rel == "bin" || rel == "vendor" || strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, src, 0)
		if err != nil {
			return fmt.Errorf("parsing %s: %w", rel, err)
		}
		checked++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p == "os/exec" && !allowed[rel] {
				t.Errorf("%s imports os/exec", rel)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if x, ok := sel.X.(*ast.Ident); ok && forbidden[x.Name+"."+sel.Sel.Name] {
					t.Errorf("%s calls %s.%s", rel, x.Name, sel.Sel.Name)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("only %d Go files checked; the walk missed the tree", checked)
	}
	// The allowed runner must not go through a shell.
	src, err := os.ReadFile(filepath.Join(root, "internal/hostsfile/write.go"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(src), `"sh"`) || strings.Contains(string(src), `"-c"`) {
		t.Error("the legacy updater runner goes through a shell")
	}
}

// TestImageRunsAsNonRoot: the image's final stage sets a numeric non-root
// USER on a nonroot base. (The chart's pod and container security
// contexts are checked where the chart is rendered: charts/aerostat.)
func TestImageRunsAsNonRoot(t *testing.T) {
	f, err := os.Open(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var from, user string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			from, user = fields[len(fields)-1], "" // a new stage starts as root
			if strings.EqualFold(fields[len(fields)-2], "AS") {
				from = fields[len(fields)-3]
			}
		case "USER":
			user = fields[1]
		}
	}
	if user == "" {
		t.Fatalf("the final stage (FROM %s) sets no USER: the image runs as root", from)
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("USER %s: want a numeric non-zero uid (kubelet can only check runAsNonRoot against a number)", user)
	}
	if !strings.Contains(from, "nonroot") {
		t.Errorf("final stage FROM %s: want a nonroot base", from)
	}
}

// spyStore counts writes attempted through a ledger.Store.
type spyStore struct {
	ledger.Store
	applies atomic.Int64
}

func (s *spyStore) Apply(ctx context.Context, changes []naming.Change) (int, error) {
	s.applies.Add(1)
	return s.Store.Apply(ctx, changes)
}

// TestAgentNeedsNoWriteAccess: an agent works from a ledger opened
// read-only: it never asks to write (its Source interface has no write
// method), the read-only ledger refuses writes before touching the
// server, and opening it on a database creates nothing there (no index,
// no counter). With AEROSTAT_TEST_MONGODB_URI, the same runs as a MongoDB
// user holding only the read role.
func TestAgentNeedsNoWriteAccess(t *testing.T) {
	ctx := context.Background()
	for i := range reflect.TypeFor[agent.Source]().NumMethod() {
		name := reflect.TypeFor[agent.Source]().Method(i).Name
		if !slices.Contains([]string{"Poll", "Records", "Released", "Rev", "Notify"}, name) {
			t.Errorf("agent.Source has method %s: the agent's view of the store must stay read-only", name)
		}
	}

	// A fresh database: the read-only ledger must not create anything.
	empty := ledgertest.Database(t)
	ro := ledgertest.Open(t, ledger.Options{Database: empty, ReadOnly: true})
	if _, err := ro.Records(ctx, ""); err != nil {
		t.Fatal(err)
	}
	names, err := ro.Client().Database(empty).ListCollectionNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 0 {
		t.Errorf("a read-only open created %v", names)
	}

	w := newWorld(t)
	w.launch(5, "web", "")
	if _, err := w.standalone(w.store).Pass(ctx); err != nil {
		t.Fatal(err)
	}
	uri := ledgertest.URI(t)
	if os.Getenv(ledgertest.EnvURI) != "" {
		uri = readOnlyUser(t, w)
	}
	roLedger, err := ledger.Open(ctx, uri, ledger.Options{Database: w.db, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = roLedger.Close(ctx) })
	spy := &spyStore{Store: roLedger}
	n := newNodeAgent(t, "ro", func(fc *clocktesting.FakeClock) agent.Source {
		return agent.NewLedgerSource(spy, ledger.FollowerOptions{Clock: fc, Overlap: time.Second, ResyncEvery: time.Minute})
	})
	rev := w.rev()
	for range 5 {
		if err := n.sync(); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := mustBlock(t, n.path), Want(w.records()); !slices.Equal(got, want) {
		t.Errorf("read-only agent block = %v, want %v", got, want)
	}
	if spy.applies.Load() != 0 || w.rev() != rev {
		t.Errorf("the agent wrote: %d Apply calls, rev %d → %d", spy.applies.Load(), rev, w.rev())
	}
	if _, err := roLedger.Apply(ctx, []naming.Change{{Type: naming.Bind, Hostname: "web-9", Service: "web",
		Scheme: naming.Iterative, InstanceID: "i-evil", IP: "10.6.6.6"}}); err == nil {
		t.Error("a read-only ledger accepted a write")
	}
	if _, ok := w.bound()["web-9"]; ok {
		t.Error("the refused write reached the store")
	}
	// The server's own answer about these credentials, which `aerostat
	// agent` checks before starting: the embedded store (FerretDB v1) has
	// no users, so its clients can write and the check must say so; a
	// MongoDB user with only the read role must pass it.
	canWrite, err := roLedger.CredentialsCanWrite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := os.Getenv(ledgertest.EnvURI) == ""; canWrite != want {
		t.Errorf("CredentialsCanWrite = %v, want %v (embedded store: %v)", canWrite, want, want)
	}
	if w.rev() != rev {
		t.Errorf("the credentials probe wrote: rev %d → %d", rev, w.rev())
	}
}

// readOnlyUser creates a user with only the read role on the test
// database of a real MongoDB and returns its URI; it skips the test when
// the server refuses (no user administration rights).
func readOnlyUser(t *testing.T, w *world) string {
	t.Helper()
	ctx := context.Background()
	user, pass := "aerostat-ro-"+strconv.FormatInt(time.Now().UnixNano(), 36), "ro-"+strconv.FormatInt(time.Now().UnixNano(), 36)
	err := w.store.Client().Database(w.db).RunCommand(ctx, bson.D{{Key: "createUser", Value: user}, {Key: "pwd", Value: pass},
		{Key: "roles", Value: bson.A{bson.D{{Key: "role", Value: "read"}, {Key: "db", Value: w.db}}}}}).Err()
	if err != nil {
		t.Skipf("cannot create a read-only user on %s (needs userAdmin): %v", w.db, err)
	}
	t.Cleanup(func() {
		_ = w.store.Client().Database(w.db).RunCommand(context.Background(), bson.D{{Key: "dropUser", Value: user}}).Err()
	})
	u, err := url.Parse(ledgertest.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, pass)
	q := u.Query()
	q.Set("authSource", w.db)
	u.RawQuery = q.Encode()
	// The server, not only the ledger's ReadOnly flag, refuses this user's writes.
	c, err := mongo.Connect(options.Client().ApplyURI(u.String()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Disconnect(ctx) }()
	if _, err := c.Database(w.db).Collection("servers").InsertOne(ctx, bson.M{"hostname": "evil"}); err == nil {
		t.Error("the read-only user could insert into aerostat.servers")
	}
	return u.String()
}

func mustBlock(t *testing.T, path string) []string {
	t.Helper()
	b, err := BlockOf(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFeedIsReadOnlyAndBounded: the controller's HTTP feed, served as the
// controller serves it (feed.NewServer), answers only GET and HEAD of its
// path, returns nothing but host entries, refuses oversized requests and
// sheds load past its in-flight limit; no request changes the ledger.
func TestFeedIsReadOnlyAndBounded(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.launch(3, "web", "")
	if _, err := w.standalone(w.store).Pass(ctx); err != nil {
		t.Fatal(err)
	}
	spy := &spyStore{Store: w.store}
	h := feed.NewHandler(spy, feed.Options{MaxInFlight: 2, MaxWait: time.Minute})
	if err := h.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := feed.NewServer(ln.Addr().String(), h, time.Minute)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	base := "http://" + ln.Addr().String()
	rev := w.rev()

	do := func(method, path string, body io.Reader, hdr map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, body)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		resp, _ := do(m, feed.Path, strings.NewReader(`{"hostname":"web-0","ip":"10.6.6.6"}`), nil)
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: status %d, want 405", m, feed.Path, resp.StatusCode)
		}
	}
	resp, _ := do(http.MethodGet, feed.Path, nil, map[string]string{"X-Big": strings.Repeat("a", 64<<10)})
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB of headers: status %d, want 431", resp.StatusCode)
	}
	resp, _ = do(http.MethodGet, feed.Path+"?since="+strings.Repeat("9", 1000), nil, nil)
	if resp.StatusCode != http.StatusRequestURITooLong {
		t.Errorf("1000-byte query: status %d, want 414", resp.StatusCode)
	}

	// Only host entries: hostname, ip, aliases, service (and released in
	// deltas); no instance ids, revs, timestamps or anything else.
	resp, body := do(http.MethodGet, feed.Path, nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: status %d", resp.StatusCode)
	}
	var raw struct {
		Entries []map[string]json.RawMessage `json:"entries"`
	}
	if err := json.Unmarshal(body, &raw); err != nil || len(raw.Entries) != 3 {
		t.Fatalf("GET body %s: %v", body, err)
	}
	for _, e := range raw.Entries {
		for k := range e {
			if !slices.Contains([]string{"hostname", "ip", "aliases", "service", "released"}, k) {
				t.Errorf("feed entry carries %q: %s", k, body)
			}
		}
	}
	if strings.Contains(string(body), "i-") {
		t.Errorf("feed body names instances: %s", body)
	}

	// Connection count: two long-polls hold both slots; the third is shed.
	var wg sync.WaitGroup
	hold, cancel := context.WithCancel(ctx)
	defer cancel()
	var started atomic.Int64
	current := currentQuery(t, body)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(hold, http.MethodGet, base+feed.Path+"?wait=50s&"+current, nil)
			started.Add(1)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	shed := false
	for i := 0; i < 200 && !shed; i++ { // until both long-polls hold their slots
		time.Sleep(10 * time.Millisecond)
		resp, _ := do(http.MethodGet, feed.Path, nil, nil)
		shed = resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != ""
	}
	if !shed {
		t.Error("a third request while two long-polls hold MaxInFlight=2 was not shed with 503 and Retry-After")
	}
	cancel()
	wg.Wait()
	if spy.applies.Load() != 0 || w.rev() != rev {
		t.Errorf("the feed wrote to the ledger: %d Apply calls, rev %d → %d", spy.applies.Load(), rev, w.rev())
	}
}

// currentQuery is the query of a client already holding body's state, so
// the feed makes it wait.
func currentQuery(t *testing.T, body []byte) string {
	var r feed.Response
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	return url.Values{"since": {strconv.FormatInt(r.Rev, 10)}, "epoch": {r.Epoch}}.Encode()
}
