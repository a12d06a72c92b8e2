package demo

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aerostat-io/aerostat/client"
	"github.com/aerostat-io/aerostat/internal/feed"
	"github.com/aerostat-io/aerostat/internal/naming"
)

func TestStoryOnce(t *testing.T) {
	hosts := filepath.Join(t.TempDir(), "hosts")
	var out bytes.Buffer
	rep, err := Run(context.Background(), Options{Out: &out, HostsFile: hosts, Once: true, DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	if !rep.OK() {
		t.Fatalf("report not OK: %+v\n%s", rep, out.String())
	}
	if len(rep.Checks) != 4 || len(rep.Facts) < 6 {
		t.Errorf("got %d checks and %d facts, want 4 and at least 6", len(rep.Checks), len(rep.Facts))
	}
	// Each of the four changing steps waits for the three agents.
	if got := convergenceLine.FindAllString(out.String(), -1); len(got) != 4 {
		t.Errorf("got %d convergence lines, want 4:\n%s", len(got), out.String())
	}
	if !strings.Contains(out.String(), "ok   every agent reached the final rev") {
		t.Errorf("output lacks the final-rev check:\n%s", out.String())
	}

	// The story's key facts, read back from the tables it showed.
	got := hostnames(rep.Names["terminate"], "web")
	if want := "web-0 web-1:free web-2 web-3:free web-4"; got != want {
		t.Errorf("after termination: %s, want %s", got, want)
	}
	got = hostnames(rep.Names["relaunch"], "web")
	if want := "web-0 web-1 web-2 web-3 web-4 web-5"; got != want {
		t.Errorf("after relaunch: %s, want %s", got, want)
	}
	before, after := rep.Names["relaunch"], rep.Names["promote"]
	if holder(after, "db-master") != holder(before, "db-slave-1") || holder(after, "db-slave-1") != holder(before, "db-master") {
		t.Errorf("promotion did not swap db-master and db-slave-1:\nbefore %v\nafter %v", before, after)
	}

	data, err := os.ReadFile(hosts)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"127.0.0.1\tlocalhost\n", "# AEROSTAT\n", " web-5\n", " db-slave-2\n", "# /AEROSTAT\n"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("hosts file lacks %q:\n%s", want, data)
		}
	}
	for _, want := range []string{"[1/6] Launch 5 web nodes", "[6/6]", "All invariants held."} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

var convergenceLine = regexp.MustCompile(`(?m)^      convergence: 3 of 3 hosts at rev \d+, \d+ ms after the change$`)

func hostnames(names []client.Name, service string) string {
	var parts []string
	for _, n := range names {
		if n.Service != service {
			continue
		}
		p := n.Hostname
		if n.State == client.Free {
			p += ":free"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

// A hosts file left by an earlier demo keeps the user's lines and loses
// the old block; other fleet sizes work too.
func TestStoryReusesHostsFile(t *testing.T) {
	hosts := filepath.Join(t.TempDir(), "hosts")
	old := "10.9.9.9 printer\n# AEROSTAT\n10.0.0.99 web-0\n10.0.0.98 web-7\n10.0.0.97 web-8\n# /AEROSTAT\n"
	if err := os.WriteFile(hosts, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep, err := Run(context.Background(), Options{Out: &out, HostsFile: hosts, Once: true, Web: 2, DB: 2})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	if got, want := hostnames(rep.Names["relaunch"], "web"), "web-0 web-1 web-2"; got != want {
		t.Errorf("after relaunch: %s, want %s", got, want)
	}
	data, _ := os.ReadFile(hosts)
	if !strings.HasPrefix(string(data), "10.9.9.9 printer\n# AEROSTAT\n") || strings.Contains(string(data), "web-7") {
		t.Errorf("hosts file:\n%s", data)
	}
}

func TestOptionErrors(t *testing.T) {
	tests := map[string]struct {
		opts Options
		want string
	}{
		"no out":    {Options{}, "Out"},
		"small web": {Options{Out: &bytes.Buffer{}, Web: 1}, "web fleet size 1"},
		"small db":  {Options{Out: &bytes.Buffer{}, DB: -3}, "db fleet size -3"},
		"neg delay": {Options{Out: &bytes.Buffer{}, StepDelay: -time.Second}, "step delay -1s"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Run(context.Background(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

// The checks must catch what they claim to catch.
func TestChecksFail(t *testing.T) {
	rec := func(h, id, ip string) naming.Record {
		return naming.Record{Hostname: h, Service: "web", Scheme: naming.Iterative, InstanceID: id, IP: ip}
	}
	run := func(id, ip string) naming.Instance {
		return naming.Instance{ID: id, PrivateIP: ip, State: naming.StateRunning}
	}
	if c := checkUnique([]naming.Record{rec("web-0", "i-1", "10.0.0.1"), rec("web-0", "i-2", "10.0.0.2")}); c.OK {
		t.Error("two records for web-0 passed")
	}
	if c := checkUnique([]naming.Record{rec("web-0", "i-1", "10.0.0.1"), rec("web-1", "i-1", "10.0.0.1")}); c.OK {
		t.Error("one instance with two names passed")
	}
	if c := checkUnique([]naming.Record{rec("web-0", "", ""), rec("web-1", "", "")}); !c.OK {
		t.Errorf("two gaps failed: %s", c.Detail)
	}
	recs := []naming.Record{rec("web-0", "i-1", "10.0.0.1")}
	if c := checkNamed(recs, []naming.Instance{run("i-1", "10.0.0.1"), run("i-2", "10.0.0.2")}); c.OK {
		t.Error("an unnamed running instance passed")
	}
	if c := checkNamed(recs, []naming.Instance{run("i-1", "10.0.0.7")}); c.OK {
		t.Error("a wrong IP passed")
	}
	if c := checkNamed(recs, []naming.Instance{{ID: "i-1", State: naming.StateTerminated}}); c.OK {
		t.Error("a name bound to a terminated instance passed")
	}
	path := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(path, []byte("# AEROSTAT\n10.0.0.2 web-0\n# /AEROSTAT\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c := checkHostsFile(recs, path); c.OK {
		t.Error("a hosts file with the wrong IP passed")
	}
	if err := os.WriteFile(path, []byte("# AEROSTAT\n10.0.0.1 web-0\n# /AEROSTAT\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c := checkHostsFile(recs, path); !c.OK {
		t.Errorf("a matching hosts file failed: %s", c.Detail)
	}

	nodes := []string{"n1", "n2", "n3"}
	conv := feed.Convergence{Rev: 7, Nodes: []feed.NodeState{{Name: "n1", Rev: 7}, {Name: "n2", Rev: 7}, {Name: "n3", Rev: 6}}}
	if c := converged(conv, 7, nodes); c.OK || !strings.Contains(c.Detail, "n3 is at rev 6") {
		t.Errorf("an agent one rev behind passed: %+v", c)
	}
	conv.Nodes = conv.Nodes[:2]
	if c := converged(conv, 7, nodes); c.OK || !strings.Contains(c.Detail, "n3 is not in") {
		t.Errorf("a missing agent passed: %+v", c)
	}
	conv.Nodes = append(conv.Nodes, feed.NodeState{Name: "n3", Rev: 8})
	if c := converged(conv, 7, nodes); !c.OK {
		t.Errorf("every agent at or past the rev failed: %s", c.Detail)
	}
}

// Live mode keeps the loops running and shows churn until cancelled.
func TestLive(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &signalWriter{want: "# launched web node", seen: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, Options{Out: out, HostsFile: filepath.Join(t.TempDir(), "hosts"), ChurnEvery: 10 * time.Millisecond})
		done <- err
	}()
	select {
	case <-out.seen:
	case err := <-done:
		t.Fatalf("Run ended before any churn: %v\n%s", err, out.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	if !strings.Contains(out.String(), "Stopped.") {
		t.Errorf("output does not end with Stopped.:\n%s", out.String())
	}
}

// signalWriter closes seen once the output contains want.
type signalWriter struct {
	mu   sync.Mutex
	b    bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.b.Write(p)
	if strings.Contains(w.b.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return n, err
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
