package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/cloud/fake"
	"github.com/aerostat-io/aerostat/internal/store/embedded"
)

const bindMountChildEnv = "AEROSTAT_TEST_BINDMOUNT_CHILD"

// startStore starts a private embedded store, so that 1.x command lines,
// which name a host and always use the database "aerostat", can run
// against it. It returns the 1.x --server value (host:port).
func startStore(t *testing.T) string {
	t.Helper()
	srv, err := embedded.Start(context.Background(), embedded.Options{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("starting embedded store: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	u, err := url.Parse(srv.URI())
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// run1x runs a 1.x command line through main's path and returns stdout,
// stderr and the exit status.
func run1x(args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), code
}

// TestBindMountedHosts is the node's whole 1.x life inside a private mount
// and UTS namespace: /etc/hosts and /etc/hostname are bind mounts (as in a
// container), EC2 metadata is a fake IMDSv2 server, and the unchanged 1.x
// command line `aerostat --register --update --server=HOST` registers the
// node (web-3), sets its hostname without a shell and writes the block.
// rename gives EBUSY on the bind mount, so the file is rewritten in place,
// and the system resolver (getent) finds web-3 and its alias.
func TestBindMountedHosts(t *testing.T) {
	if os.Getenv(bindMountChildEnv) != "" {
		bindMountChild(t)
		return
	}
	for _, tool := range []string{"unshare", "getent"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	if out, err := exec.Command("unshare", "-m", "-u", "--propagation", "private", "true").CombinedOutput(); err != nil {
		t.Skipf("private mount and UTS namespaces not permitted here (needs root or CAP_SYS_ADMIN): %v %s", err, out)
	}
	server := startStore(t)
	dir := t.TempDir()
	info := filepath.Join(dir, "aerostat_info")
	if err := os.WriteFile(info, []byte("web iterative web-alias\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if out, stderr, code := run1x("register", "--server", server, "--info-file", info, "--instance-id", fmt.Sprintf("i-%d", i),
			"--ip", fmt.Sprintf("10.9.0.%d", i+1), "--loglevel", "ERROR"); code != 0 {
			t.Fatalf("register %d: %s %s", i, out, stderr)
		}
	}
	imds := httptest.NewServer(fake.NewIMDS(cloud.Identity{InstanceID: "i-0000000000000abcd", PrivateIP: "10.9.0.4", Region: "us-east-1"}))
	defer imds.Close()

	hosts, hostname := filepath.Join(dir, "hosts"), filepath.Join(dir, "hostname")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost\n# my line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hostname, []byte("ip-10-9-0-4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The child sees dir/etc as its whole /etc: nothing of the machine's
	// /etc is read or written, whatever it holds (a hosts.bak, say).
	etc := filepath.Join(dir, "etc")
	if err := os.Mkdir(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"nsswitch.conf": "hosts: files\n", "hosts": "", "hostname": ""} {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(content), 0o644); err != nil { // mount points and config
			t.Fatal(err)
		}
	}
	var before syscall.Stat_t
	if err := syscall.Stat(hosts, &before); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", "-m", "-u", "--propagation", "private", os.Args[0], "-test.run=^TestBindMountedHosts$", "-test.v")
	// HOME and the AWS config files point into dir, so the SDK reads no
	// profile of the machine's.
	// The machine's own AWS_* settings (a CA bundle in /etc, a profile)
	// are left out.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, bindMountChildEnv+"="+dir, "AEROSTAT_SERVER="+server, "AEROSTAT_INFO="+info,
		"AWS_EC2_METADATA_SERVICE_ENDPOINT="+imds.URL, "AWS_EC2_METADATA_DISABLED=false", "AWS_REGION=us-east-1",
		"HOME="+dir, "AWS_CONFIG_FILE="+filepath.Join(dir, "aws-config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "aws-credentials"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "--- SKIP") {
		t.Skipf("child skipped:\n%s", out)
	}
	t.Logf("child:\n%s", out)
	b, _ := os.ReadFile(hosts)
	want := "127.0.0.1 localhost\n# my line\n# AEROSTAT\n10.9.0.1 web-0\n10.9.0.2 web-1\n10.9.0.3 web-2\n10.9.0.4 web-3\n10.9.0.4 web-alias\n# /AEROSTAT\n"
	if string(b) != want {
		t.Errorf("bind-mounted hosts file =\n%s\nwant\n%s", b, want)
	}
	var after syscall.Stat_t
	if err := syscall.Stat(hosts, &after); err != nil {
		t.Fatal(err)
	}
	if before.Ino != after.Ino {
		t.Errorf("inode changed %d → %d: the file was replaced, not rewritten in place", before.Ino, after.Ino)
	}
	if b, _ := os.ReadFile(hostname); string(b) != "web-3\n" {
		t.Errorf("/etc/hostname = %q, want web-3", b)
	}
	if b, err := os.ReadFile(hosts + ".bak"); err == nil {
		t.Errorf("a backup was written next to the bind-mount source: %q", b)
	}
	if b, err := os.ReadFile(filepath.Join(etc, "hosts.bak")); err != nil || string(b) != "127.0.0.1 localhost\n# my line\n" {
		t.Errorf("the child's /etc/hosts.bak = %q, %v; want the file as it was before", b, err)
	}
	if h, _ := os.Hostname(); h == "web-3" {
		t.Error("the test machine's hostname changed; sethostname must stay in the child's UTS namespace")
	}
}

func bindMountChild(t *testing.T) {
	dir := os.Getenv(bindMountChildEnv)
	// dir/etc becomes this namespace's /etc, so what the 1.x line writes
	// next to /etc/hosts (hosts.bak) lands in the test's directory and the
	// machine's /etc is neither read nor written.
	if err := syscall.Mount(filepath.Join(dir, "etc"), "/etc", "", syscall.MS_BIND, ""); err != nil {
		t.Skipf("bind mount of a private /etc: %v", err)
	}
	for _, m := range []struct{ src, dst string }{{filepath.Join(dir, "hosts"), "/etc/hosts"}, {filepath.Join(dir, "hostname"), "/etc/hostname"}} {
		if err := syscall.Mount(m.src, m.dst, "", syscall.MS_BIND, ""); err != nil {
			t.Skipf("bind mount over %s: %v", m.dst, err)
		}
	}
	// Supervisord's 1.x line, unchanged (register, then one update).
	out, stderr, code := run1x("--register", "--update", "--loglevel=ERROR")
	if code != 0 {
		t.Fatalf("aerostat --register --update: exit %d: %s %s", code, out, stderr)
	}
	if out != "web-3\n" {
		t.Fatalf("register printed %q, want web-3", out)
	}
	if h, err := os.Hostname(); err != nil || h != "web-3" {
		t.Fatalf("hostname = %q, %v; want web-3", h, err)
	}
	if b, err := os.ReadFile("/etc/hosts.bak"); err != nil || string(b) != "127.0.0.1 localhost\n# my line\n" {
		t.Errorf("/etc/hosts.bak = %q, %v; want the file as it was before", b, err)
	}
	for host, ip := range map[string]string{"web-3": "10.9.0.4", "web-alias": "10.9.0.4", "web-0": "10.9.0.1"} {
		res, err := exec.Command("getent", "hosts", host).Output()
		if err != nil {
			t.Fatalf("getent hosts %s: %v", host, err)
		}
		if f := strings.Fields(string(res)); len(f) < 2 || f[0] != ip {
			t.Fatalf("getent hosts %s = %q, want %s", host, res, ip)
		}
	}
}
