package hostsfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// DefaultMaxShrink is the largest fraction of the block one write may remove
// unless the removal is known to be authoritative.
const DefaultMaxShrink = 0.5

// ErrShrink is returned when a write would remove too much of the block at once.
var ErrShrink = errors.New("refusing to shrink the aerostat block")

// ErrNotPlainFile is returned when the hosts file is a symlink, has other
// hard links or is not a regular file: writing through it could change a
// file other than the one configured (a hosts symlink or hard link to
// /etc/passwd), and inside a container an absolute symlink resolves in the
// container's own filesystem, where it reads as empty.
var ErrNotPlainFile = errors.New("not a plain hosts file")

// Writer keeps one hosts file up to date.
type Writer struct {
	// Path of the hosts file, e.g. /etc/hosts.
	Path string
	// BackupPath receives the file as it was before Aerostat first changed
	// it; default Path+".bak". It is never overwritten.
	BackupPath string
	// MaxShrink is the largest fraction of the block's entries one write may
	// remove (entries Released reports as released do not count). Zero means
	// DefaultMaxShrink; 1 disables the guard.
	MaxShrink float64
	// Rename replaces the file; default os.Rename. Tests inject failures.
	Rename func(oldpath, newpath string) error
}

// Result describes one Sync.
type Result struct {
	Old, New []byte
	Changed  bool // the file was (or, for a dry run, would be) rewritten
	InPlace  bool // rename was refused (bind mount) and the inode was rewritten
	Removed  int  // entries removed from the block
	Entries  int  // entries in the new block
}

// SyncOptions tune one Sync.
type SyncOptions struct {
	// Authoritative lifts the shrink guard: the caller knows the names were
	// really released (not merely missing from a bad read).
	Authoritative bool
	// Released reports names known to be released; their removal does not
	// count towards the shrink guard.
	Released func(hostname string) bool
	// KeepLegacy keeps the file's current legacy section and ignores the
	// legacy argument (no updater configured, or it failed).
	KeepLegacy bool
	// DryRun computes the result without writing anything.
	DryRun bool
}

// Sync makes the file's block hold entries and its legacy section hold
// legacy (nil removes it). It writes nothing when the content is unchanged,
// when the current file has a broken block (*BlockError), or when the new
// block would shrink by more than MaxShrink (ErrShrink).
// A missing file is treated as empty.
func (w *Writer) Sync(entries []Entry, legacy []byte, opts SyncOptions) (Result, error) {
	if err := checkPlain(w.Path); err != nil {
		return Result{}, err
	}
	old, err := os.ReadFile(w.Path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Result{}, fmt.Errorf("reading %s: %w", w.Path, err)
	}
	f, err := Parse(old)
	if err != nil {
		return Result{}, fmt.Errorf("parsing %s: %w", w.Path, err)
	}
	entries = Normalize(entries)
	res := Result{Old: old, Entries: len(entries)}
	res.Removed = w.checkShrink(f.Entries, entries, opts)
	if res.Removed < 0 {
		return res, fmt.Errorf("%w in %s from %d to %d entries (max fraction %.2f); the source may be incomplete",
			ErrShrink, w.Path, len(Normalize(f.Entries)), len(entries), w.maxShrink())
	}
	if opts.KeepLegacy {
		legacy = f.Legacy
	}
	res.New, err = f.Render(entries, legacy)
	if err != nil {
		return res, err
	}
	if bytes.Equal(old, res.New) {
		return res, nil
	}
	res.Changed = true
	if opts.DryRun {
		return res, nil
	}
	if err := w.backup(old); err != nil {
		return res, err
	}
	res.InPlace, err = w.write(res.New)
	return res, err
}

func (w *Writer) maxShrink() float64 {
	if w.MaxShrink <= 0 {
		return DefaultMaxShrink
	}
	return w.MaxShrink
}

// checkShrink returns the number of removed entries, or -1 when the guard trips.
func (w *Writer) checkShrink(oldEntries, newEntries []Entry, opts SyncOptions) int {
	oldEntries = Normalize(oldEntries)
	keep := make(map[Entry]bool, len(newEntries))
	names := make(map[string]bool, len(newEntries))
	for _, e := range newEntries {
		keep[e] = true
		names[e.Hostname] = true
	}
	removed, unexplained := 0, 0
	for _, e := range oldEntries {
		if keep[e] {
			continue
		}
		removed++
		// A name that moved to another address is an update, not a loss:
		// counting it would wedge an agent after a mass replacement (every
		// later sync would trip the guard on the same old file).
		if !names[e.Hostname] && (opts.Released == nil || !opts.Released(e.Hostname)) {
			unexplained++
		}
	}
	if opts.Authoritative || w.maxShrink() >= 1 || len(oldEntries) == 0 {
		return removed
	}
	if float64(unexplained) > w.maxShrink()*float64(len(oldEntries)) {
		return -1
	}
	return removed
}

func (w *Writer) backup(old []byte) error {
	if old == nil {
		return nil
	}
	path := w.BackupPath
	if path == "" {
		path = w.Path + ".bak"
	}
	if _, err := os.Lstat(path); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("checking backup %s: %w", path, err)
	}
	// O_EXCL with O_NOFOLLOW: a symlink planted at the backup path is
	// refused, never followed.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return fmt.Errorf("writing backup %s: %w", path, err)
	}
	if _, err := f.Write(old); err != nil {
		f.Close()
		return fmt.Errorf("writing backup %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing backup %s: %w", path, err)
	}
	return nil
}

