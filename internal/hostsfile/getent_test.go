package hostsfile

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

const getentChildEnv = "AEROSTAT_GETENT_CHILD"

// rewrites is how many times the child rewrites the bind-mounted file.
const rewrites = 10000

// TestReadersNeverSeeATornFile rewrites a hosts file 10,000 times,
// alternating between a longer and a shorter block with different
// addresses, while the system resolver (`getent hosts`) and a reader that
// reads like glibc (4 KiB read calls) look names up in a loop, inside a
// private mount namespace where /etc is an overlay (the real /etc is never
// written):
//
//   - directory: /etc/hosts is a relative symlink into a dedicated
//     directory, which is what the agent mounts (agent.hostsDirectory);
//     the writer renames a temp file there. Every lookup must find the name
//     at one of its two addresses and every read must parse to exactly one
//     of the two versions: never empty, never cut, never mixed.
//   - file: a temp file is bind-mounted over /etc/hosts, as the agent's
//     default single-file mount does; rename is impossible and the file is
//     rewritten in place. Readers never see it empty, but a read racing the
//     write can see new bytes followed by old ones: the count is logged as
//     a measurement, and that is why the directory mode exists.
func TestReadersNeverSeeATornFile(t *testing.T) {
	if os.Getenv(getentChildEnv) != "" {
		getentChild(t)
		return
	}
	if testing.Short() {
		t.Skip("10,000 rewrites: skipped with -short")
	}
	for _, tool := range []string{"unshare", "getent"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	if out, err := exec.Command("unshare", "-m", "--propagation", "private", "true").CombinedOutput(); err != nil {
		t.Skipf("private mount namespaces not permitted here (needs root or CAP_SYS_ADMIN): %v %s", err, out)
	}
	for _, mode := range []string{"directory", "file"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command("unshare", "-m", "--propagation", "private", os.Args[0], "-test.run=^TestReadersNeverSeeATornFile$", "-test.v")
			cmd.Env = append(os.Environ(), getentChildEnv+"="+mode+":"+dir)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			if strings.Contains(string(out), "--- SKIP") {
				t.Skipf("child skipped:\n%s", out)
			}
			t.Logf("child:\n%s", out)
		})
	}
}

// block returns n names web-0 … web-(n-1) at 10.<net>.0.x.
func block(n, net int) []Entry {
	out := make([]Entry, n)
	for i := range out {
		out[i] = Entry{IP: fmt.Sprintf("10.%d.%d.%d", net, i/200, i%200+1), Hostname: fmt.Sprintf("web-%d", i)}
	}
	return out
}

