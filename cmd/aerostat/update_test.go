package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
)

const bindMountChildEnv = "AEROSTAT_TEST_BINDMOUNT_CHILD"

// TestBindMountedHosts registers web-0..web-3, then runs `update` on an
// /etc/hosts that is a bind mount (as in a container), inside a private
// mount namespace: rename gives EBUSY, the file is rewritten in place and
// the system resolver finds web-3.
func TestBindMountedHosts(t *testing.T) {
	if os.Getenv(bindMountChildEnv) != "" {
		bindMountChild(t)
		return
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare not installed")
	}
	if _, err := exec.LookPath("getent"); err != nil {
		t.Skip("getent not installed")
	}
	if err := exec.Command("unshare", "-m", "--propagation", "private", "true").Run(); err != nil {
		t.Skipf("private mount namespaces not permitted here: %v", err)
	}
	e := newNodeEnv(t, "web\n")
	for i := range 4 {
		if _, err := e.run(t, "register", "--instance-id", fmt.Sprintf("i-%d", i), "--ip", fmt.Sprintf("10.9.0.%d", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var before syscall.Stat_t
	if err := syscall.Stat(hosts, &before); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", "-m", "--propagation", "private", os.Args[0], "-test.run=^TestBindMountedHosts$", "-test.v")
	cmd.Env = append(os.Environ(), bindMountChildEnv+"="+hosts, ledgertest.EnvURI+"="+ledgertest.URI(t), "AEROSTAT_TEST_DB="+e.db)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "SKIP") {
		t.Skipf("child skipped:\n%s", out)
	}
	b, _ := os.ReadFile(hosts)
	if !strings.Contains(string(b), "10.9.0.4 web-3\n") || !strings.HasPrefix(string(b), "127.0.0.1 localhost\n") {
		t.Errorf("bind-mounted file = %q", b)
	}
	var after syscall.Stat_t
	if err := syscall.Stat(hosts, &after); err != nil {
		t.Fatal(err)
	}
	if before.Ino != after.Ino {
		t.Errorf("inode changed %d → %d: the file was replaced, not rewritten in place", before.Ino, after.Ino)
	}
}

func bindMountChild(t *testing.T) {
	src := os.Getenv(bindMountChildEnv)
	if err := syscall.Mount(src, "/etc/hosts", "", syscall.MS_BIND, ""); err != nil {
		t.Skipf("bind mount over /etc/hosts: %v", err)
	}
	out, err := runNode(t, "update", "--server", os.Getenv(ledgertest.EnvURI), "--database", os.Getenv("AEROSTAT_TEST_DB"),
		"--hosts-file", "/etc/hosts", "--backup-file", src+".bak", "--loglevel", "ERROR")
	if err != nil {
		t.Fatalf("update: %v %s", err, out)
	}
	res, err := exec.CommandContext(context.Background(), "getent", "hosts", "web-3").Output()
	if err != nil {
		t.Fatalf("getent hosts web-3: %v", err)
	}
	if f := strings.Fields(string(res)); len(f) < 2 || f[0] != "10.9.0.4" {
		t.Fatalf("getent hosts web-3 = %q", res)
	}
}