// checkPlain refuses a hosts file that is a symlink or not a regular file.
// A missing file is fine (it is created by rename).
func checkPlain(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking %s: %w", path, err)
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		target, _ := os.Readlink(path)
		return fmt.Errorf("%w: %s is a symlink to %q; refusing to write through it (in a container an absolute symlink points into the container's own files and reads as empty): give the real file's path", ErrNotPlainFile, path, target)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is a %s, not a regular file", ErrNotPlainFile, path, st.Mode().Type())
	}
	return nil
}

// write replaces the file atomically (temp file, fsync, rename, fsync dir),
// or rewrites it in place when the rename is refused because the file is a
// mount point (EBUSY: a bind-mounted /etc/hosts in a container).
func (w *Writer) write(data []byte) (inPlace bool, err error) {
	mode := fs.FileMode(0o644)
	st, statErr := os.Lstat(w.Path)
	if statErr == nil {
		mode = st.Mode().Perm()
	}
	dir := filepath.Dir(w.Path)
	if statErr == nil && isMountPoint(st, dir) {
		// A single bind-mounted file (the agent's DaemonSet mounts only
		// /etc/hosts): its directory is the container's read-only root,
		// and rename onto a mount point fails anyway.
		return true, writeInPlace(w.Path, st, data)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(w.Path)+".aerostat-*")
	if err != nil {
		return false, fmt.Errorf("creating temp file in %s: %w", dir, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return false, fmt.Errorf("writing %s: %w", tmpName, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return false, fmt.Errorf("chmod %s: %w", tmpName, err)
	}
	if sys, ok := statErrSys(st, statErr); ok {
		// Best effort: only root can give the file back to its owner.
		_ = tmp.Chown(int(sys.Uid), int(sys.Gid))
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, fmt.Errorf("fsync %s: %w", tmpName, err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("closing %s: %w", tmpName, err)
	}
	rename := w.Rename
	if rename == nil {
		rename = os.Rename
	}
	if err := rename(tmpName, w.Path); err != nil {
		if !errors.Is(err, syscall.EBUSY) {
			return false, fmt.Errorf("replacing %s: %w", w.Path, err)
		}
		return true, writeInPlace(w.Path, st, data)
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return false, fmt.Errorf("fsync %s: %w", dir, err)
		}
	}
	return false, nil
}

func statErrSys(st fs.FileInfo, err error) (*syscall.Stat_t, bool) {
	if err != nil {
		return nil, false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return sys, ok
}

// isMountPoint reports whether the file at st lives on another device than
// its directory: a bind-mounted file.
func isMountPoint(st fs.FileInfo, dir string) bool {
	dst, err := os.Stat(dir)
	if err != nil {
		return false
	}
	a, ok1 := st.Sys().(*syscall.Stat_t)
	b, ok2 := dst.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && a.Dev != b.Dev
}

// writeInPlace rewrites the same inode, which must still be the plain file
// want describes (no symlink followed, no other hard link: a hosts file
// hard-linked to /etc/passwd is refused, not written).
//
// A reader of the file (glibc reads /etc/hosts in 4 KiB read calls) must
// never see it empty or cut short, so the file is never truncated first:
// the new content, padded with trailing newlines to the old length when it
// is shorter, goes down in one write at offset 0, and only then is the
// padding (blank lines, harmless to any reader) cut off. A file that fits
// one read is seen whole, old or new; a larger one can be read across a
// rewrite (first pages old, later ones new), which only rename avoids.
func writeInPlace(path string, want fs.FileInfo, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("opening %s for in-place rewrite: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("checking %s: %w", path, err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || !st.Mode().IsRegular() || (want != nil && !os.SameFile(st, want)) {
		return fmt.Errorf("%w: %s changed under the writer; refusing the in-place rewrite", ErrNotPlainFile, path)
	}
	if sys.Nlink > 1 {
		return fmt.Errorf("%w: %s has %d hard links; refusing to rewrite a file that is also another name", ErrNotPlainFile, path, sys.Nlink)
	}
	padded := data
	if n := int(st.Size()) - len(data); n > 0 {
		padded = append(slices.Clip(data), bytes.Repeat([]byte{'\n'}, n)...)
	}
	if _, err := f.WriteAt(padded, 0); err != nil {
		return fmt.Errorf("rewriting %s in place: %w", path, err)
	}
	if len(padded) != len(data) {
		if err := f.Truncate(int64(len(data))); err != nil {
			return fmt.Errorf("truncating %s: %w", path, err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	return f.Close()
}

// DefaultLegacyFile is where 1.x legacy updaters write their output.
const DefaultLegacyFile = "/etc/hosts.legacy"

// RunLegacy runs a 1.x legacy updater program (no shell, no arguments) with
// a timeout, then returns the content of legacyFile it wrote. An error means
// the caller should keep the legacy section it already has.
func RunLegacy(ctx context.Context, prog, legacyFile string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog)
	// Kill stragglers holding our pipes so a hung updater cannot hang us.
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("legacy updater %s: timed out after %s", prog, timeout)
	}
	if err != nil {
		if msg := bytes.TrimSpace(truncate(out, 512)); len(msg) > 0 {
			return nil, fmt.Errorf("legacy updater %s: %w: %s", prog, err, msg)
		}
		return nil, fmt.Errorf("legacy updater %s: %w", prog, err)
	}
	data, err := os.ReadFile(legacyFile)
	if err != nil {
		return nil, fmt.Errorf("reading legacy updater output: %w", err)
	}
	return data, nil
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