func getentChild(t *testing.T) {
	mode, dir, _ := strings.Cut(os.Getenv(getentChildEnv), ":")
	mnt := filepath.Join(dir, "tmpfs")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=16m"); err != nil {
		t.Skipf("mounting a tmpfs: %v", err)
	}
	// An overlay keeps anything written beside /etc/hosts off the real /etc.
	for _, d := range []string{"upper", "work"} {
		if err := os.Mkdir(filepath.Join(mnt, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mount("overlay", "/etc", "overlay", 0,
		"lowerdir=/etc,upperdir="+filepath.Join(mnt, "upper")+",workdir="+filepath.Join(mnt, "work")); err != nil {
		t.Skipf("overlay on /etc (to keep the real /etc untouched): %v", err)
	}
	long, short := block(60, 0), block(40, 1)
	first, err := File{}.Render(long, nil)
	if err != nil {
		t.Fatal(err)
	}
	first = append([]byte("127.0.0.1 localhost\n"), first...)
	path := setupHosts(t, mode, mnt, first)
	// What a reader parses from each version, in the file's order.
	parsed := func(e []Entry) []Entry {
		data, err := File{}.Render(e, nil)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		return f.Entries
	}
	longEntries, shortEntries := parsed(long), parsed(short)
	w := &Writer{Path: path, BackupPath: filepath.Join(mnt, "hosts.bak"), MaxShrink: 1}
	// Both names exist in both versions, at 10.0.x or 10.1.x.
	want := map[string][2]string{"web-0": {"10.0.0.1", "10.1.0.1"}, "web-39": {"10.0.0.40", "10.1.0.40"}}

	var (
		done               atomic.Bool
		lookups, reads     atomic.Int64
		mu                 sync.Mutex
		failures           []string
		wg                 sync.WaitGroup
		started            = make(chan struct{}, 3)
		inPlace, rewritten int
	)
	var bad, empty atomic.Int64
	fail := func(s string) {
		bad.Add(1)
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, s)
		}
	}
	for _, host := range []string{"web-0", "web-39"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first := true; first || !done.Load(); first = false {
				out, err := exec.Command("getent", "hosts", host).Output()
				f := strings.Fields(string(out))
				if err != nil || len(f) < 2 || (f[0] != want[host][0] && f[0] != want[host][1]) {
					fail(fmt.Sprintf("getent hosts %s = %q, %v", host, out, err))
				}
				lookups.Add(1)
				if first {
					started <- struct{}{}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 4096)
		for first := true; first || !done.Load(); first = false {
			data, err := readLikeGlibc("/etc/hosts", buf)
			if err == nil && !bytes.HasPrefix(data, []byte("127.0.0.1 localhost\n")) {
				empty.Add(1)
			}
			if err != nil {
				fail(err.Error())
			} else if f, err := Parse(data); err != nil || !f.HasBlock || !whole(f.Entries, longEntries, shortEntries) {
				fail(fmt.Sprintf("read %d bytes: %d entries, block %v, %v:\n%s", len(data), len(f.Entries), f.HasBlock, err, data))
			}
			reads.Add(1)
			if first {
				started <- struct{}{}
			}
		}
	}()
	for range 3 {
		<-started // every reader is running before the first rewrite
	}
	for i := range rewrites {
		entries := long
		if i%2 == 0 {
			entries = short
		}
		res, err := w.Sync(entries, nil, SyncOptions{Authoritative: true})
		if err != nil {
			done.Store(true)
			wg.Wait()
			t.Fatalf("rewrite %d: %v", i, err)
		}
		if res.Changed {
			rewritten++
		}
		if res.InPlace {
			inPlace++
		}
	}
	done.Store(true)
	wg.Wait()
	if wantInPlace := map[string]int{"file": rewrites, "directory": 0}[mode]; rewritten != rewrites || inPlace != wantInPlace {
		t.Fatalf("%d rewrites, %d in place; want %d and %d", rewritten, inPlace, rewrites, wantInPlace)
	}
	// The readers must have overlapped the writes for the test to mean
	// anything: each ran at least once more after the first rewrite.
	if lookups.Load() < 4 || reads.Load() < 2 {
		t.Fatalf("readers did not overlap the writer: %d lookups, %d reads", lookups.Load(), reads.Load())
	}
	t.Logf("%s mode: %d rewrites (%d in place); %d getent lookups and %d 4 KiB-chunk reads alongside; %d bad, %d read empty",
		mode, rewrites, inPlace, lookups.Load(), reads.Load(), bad.Load(), empty.Load())
	if empty.Load() > 0 {
		t.Errorf("%d reads found the file empty", empty.Load())
	}
	if mode == "file" {
		if len(failures) > 0 {
			t.Logf("first torn read (in place; measured, not a failure): %.300q", failures[0])
		}
		return
	}
	for _, f := range failures {
		t.Error(f)
	}
}

// setupHosts makes /etc/hosts resolve to a file holding content and
// returns the path the writer keeps (see TestReadersNeverSeeATornFile).
func setupHosts(t *testing.T, mode, mnt string, content []byte) string {
	switch mode {
	case "file":
		src := filepath.Join(mnt, "hosts")
		if err := os.WriteFile(src, content, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount(src, "/etc/hosts", "", syscall.MS_BIND, ""); err != nil {
			t.Skipf("bind mount over /etc/hosts: %v", err)
		}
		return "/etc/hosts"
	case "directory":
		d := filepath.Join(mnt, "aerostat")
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "hosts"), content, 0o644); err != nil {
			t.Fatal(err)
		}
		// In the overlay's upper layer: the real /etc/hosts stays.
		if err := os.Remove("/etc/hosts"); err != nil {
			t.Fatal(err)
		}
		rel, err := filepath.Rel("/etc", filepath.Join(d, "hosts"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(rel, "/etc/hosts"); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(d, "hosts")
	}
	t.Fatalf("mode %q", mode)
	return ""
}

// whole reports whether got is exactly one of the two versions.
func whole(got []Entry, a, b []Entry) bool {
	eq := func(x, y []Entry) bool {
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	}
	return eq(got, a) || eq(got, b)
}

// readLikeGlibc reads the file as nss_files does: fopen, then read calls
// of the stdio buffer size (st_blksize, 4 KiB) until EOF.
func readLikeGlibc(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []byte
	r := bufio.NewReaderSize(f, len(buf))
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
