package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// buildBinary builds the aerostat command into a temp dir (once per test),
// with the given build tags (agentonly: the node agent's build).
func buildBinary(t *testing.T, tags ...string) string {
	t.Helper()
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		if goTool, err = exec.LookPath("go"); err != nil {
			t.Skip("no go tool to build the aerostat binary")
		}
	}
	bin := filepath.Join(t.TempDir(), "aerostat")
	cmd := exec.Command(goTool, "build", "-tags", strings.Join(tags, ","), "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// 100 machines booting at once, each running its own `aerostat register`
// process against one store, get 100 distinct, dense names.
func TestRegisterProcesses(t *testing.T) {
	n := 100
	if testing.Short() {
		n = 20
	}
	start := time.Now()
	bin := buildBinary(t)
	t.Logf("built the binary in %s", time.Since(start).Round(time.Second))
	e := newNodeEnv(t, "web iterative\n")
	cmds := make([]*exec.Cmd, n)
	outs := make([]bytes.Buffer, n)
	errs := make([]bytes.Buffer, n)
	for i := range n {
		c := exec.Command(bin, append([]string{"register"}, append(e.flags,
			"--instance-id", fmt.Sprintf("i-%04d", i), "--ip", fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), "--timeout", "5m")...)...)
		c.Stdout, c.Stderr = &outs[i], &errs[i]
		cmds[i] = c
	}
	start = time.Now()
	// Start all before waiting on any, so the claims really overlap.
	for i, c := range cmds {
		if err := c.Start(); err != nil {
			t.Fatalf("starting register %d: %v", i, err)
		}
	}
	var wg sync.WaitGroup
	waitErrs := make([]error, n)
	for i, c := range cmds {
		wg.Add(1)
		go func() { defer wg.Done(); waitErrs[i] = c.Wait() }()
	}
	wg.Wait()
	t.Logf("%d register processes finished in %s", n, time.Since(start).Round(time.Second))
	seen := map[string]int{}
	for i := range n {
		if waitErrs[i] != nil {
			t.Fatalf("register process %d: %v\n%s", i, waitErrs[i], errs[i].String())
		}
		name := strings.TrimSpace(outs[i].String())
		if j, dup := seen[name]; dup {
			t.Fatalf("processes %d and %d both got %q", j, i, name)
		}
		seen[name] = i
	}
	for i := range n {
		if _, ok := seen[naming.Hostname("web", naming.Iterative, naming.RoleNone, i)]; !ok {
			t.Errorf("web-%d not given out; names are not dense: %v", i, seen)
		}
	}
	// The ledger agrees with what the processes printed.
	recs, err := e.store.Records(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != n {
		t.Fatalf("ledger holds %d records, want %d", len(recs), n)
	}
	for _, r := range recs {
		i, ok := seen[r.Hostname]
		if !ok || r.InstanceID != fmt.Sprintf("i-%04d", i) {
			t.Errorf("ledger: %s held by %s, but process %d printed it", r.Hostname, r.InstanceID, i)
		}
	}
}
