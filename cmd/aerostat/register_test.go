package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/cloud/fake"
	"github.com/aerostat-io/aerostat/internal/feed"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
	"github.com/aerostat-io/aerostat/internal/nodeclaim"
)

// runNode runs one node command line and returns stdout.
func runNode(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

type nodeEnv struct {
	db, infoFile string
	store        *ledger.Mongo
	flags        []string
}

func newNodeEnv(t *testing.T, info string) *nodeEnv {
	t.Helper()
	db := ledgertest.Database(t)
	e := &nodeEnv{db: db, infoFile: filepath.Join(t.TempDir(), "aerostat_info"),
		store: ledgertest.Open(t, ledger.Options{Database: db})}
	if err := os.WriteFile(e.infoFile, []byte(info), 0o644); err != nil {
		t.Fatal(err)
	}
	e.flags = []string{"--ledger", ledgertest.URI(t), "--database", db, "--info-file", e.infoFile, "--loglevel", "ERROR"}
	return e
}

func (e *nodeEnv) run(t *testing.T, cmd string, args ...string) (string, error) {
	t.Helper()
	return runNode(t, append(append([]string{cmd}, e.flags...), args...)...)
}

func (e *nodeEnv) holder(t *testing.T, hostname string) string {
	t.Helper()
	recs, err := e.store.Records(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Hostname == hostname {
			return r.InstanceID
		}
	}
	return "<none>"
}

func TestRegisterWithIMDS(t *testing.T) {
	e := newNodeEnv(t, "web iterative www\n")
	imds := fake.NewIMDS(cloud.Identity{InstanceID: "i-0abc", PrivateIP: "10.0.0.5", Region: "us-east-1"})
	srv := httptest.NewServer(imds)
	defer srv.Close()

	out, err := e.run(t, "register", "--imds-endpoint", srv.URL)
	if err != nil || out != "web-0\n" {
		t.Fatalf("register = %q, %v", out, err)
	}
	if out, err := e.run(t, "register", "--imds-endpoint", srv.URL); err != nil || out != "web-0\n" {
		t.Fatalf("second register = %q, %v; want the same name", out, err)
	}
	if out, err := e.run(t, "register", "--instance-id", "i-0def", "--ip", "10.0.0.6"); err != nil || out != "web-1\n" {
		t.Fatalf("register of a second instance = %q, %v", out, err)
	}
	// A new node with the same alias takes it, as in 1.x.
	recs, _ := e.store.Records(context.Background(), "web")
	if len(recs) != 2 || strings.Join(recs[1].Aliases, ",") != "www" || len(recs[0].Aliases) != 0 {
		t.Errorf("records = %+v, want www moved to web-1", recs)
	}
	// Dry run: says what it would do, writes nothing.
	out, err = e.run(t, "register", "--offline", "--dry-run")
	if err != nil || !strings.Contains(out, "test-instance would hold web-2") {
		t.Fatalf("dry run = %q, %v", out, err)
	}
	if h := e.holder(t, "web-2"); h != "<none>" {
		t.Errorf("dry run wrote web-2 for %s", h)
	}
	if out, err := e.run(t, "register", "--offline"); err != nil || out != "web-2\n" {
		t.Fatalf("offline register = %q, %v", out, err)
	}
	if h := e.holder(t, "web-2"); h != offlineInstanceID {
		t.Errorf("web-2 held by %q", h)
	}
}

func TestRegisterBadInput(t *testing.T) {
	tests := map[string]struct {
		info    string
		args    []string
		wantErr string
	}{
		"empty info":        {info: "", wantErr: "empty"},
		"bad service":       {info: "Web_1 iterative", wantErr: "Web_1"},
		"unknown type":      {info: "web roundrobin", wantErr: "roundrobin"},
		"bad alias":         {info: "web iterative bad..alias", wantErr: "bad..alias"},
		"binary info":       {info: "\x00\x01\x02", wantErr: "info file"},
		"ip without id":     {info: "web", args: []string{"--instance-id", "i-1"}, wantErr: "--ip"},
		"bad ip":            {info: "web", args: []string{"--instance-id", "i-1", "--ip", "10.0.0.300"}, wantErr: "10.0.0.300"},
		"promote iterative": {info: "web", args: []string{"--offline"}, wantErr: "masterful"},
		"no imds off ec2":   {info: "web", args: []string{"--imds-endpoint", "http://127.0.0.1:1"}, wantErr: "--instance-id"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newNodeEnv(t, tc.info)
			cmd := "register"
			if strings.HasPrefix(name, "promote") {
				cmd = "promote"
			}
			_, err := e.run(t, cmd, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
			}
			if recs, _ := e.store.Records(context.Background(), ""); len(recs) != 0 {
				t.Errorf("records written: %+v", recs)
			}
		})
	}
	t.Run("huge info", func(t *testing.T) {
		e := newNodeEnv(t, "web "+strings.Repeat("a", 70<<10))
		if _, err := e.run(t, "register", "--offline"); err == nil || !strings.Contains(err.Error(), "64 KiB") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestPromote(t *testing.T) {
	e := newNodeEnv(t, "db masterful\n")
	for i, want := range []string{"db-master", "db-slave-1", "db-slave-2"} {
		out, err := e.run(t, "register", "--instance-id", fmt.Sprintf("i-%d", i), "--ip", fmt.Sprintf("10.0.0.%d", i+1))
		if err != nil || out != want+"\n" {
			t.Fatalf("register %d = %q, %v", i, out, err)
		}
	}
	out, err := e.run(t, "promote", "--instance-id", "i-2", "--ip", "10.0.0.3")
	if err != nil || out != "db-master\n" {
		t.Fatalf("promote = %q, %v", out, err)
	}
	if h := e.holder(t, "db-master"); h != "i-2" {
		t.Errorf("db-master held by %s", h)
	}
	// The old master takes the lowest free slave number.
	if h := e.holder(t, "db-slave-2"); h != "i-0" {
		t.Errorf("db-slave-2 held by %s, want the old master i-0", h)
	}
	if h := e.holder(t, "db-slave-1"); h != "i-1" {
		t.Errorf("db-slave-1 held by %s", h)
	}
	_, err = e.run(t, "promote", "--instance-id", "i-2", "--ip", "10.0.0.3")
	if !errors.Is(err, nodeclaim.ErrAlreadyMaster) {
		t.Fatalf("second promote: %v, want already master", err)
	}
}

// Many nodes registering at once never get the same name.
func TestRegisterConcurrent(t *testing.T) {
	n := 100
	if testing.Short() {
		n = 20
	}
	e := newNodeEnv(t, "web\n")
	var wg sync.WaitGroup
	names := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := &registerFlags{nodeFlags: nodeFlags{server: ledgertest.URI(t), database: e.db, log: logFlags{level1x: "ERROR"}},
				infoFile: e.infoFile, instanceID: fmt.Sprintf("i-%04d", i), ip: fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), timeout: defaultTestTimeout}
			var out bytes.Buffer
			errs[i] = runClaim(context.Background(), f, false, &out)
			names[i] = strings.TrimSpace(out.String())
		}()
	}
	wg.Wait()
	seen := map[string]int{}
	for i, name := range names {
		if errs[i] != nil {
			t.Fatalf("register %d: %v", i, errs[i])
		}
		if j, dup := seen[name]; dup {
			t.Fatalf("instances %d and %d both got %s", j, i, name)
		}
		seen[name] = i
	}
	for i := range n {
		if _, ok := seen[naming.Hostname("web", naming.Iterative, naming.RoleNone, i)]; !ok {
			t.Errorf("web-%d not given out; names are not dense", i)
		}
	}
}

