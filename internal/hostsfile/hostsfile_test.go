package hostsfile

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aerostat-io/aerostat/internal/naming"
)

const userHead = "127.0.0.1\tlocalhost   # keep my spacing\r\n\n# my comment\n::1 ip6-localhost\n"

func TestParse(t *testing.T) {
	tests := map[string]struct {
		in          string
		wantBefore  string
		wantAfter   string
		wantLegacy  string
		wantEntries []Entry
		wantBlock   bool
		wantErr     bool
	}{
		"no block": {
			in: userHead, wantBefore: userHead,
		},
		"block in the middle": {
			in:          userHead + "# AEROSTAT\n10.0.0.1 web-0\n10.0.0.2 web-1 www\n# /AEROSTAT\ntail line\n",
			wantBefore:  userHead,
			wantAfter:   "tail line\n",
			wantEntries: []Entry{{"10.0.0.1", "web-0"}, {"10.0.0.2", "web-1"}, {"10.0.0.2", "www"}},
			wantBlock:   true,
		},
		"legacy and block, crlf markers": {
			in:          "a\n# AEROSTAT LEGACY\r\n1.2.3.4 old\n# /AEROSTAT LEGACY\r\n# AEROSTAT  \n10.0.0.1 web-0\n# /AEROSTAT",
			wantBefore:  "a\n",
			wantLegacy:  "1.2.3.4 old\n",
			wantEntries: []Entry{{"10.0.0.1", "web-0"}},
			wantBlock:   true,
		},
		"duplicated blocks merged, user lines between kept": {
			in:          "a\n# AEROSTAT\n10.0.0.1 web-0\n# /AEROSTAT\nmine\n# AEROSTAT\n10.0.0.2 web-1\n# /AEROSTAT\nz\n",
			wantBefore:  "a\n",
			wantAfter:   "mine\nz\n",
			wantEntries: []Entry{{"10.0.0.1", "web-0"}, {"10.0.0.2", "web-1"}},
			wantBlock:   true,
		},
		"junk inside block ignored": {
			in:          "# AEROSTAT\nnot-an-ip web-0\n10.0.0.1 bad#name\n10.0.0.1\n# note\n10.0.0.3 ok\n# /AEROSTAT\n",
			wantEntries: []Entry{{"10.0.0.3", "ok"}, {"10.0.0.1", "bad"}},
			wantBlock:   true,
		},
		"begin without end": {in: userHead + "# AEROSTAT\n10.0.0.1 web-0\n", wantErr: true},
		"end without begin": {in: userHead + "# /AEROSTAT\n", wantErr: true},
		"nested begin":      {in: "# AEROSTAT\n# AEROSTAT\n# /AEROSTAT\n", wantErr: true},
		"legacy unclosed":   {in: "# AEROSTAT LEGACY\n# AEROSTAT\n# /AEROSTAT\n", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f, err := Parse([]byte(tc.in))
			if tc.wantErr {
				if !errors.Is(err, ErrBrokenBlock) {
					t.Fatalf("Parse error = %v, want ErrBrokenBlock", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(f.Before) != tc.wantBefore || string(f.After) != tc.wantAfter || string(f.Legacy) != tc.wantLegacy {
				t.Errorf("Before=%q After=%q Legacy=%q", f.Before, f.After, f.Legacy)
			}
			if f.HasBlock != tc.wantBlock {
				t.Errorf("HasBlock = %v", f.HasBlock)
			}
			if !equalEntries(Normalize(f.Entries), Normalize(tc.wantEntries)) {
				t.Errorf("Entries = %v, want %v", f.Entries, tc.wantEntries)
			}
		})
	}
}

func equalEntries(a, b []Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFromRecordsAndRender(t *testing.T) {
	recs := []naming.Record{
		{Hostname: "web-10", IP: "10.0.0.10", InstanceID: "i-10"},
		{Hostname: "web-2", IP: "10.0.0.2", InstanceID: "i-2", Aliases: []string{"www", "api.example.com"}},
		{Hostname: "web-3", InstanceID: ""}, // gap: not rendered
		{Hostname: "evil\n1.1.1.1 bank", IP: "10.0.0.9", InstanceID: "i-9"},
		{Hostname: "web-4", IP: "10.0.0.4 #", InstanceID: "i-4"},
		{Hostname: "web-5", IP: "fe80::1%x\n1.1.1.1", InstanceID: "i-5"},
	}
	entries, skipped := FromRecords(recs)
	if len(skipped) != 3 {
		t.Errorf("skipped = %v, want 2 entries", skipped)
	}
	f, err := Parse([]byte(userHead))
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.Render(entries, []byte("192.168.1.1 legacy-db"))
	if err != nil {
		t.Fatal(err)
	}
	want := userHead + "# AEROSTAT LEGACY\n192.168.1.1 legacy-db\n# /AEROSTAT LEGACY\n# AEROSTAT\n" +
		"10.0.0.2 api.example.com\n10.0.0.10 web-10\n10.0.0.2 web-2\n10.0.0.2 www\n# /AEROSTAT\n"
	if string(out) != want {
		t.Errorf("Render =\n%s\nwant\n%s", out, want)
	}
	if _, err := f.Render(nil, []byte("x\n# /AEROSTAT\n")); err == nil {
		t.Error("Render accepted legacy content holding a marker")
	}
	if _, err := f.Render([]Entry{{IP: "1.2.3.4", Hostname: "a b"}}, nil); err == nil {
		t.Error("Render accepted a hostname with a space")
	}
}

func newWriter(t *testing.T, content string) *Writer {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "hosts")
	if content != "" {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &Writer{Path: path}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSyncWritesBackupAndSkipsUnchanged(t *testing.T) {
	w := newWriter(t, userHead)
	entries := []Entry{{"10.0.0.1", "web-0"}, {"10.0.0.2", "web-1"}}
	res, err := w.Sync(entries, nil, SyncOptions{})
	if err != nil || !res.Changed || res.InPlace {
		t.Fatalf("Sync = %+v, %v", res, err)
	}
	got := read(t, w.Path)
	if !strings.HasPrefix(got, userHead) || !strings.Contains(got, "10.0.0.2 web-1\n") {
		t.Fatalf("file = %q", got)
	}
	if b := read(t, w.Path+".bak"); b != userHead {
		t.Errorf("backup = %q, want the original", b)
	}
	// Make the mtime distinguishable, then sync the same content again.
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(w.Path, past, past); err != nil {
		t.Fatal(err)
	}
	res, err = w.Sync(entries, nil, SyncOptions{})
	if err != nil || res.Changed {
		t.Fatalf("second Sync = %+v, %v; want unchanged", res, err)
	}
	st, err := os.Stat(w.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !st.ModTime().Equal(past) {
		t.Errorf("mtime changed to %v on an unchanged sync", st.ModTime())
	}
	// A later change keeps the first backup.
	if _, err := w.Sync(entries[:1], nil, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if b := read(t, w.Path+".bak"); b != userHead {
		t.Errorf("backup overwritten: %q", b)
	}
	if entries, err := os.ReadDir(filepath.Dir(w.Path)); err != nil || len(entries) != 2 {
		t.Errorf("dir holds %v (%v), want hosts and hosts.bak only", entries, err)
	}
}

func TestSyncMissingFile(t *testing.T) {
	w := newWriter(t, "")
	if _, err := w.Sync([]Entry{{"10.0.0.1", "web-0"}}, nil, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, w.Path); got != "# AEROSTAT\n10.0.0.1 web-0\n# /AEROSTAT\n" {
		t.Errorf("file = %q", got)
	}
}

func TestSyncRefusesBrokenBlock(t *testing.T) {
	orig := userHead + "# AEROSTAT\n10.0.0.1 web-0\n"
	w := newWriter(t, orig)
	_, err := w.Sync([]Entry{{"10.0.0.1", "web-0"}}, nil, SyncOptions{})
	if !errors.Is(err, ErrBrokenBlock) {
		t.Fatalf("Sync error = %v, want ErrBrokenBlock", err)
	}
	if got := read(t, w.Path); got != orig {
		t.Errorf("file changed: %q", got)
	}
}

func TestSyncShrinkGuard(t *testing.T) {
	var ten []Entry
	for i := range 10 {
		ten = append(ten, Entry{IP: "10.0.0." + string(rune('0'+i)), Hostname: "web-" + string(rune('0'+i))})
	}
	tests := map[string]struct {
		keep      int
		maxShrink float64
		moved     bool // every kept name gets another address
		opts      SyncOptions
		wantErr   bool
	}{
		"half removed is allowed":        {keep: 5},
		"configured fraction: 20% ok":    {keep: 8, maxShrink: 0.2},
		"configured fraction: 30% not":   {keep: 7, maxShrink: 0.2, wantErr: true},
		"guard disabled":                 {keep: 0, maxShrink: 1},
		"more than half refused":         {keep: 4, wantErr: true},
		"empty refused":                  {keep: 0, wantErr: true},
		"empty allowed if authoritative": {keep: 0, opts: SyncOptions{Authoritative: true}},
		"released names do not count": {keep: 2, opts: SyncOptions{Released: func(h string) bool {
			return h >= "web-5"
		}}},
		"names at new addresses do not count": {keep: 10, moved: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := newWriter(t, userHead)
			w.MaxShrink = tc.maxShrink
			if _, err := w.Sync(ten, nil, SyncOptions{}); err != nil {
				t.Fatal(err)
			}
			before := read(t, w.Path)
			next := slices.Clone(ten[:tc.keep])
			if tc.moved {
				for i := range next {
					next[i].IP = "10.1.0." + string(rune('0'+i))
				}
			}
			_, err := w.Sync(next, nil, tc.opts)
			if tc.wantErr {
				if !errors.Is(err, ErrShrink) {
					t.Fatalf("err = %v, want ErrShrink", err)
				}
				if read(t, w.Path) != before {
					t.Error("file changed although the shrink was refused")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			f, _ := Parse([]byte(read(t, w.Path)))
			if len(f.Entries) != tc.keep {
				t.Errorf("entries = %d, want %d", len(f.Entries), tc.keep)
			}
		})
	}
}

func TestSyncInPlaceWhenRenameBusy(t *testing.T) {
	w := newWriter(t, userHead)
	var st0 syscall.Stat_t
	if err := syscall.Stat(w.Path, &st0); err != nil {
		t.Fatal(err)
	}
	renames := 0
	w.Rename = func(_, _ string) error {
		renames++
		return &os.LinkError{Op: "rename", Err: syscall.EBUSY}
	}
	res, err := w.Sync([]Entry{{"10.0.0.1", "web-0"}}, nil, SyncOptions{})
	if err != nil || !res.InPlace || renames != 1 {
		t.Fatalf("Sync = %+v, %v (renames %d); want in-place rewrite", res, err, renames)
	}
	var st1 syscall.Stat_t
	if err := syscall.Stat(w.Path, &st1); err != nil {
		t.Fatal(err)
	}
	if st0.Ino != st1.Ino {
		t.Errorf("inode changed %d → %d; the in-place rewrite must keep it", st0.Ino, st1.Ino)
	}
	if got := read(t, w.Path); got != userHead+"# AEROSTAT\n10.0.0.1 web-0\n# /AEROSTAT\n" {
		t.Errorf("file = %q", got)
	}
	// Shrinking in place truncates the tail.
	if _, err := w.Sync(nil, nil, SyncOptions{Authoritative: true}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, w.Path); got != userHead+"# AEROSTAT\n# /AEROSTAT\n" {
		t.Errorf("file = %q", got)
	}
	if entries, _ := os.ReadDir(filepath.Dir(w.Path)); len(entries) != 2 {
		t.Errorf("temp file left behind: %v", entries)
	}
}

func TestSyncOtherRenameErrorWritesNothing(t *testing.T) {
	w := newWriter(t, userHead)
	w.Rename = func(_, _ string) error { return &os.LinkError{Op: "rename", Err: syscall.EACCES} }
	if _, err := w.Sync([]Entry{{"10.0.0.1", "web-0"}}, nil, SyncOptions{}); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("err = %v, want EACCES", err)
	}
	if read(t, w.Path) != userHead {
		t.Error("file changed")
	}
}

func TestRunLegacy(t *testing.T) {
	dir := t.TempDir()
	legacyFile := filepath.Join(dir, "hosts.legacy")
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok := script("ok", "echo '192.168.0.1 old-db' > "+legacyFile+"\n")
	fail := script("fail", "echo boom >&2; exit 3\n")
	hang := script("hang", "sleep 30\n")
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh to run test updaters")
	}
	got, err := RunLegacy(context.Background(), ok, legacyFile, 10*time.Second)
	if err != nil || string(got) != "192.168.0.1 old-db\n" {
		t.Errorf("ok updater: %q, %v", got, err)
	}
	if _, err := RunLegacy(context.Background(), fail, legacyFile, 10*time.Second); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("failing updater: err = %v", err)
	}
	if _, err := RunLegacy(context.Background(), hang, legacyFile, 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("hanging updater: err = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(userHead))
	f.Add([]byte("a\n# AEROSTAT LEGACY\n1.2.3.4 x\n# /AEROSTAT LEGACY\n# AEROSTAT\n10.0.0.1 web-0 www\n# /AEROSTAT\nb"))
	f.Add([]byte("# AEROSTAT\n# AEROSTAT\n"))
	f.Add([]byte("x\n# AEROSTAT\n::1 a\n# /AEROSTAT\ny\n# AEROSTAT\n# /AEROSTAT\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p1, err := Parse(data)
		if err != nil {
			return
		}
		// Outside bytes are kept: Before is a prefix, After a subsequence at the end side.
		if !bytes.HasPrefix(data, p1.Before) {
			t.Fatalf("Before %q is not a prefix of the input", p1.Before)
		}
		out, err := p1.Render(p1.Entries, p1.Legacy)
		if err != nil {
			t.Fatalf("Render of parsed content: %v", err)
		}
		p2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Render) = %v\n%q", err, out)
		}
		wantBefore := p1.Before
		if len(wantBefore) > 0 && wantBefore[len(wantBefore)-1] != '\n' {
			wantBefore = append(append([]byte{}, wantBefore...), '\n')
		}
		if !bytes.Equal(p2.Before, wantBefore) || !bytes.Equal(p2.After, p1.After) || !bytes.Equal(p2.Legacy, p1.Legacy) {
			t.Fatalf("round trip changed outside bytes:\n%q\n%q", data, out)
		}
		if !equalEntries(p2.Entries, Normalize(p1.Entries)) {
			t.Fatalf("round trip entries %v != %v", p2.Entries, Normalize(p1.Entries))
		}
		out2, err := p2.Render(p2.Entries, p2.Legacy)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("render not stable: %v", err)
		}
	})
}

func TestSyncLegacySection(t *testing.T) {
	w := newWriter(t, userHead)
	e := []Entry{{"10.0.0.1", "web-0"}}
	if _, err := w.Sync(e, []byte("192.168.0.1 old\n"), SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	// KeepLegacy keeps the section whatever legacy argument is passed.
	if _, err := w.Sync(append(e, Entry{"10.0.0.2", "web-1"}), nil, SyncOptions{KeepLegacy: true}); err != nil {
		t.Fatal(err)
	}
	want := userHead + "# AEROSTAT LEGACY\n192.168.0.1 old\n# /AEROSTAT LEGACY\n# AEROSTAT\n10.0.0.1 web-0\n10.0.0.2 web-1\n# /AEROSTAT\n"
	if got := read(t, w.Path); got != want {
		t.Fatalf("file = %q", got)
	}
	// An empty legacy output removes the section.
	if _, err := w.Sync(e, nil, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, w.Path); strings.Contains(got, "LEGACY") {
		t.Fatalf("file = %q", got)
	}
}

// The new content is complete on disk, with the file's mode, in a temp file
// of the same directory (same filesystem, so rename is atomic) before the
// rename; readers see the old file or the new one, never a partial one.
func TestSyncAtomicRename(t *testing.T) {
	w := newWriter(t, userHead)
	if err := os.Chmod(w.Path, 0o640); err != nil {
		t.Fatal(err)
	}
	var renamed bool
	w.Rename = func(oldpath, newpath string) error {
		renamed = true
		if filepath.Dir(oldpath) != filepath.Dir(w.Path) || newpath != w.Path {
			t.Errorf("rename %s → %s: temp file not next to the target", oldpath, newpath)
		}
		if got := read(t, w.Path); got != userHead {
			t.Errorf("target changed before the rename: %q", got)
		}
		if got := read(t, oldpath); !strings.HasSuffix(got, "10.0.0.1 web-0\n# /AEROSTAT\n") {
			t.Errorf("temp file incomplete at rename time: %q", got)
		}
		if st, err := os.Stat(oldpath); err != nil || st.Mode().Perm() != 0o640 {
			t.Errorf("temp file mode = %v, %v; want the target's 0640", st.Mode(), err)
		}
		return os.Rename(oldpath, newpath)
	}
	res, err := w.Sync([]Entry{{"10.0.0.1", "web-0"}}, nil, SyncOptions{})
	if err != nil || !renamed || res.InPlace {
		t.Fatalf("Sync = %+v, %v (renamed %v)", res, err, renamed)
	}
	if st, err := os.Stat(w.Path); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("mode after write = %v, %v", st.Mode(), err)
	}
}
