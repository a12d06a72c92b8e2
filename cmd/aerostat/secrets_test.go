package main

import (
	"bytes"
	"context"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/cloud/fake"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
)

// captureStderr runs fn with os.Stderr redirected (the loggers write
// there) and returns what was written.
func captureStderr(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	orig := os.Stderr
	os.Stderr = w
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		done <- b
	}()
	defer func() {
		os.Stderr = orig
	}()
	fn()
	os.Stderr = orig
	_ = w.Close()
	return string(<-done)
}

// TestSecretsNotLogged: commands given a mongodb:// URI with a password
// (reachable or not) never print the password: not in logs at debug
// level, not in error messages.
func TestSecretsNotLogged(t *testing.T) {
	const password = "hunter2-S3cr3t-pw"
	awsTestEnv(t)
	fleet := fake.NewFleet(clocktesting.NewFakeClock(seedTime))
	fleet.Launch(2, map[string]string{"aerostat:service": "web"})
	ec2 := fake.NewServer(fleet)
	defer ec2.Close()
	good, err := url.Parse(ledgertest.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	good.User = url.UserPassword("aerostat", password)
	uris := map[string]string{
		"unreachable": "mongodb://aerostat:" + password + "@127.0.0.1:1/?serverSelectionTimeoutMS=300&connectTimeoutMS=300",
		"store":       good.String(),
		"bad uri":     "mongodb://aerostat:" + password + "@[::1/",
	}
	dir := t.TempDir()
	info := filepath.Join(dir, "aerostat_info")
	hosts := filepath.Join(dir, "hosts")
	if err := os.WriteFile(info, []byte("web\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	db := ledgertest.Database(t)
	commands := map[string][]string{
		"controller": {"controller", "--standalone", "--once", "--database", db, "--ec2-endpoint", ec2.URL,
			"--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--zap-log-level", "debug"},
		"register": {"register", "--database", db, "--info-file", info, "--offline", "--loglevel", "DEBUG", "--timeout", "3s"},
		"update":   {"update", "--database", db, "--hosts-file", hosts, "--loglevel", "DEBUG"},
		"get":      {"get", "names", "--database", db},
		"1.x":      {"--register", "--update", "--offline", "--loglevel", "DEBUG"},
	}
	for uname, uri := range uris {
		for cname, args := range commands {
			t.Run(cname+" "+uname, func(t *testing.T) {
				if cname == "1.x" && uname == "unreachable" {
					t.Skip("1.x --register retries an unreachable store for a minute; register --timeout covers it")
				}
				if cname == "1.x" {
					t.Setenv("AEROSTAT_INFO", info)
				}
				// --ledger names the ledger on every 2.x command (on get
				// and describe --server is kubectl's API server); 1.x's
				// command line knows only --server.
				flag := "--ledger"
				if cname == "1.x" {
					flag = "--server"
				}
				var stdout, stderr bytes.Buffer
				var code int
				logs := captureStderr(t, func() {
					code = run(context.Background(), append(append([]string{}, args...), flag, uri), &stdout, &stderr)
				})
				all := stdout.String() + stderr.String() + logs
				if strings.Contains(all, password) {
					t.Errorf("exit %d; the password appears in the output:\n%s", code, redactFor(all, password))
				}
				if all == "" {
					t.Errorf("exit %d with no output at all: nothing was scanned", code)
				}
			})
		}
	}
}

// redactFor shows where the secret leaked without repeating it.
func redactFor(s, secret string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, secret) {
			out = append(out, strings.ReplaceAll(l, secret, "<PASSWORD>"))
		}
	}
	return strings.Join(out, "\n")
}
