package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// `update --legacy-updater`: the program's output (its /etc/hosts.legacy)
// lands before the block; a failing or hanging program is a clear error
// and the hosts file is not touched (bytes and mtime).
func TestUpdateLegacyUpdater(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh to run test updaters")
	}
	e := newNodeEnv(t, "web\n")
	if _, err := e.run(t, "register", "--instance-id", "i-0", "--ip", "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	hosts, legacyFile := filepath.Join(dir, "hosts"), filepath.Join(dir, "hosts.legacy")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	update := func(prog string, extra ...string) error {
		_, err := runNode(t, append([]string{"update", "--server", e.flags[1], "--database", e.db, "--hosts-file", hosts,
			"--legacy-updater", prog, "--legacy-file", legacyFile, "--loglevel", "ERROR"}, extra...)...)
		return err
	}

	ok := script("ok", "echo '192.168.0.1 old-db' > "+legacyFile+"\n")
	if err := update(ok); err != nil {
		t.Fatal(err)
	}
	want := "127.0.0.1 localhost\n# AEROSTAT LEGACY\n192.168.0.1 old-db\n# /AEROSTAT LEGACY\n# AEROSTAT\n10.0.0.1 web-0\n# /AEROSTAT\n"
	if b, _ := os.ReadFile(hosts); string(b) != want {
		t.Fatalf("hosts =\n%s\nwant\n%s", b, want)
	}

	// A new name makes an update due; the broken updaters must still stop it.
	if _, err := e.run(t, "register", "--instance-id", "i-1", "--ip", "10.0.0.2"); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(hosts, past, past); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		prog    string
		args    []string
		wantErr []string
	}{
		"failing": {prog: script("fail", "echo boom >&2; exit 3\n"), wantErr: []string{"exit status 3", "boom", "unchanged"}},
		"hanging": {prog: script("hang", "sleep 30\n"), args: []string{"--legacy-timeout", "300ms"}, wantErr: []string{"timed out after 300ms", "unchanged"}},
		"missing": {prog: filepath.Join(dir, "nope"), wantErr: []string{"nope", "unchanged"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := update(tc.prog, tc.args...)
			for _, w := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Fatalf("update = %v, want an error mentioning %q", err, w)
				}
			}
			if b, _ := os.ReadFile(hosts); string(b) != want {
				t.Errorf("hosts changed:\n%s", b)
			}
			if st, err := os.Stat(hosts); err != nil || !st.ModTime().Equal(past) {
				t.Errorf("hosts mtime changed: %v", st.ModTime())
			}
		})
	}
}
