package hostsfile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// The writer touches only the configured hosts file: every way of pointing
// it at another file (here a stand-in for /etc/passwd in a temp dir) is
// refused with ErrNotPlainFile and the other file is left as it was.
func TestWriterRefusesOtherFiles(t *testing.T) {
	const passwd = "root:x:0:0:root:/root:/bin/bash\n"
	entries := []Entry{{"10.0.0.1", "web-0"}}
	busy := func(_, _ string) error { return &os.LinkError{Op: "rename", Err: syscall.EBUSY} }
	tests := map[string]struct {
		// setup makes dir/hosts point at dir/passwd somehow and returns the writer.
		setup func(t *testing.T, dir string) *Writer
		// allowed: the write may go ahead as long as passwd is untouched.
		allowed bool
	}{
		"absolute symlink": {func(t *testing.T, dir string) *Writer {
			mustSymlink(t, filepath.Join(dir, "passwd"), filepath.Join(dir, "hosts"))
			return &Writer{Path: filepath.Join(dir, "hosts")}
		}, false},
		"relative symlink": {func(t *testing.T, dir string) *Writer {
			mustSymlink(t, "passwd", filepath.Join(dir, "hosts"))
			return &Writer{Path: filepath.Join(dir, "hosts")}
		}, false},
		"hard link rewritten in place": {func(t *testing.T, dir string) *Writer {
			if err := os.Link(filepath.Join(dir, "passwd"), filepath.Join(dir, "hosts")); err != nil {
				t.Fatal(err)
			}
			return &Writer{Path: filepath.Join(dir, "hosts"), Rename: busy}
		}, false},
		"backup path is a symlink": {func(t *testing.T, dir string) *Writer {
			if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			// A planted backup symlink must not make the first write copy
			// the hosts file over passwd.
			mustSymlink(t, filepath.Join(dir, "passwd"), filepath.Join(dir, "hosts.bak"))
			return &Writer{Path: filepath.Join(dir, "hosts")}
		}, true},
		"directory": {func(t *testing.T, dir string) *Writer {
			if err := os.Mkdir(filepath.Join(dir, "hosts"), 0o755); err != nil {
				t.Fatal(err)
			}
			return &Writer{Path: filepath.Join(dir, "hosts")}
		}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			pw := filepath.Join(dir, "passwd")
			if err := os.WriteFile(pw, []byte(passwd), 0o644); err != nil {
				t.Fatal(err)
			}
			w := tc.setup(t, dir)
			_, err := w.Sync(entries, nil, SyncOptions{})
			switch {
			case tc.allowed && err != nil:
				t.Fatalf("Sync: %v", err)
			case !tc.allowed && !errors.Is(err, ErrNotPlainFile):
				t.Fatalf("Sync through %s = %v; want ErrNotPlainFile", name, err)
			case err != nil:
				t.Logf("refused: %v", err)
			}
			if got := read(t, pw); got != passwd {
				t.Errorf("passwd stand-in changed to %q", got)
			}
		})
	}
}

// A bind-mounted single file (another device than its directory) is
// rewritten in place without trying a temp file beside it: in the agent's
// pod that directory is the read-only root filesystem.
func TestInPlaceKeepsLengthUntilDone(t *testing.T) {
	w := newWriter(t, userHead+"# AEROSTAT\n10.0.0.1 web-0\n10.0.0.2 web-1\n10.0.0.3 web-2\n# /AEROSTAT\n")
	st, err := os.Lstat(w.Path)
	if err != nil {
		t.Fatal(err)
	}
	short := []byte(userHead + "# AEROSTAT\n10.0.0.1 web-0\n# /AEROSTAT\n")
	if err := writeInPlace(w.Path, st, short); err != nil {
		t.Fatal(err)
	}
	if got := read(t, w.Path); got != string(short) {
		t.Errorf("after shrinking in place: %q", got)
	}
	// The file seen by a reader between the write and the truncate: the
	// new content then blank lines, which parse to the same block.
	padded := append([]byte(nil), short...)
	padded = append(padded, "\n\n\n"...)
	f, err := Parse(padded)
	if err != nil || len(f.Entries) != 1 {
		t.Errorf("padded content parses to %+v, %v", f, err)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
