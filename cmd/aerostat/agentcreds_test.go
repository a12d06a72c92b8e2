package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
)

// TestAgentRefusesWritableCredentials: `aerostat agent --server` checks
// what its credentials allow before it reads anything. The embedded store
// has no users, so every client can write: the agent refuses to start and
// leaves the hosts file alone, unless --allow-write-credentials (the 1.x
// migration mode) accepts them. (A MongoDB user with only the read role
// passing the check: internal/reliability TestAgentNeedsNoWriteAccess with
// AEROSTAT_TEST_MONGODB_URI.)
func TestAgentRefusesWritableCredentials(t *testing.T) {
	e := newNodeEnv(t, "web\n")
	if _, err := e.run(t, "register", "--instance-id", "i-0", "--ip", "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	hosts := filepath.Join(t.TempDir(), "hosts")
	const before = "127.0.0.1 localhost\n"
	if err := os.WriteFile(hosts, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"agent", "--server", ledgertest.URI(t), "--database", e.db, "--hosts-file", hosts, "--listen", "", "--interval", "50ms", "--loglevel", "ERROR"}

	// Run as the binary does, so a broken check fails the test (the
	// agent writes the file) instead of hanging it.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		root := newRootCmd()
		root.SetArgs(args)
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		done <- root.ExecuteContext(ctx)
	}()
	var err error
	waitFor(t, "the agent to refuse or to write", func() bool {
		select {
		case err = <-done:
			return true
		default:
			b, _ := os.ReadFile(hosts)
			return strings.Contains(string(b), "web-0")
		}
	})
	cancel()
	if !errors.Is(err, errWritableCredentials) {
		t.Fatalf("agent with write access = %v, want it refused (%v)", err, errWritableCredentials)
	}
	if !strings.Contains(err.Error(), "--allow-write-credentials") {
		t.Errorf("refusal %q does not name the way out", err)
	}
	if b, _ := os.ReadFile(hosts); string(b) != before {
		t.Errorf("a refused agent changed the hosts file:\n%s", b)
	}

	ctx, cancel = context.WithCancel(context.Background())
	exit := make(chan int, 1)
	go func() { exit <- run(ctx, append(args, "--allow-write-credentials"), io.Discard, io.Discard) }()
	waitFor(t, "web-0 in the hosts file", func() bool { b, _ := os.ReadFile(hosts); return strings.Contains(string(b), "10.0.0.1 web-0\n") })
	cancel()
	if code := <-exit; code != 0 {
		t.Errorf("agent with --allow-write-credentials exited %d", code)
	}
}
