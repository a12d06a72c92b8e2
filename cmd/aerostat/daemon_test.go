package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
)

// waitFor polls cond until it holds; the deadline only guards against a
// hang (the daemon runs on the real clock).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// `update --daemon` is the agent: it follows the ledger, serves /healthz,
// /readyz and /metrics, picks up a new registration, and exits 0 on
// cancellation (SIGTERM from supervisord).
func TestUpdateDaemon(t *testing.T) {
	e := newNodeEnv(t, "web\n")
	if _, err := e.run(t, "register", "--instance-id", "i-0", "--ip", "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		done <- run(ctx, []string{"update", "--daemon", "--server", ledgertest.URI(t), "--database", e.db, "--hosts-file", hosts,
			"--interval", "50ms", "--listen", addr, "--loglevel", "ERROR"}, io.Discard, &stderr)
	}()
	contains := func(s string) func() bool {
		return func() bool { b, _ := os.ReadFile(hosts); return strings.Contains(string(b), s) }
	}
	waitFor(t, "web-0 in the hosts file", contains("10.0.0.1 web-0\n"))
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor(t, "/readyz 200", func() bool { code, _ := get("/readyz"); return code == http.StatusOK })
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d", code)
	}
	if _, body := get("/metrics"); !strings.Contains(body, "aerostat_agent_writes_total ") || !strings.Contains(body, "aerostat_agent_source_up 1") {
		t.Errorf("/metrics lacks the agent's metrics:\n%s", body)
	}
	if _, err := e.run(t, "register", "--instance-id", "i-1", "--ip", "10.0.0.2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "web-1 in the hosts file", contains("10.0.0.2 web-1\n"))
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("update --daemon exited %d: %s", code, stderr.String())
	}
	if b, _ := os.ReadFile(hosts); !strings.HasPrefix(string(b), "127.0.0.1 localhost\n# AEROSTAT\n") {
		t.Errorf("hosts = %q", b)
	}
}

// An agent whose --listen address is taken fails at start with an error
// naming the flag and the address, instead of syncing on without probes
// (a kubelet would then restart a healthy agent forever).
func TestAgentFailsWhenItsPortIsTaken(t *testing.T) {
	e := newNodeEnv(t, "web\n")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	hosts := filepath.Join(t.TempDir(), "hosts")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang guard: the error comes at start
	defer cancel()
	var stderr bytes.Buffer
	code := run(ctx, []string{"agent", "--server", ledgertest.URI(t), "--database", e.db, "--hosts-file", hosts,
		"--allow-write-credentials", "--listen", taken.Addr().String(), "--loglevel", "ERROR"}, io.Discard, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "--listen \""+taken.Addr().String()+"\"") || !strings.Contains(stderr.String(), "address already in use") {
		t.Fatalf("agent with its --listen address taken: exit %d, stderr %q; want a failure naming --listen, the address and address already in use", code, stderr.String())
	}
}