func TestUpdateOnce(t *testing.T) {
	e := newNodeEnv(t, "web\n")
	for i := range 2 {
		if _, err := e.run(t, "register", "--instance-id", fmt.Sprintf("i-%d", i), "--ip", fmt.Sprintf("10.0.0.%d", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"--server", ledgertest.URI(t), "--database", e.db, "--hosts-file", hosts, "--loglevel", "ERROR"}
	out, err := runNode(t, append([]string{"update", "--dry-run"}, base...)...)
	want := "127.0.0.1 localhost\n# AEROSTAT\n10.0.0.1 web-0\n10.0.0.2 web-1\n# /AEROSTAT\n"
	if err != nil || out != want {
		t.Fatalf("update --dry-run = %q, %v", out, err)
	}
	if b, _ := os.ReadFile(hosts); string(b) != "127.0.0.1 localhost\n" {
		t.Fatalf("dry run wrote %q", b)
	}
	if _, err := runNode(t, append([]string{"update"}, base...)...); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(hosts); string(b) != want {
		t.Fatalf("hosts = %q", b)
	}

	// The same through the controller's feed.
	h := feed.NewHandler(e.store, feed.Options{})
	if err := h.SyncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	hosts2 := filepath.Join(t.TempDir(), "hosts")
	if _, err := runNode(t, "update", "--feed", srv.URL, "--hosts-file", hosts2, "--loglevel", "ERROR"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(hosts2); string(b) != "# AEROSTAT\n10.0.0.1 web-0\n10.0.0.2 web-1\n# /AEROSTAT\n" {
		t.Fatalf("hosts via feed = %q", b)
	}
}

const defaultTestTimeout = 2 * time.Minute

// IMDSv2 behind one hop too many (a container with the default hop limit
// of 1): the token PUT gets no answer and IMDSv1 is refused. The error
// says what to do.
func TestRegisterIMDSHopLimit(t *testing.T) {
	e := newNodeEnv(t, "web\n")
	imds := fake.NewIMDS(cloud.Identity{InstanceID: "i-0abc", PrivateIP: "10.0.0.5", Region: "us-east-1"})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/latest/api/token" {
			if hj, ok := w.(http.Hijacker); ok { // the answer is lost on the way back
				if c, _, err := hj.Hijack(); err == nil {
					_ = c.Close()
					return
				}
			}
		}
		imds.ServeHTTP(w, r)
	}))
	defer srv.Close()
	_, err := e.run(t, "register", "--imds-endpoint", srv.URL)
	if err == nil || !strings.Contains(err.Error(), "hop limit") || !strings.Contains(err.Error(), "--instance-id") {
		t.Fatalf("register = %v, want an error naming the hop limit and --instance-id", err)
	}
	if recs, _ := e.store.Records(context.Background(), ""); len(recs) != 0 {
		t.Errorf("records written: %+v", recs)
	}
}

// TestRegisterDirectAppliesAliasRules: the direct (1.x) path refuses the
// aliases the controller refuses: another service's name (held or not
// yet), localhost, names under the cluster domain; the allowed one stays.
func TestRegisterDirectAppliesAliasRules(t *testing.T) {
	e := newNodeEnv(t, "db masterful\n")
	if out, err := e.run(t, "register", "--instance-id", "i-0db", "--ip", "10.0.0.9"); err != nil || out != "db-master\n" {
		t.Fatalf("db register = %q, %v", out, err)
	}
	if err := os.WriteFile(e.infoFile, []byte("web iterative db-master db-slave-7 localhost kubernetes.default.svc.cluster.local www\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := e.run(t, "register", "--instance-id", "i-0web", "--ip", "10.0.0.10"); err != nil || out != "web-0\n" {
		t.Fatalf("web register = %q, %v", out, err)
	}
	recs, err := e.store.Records(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || strings.Join(recs[0].Aliases, ",") != "www" {
		t.Fatalf("web records = %+v, want only the alias www written", recs)
	}
}
