package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Reap undoes what earlier runs left on the machine when they were killed
// before their teardown (kill -9, a timeout, a lost session): every
// process that names one of their directories (etcd, kube-apiserver,
// containerd and its shims, the kubelet) and the containers under those
// shims, the mounts under their directories, the network namespaces no
// process is in any more, and the directories themselves but for their
// logs; and what their containers left in the machine's own directories
// (runc's state, shim sockets, libcni's cache, empty cgroups: see
// hostDirs), each recognised by the earlier run's directory it names. glob names the runs' directories (e.g. /tmp/ae2e-*); current is this
// run's, left alone. The caller holds the machine's e2e lock, so no other
// run is using what matches. It goes on past errors and returns them all.
func Reap(glob, current string, logf func(string, ...any)) error {
	return reap(glob, current, "/run/netns", machineHostDirs(), logf)
}

// reap is Reap with the machine's directories (named network namespaces,
// containerd's and the CNI's state) as parameters, so its test does not
// touch the machine's.
func reap(glob, current, netnsDir string, host hostDirs, logf func(string, ...any)) error {
	dirs, err := filepath.Glob(glob)
	if err != nil {
		return fmt.Errorf("listing earlier runs %s: %w", glob, err)
	}
	var stale []string
	for _, d := range dirs {
		if d != current {
			stale = append(stale, d)
		}
	}
	var errs []error
	if killed := killNaming(stale); len(killed) > 0 {
		logf("reap: killed %d processes of earlier runs", len(killed))
		// SIGKILL takes effect when each is next scheduled; until they
		// have exited, their cgroups and mounts are busy and the reap
		// below would leave them (a real kill -9 left 6 of 8 containers).
		if left := waitExited(killed, time.Now().Add(30*time.Second)); len(left) > 0 {
			logf("reap: %d killed processes still running after 30s: %v", len(left), left)
		}
	}
	// Runs whose directories are gone can still have left state in the
	// machine's directories: this looks whatever glob matches.
	if n, err := reapHost(host, glob, current); err != nil {
		errs = append(errs, err)
	} else if n > 0 {
		logf("reap: removed runc state, shim sockets, cgroups and CNI cache of %d containers of earlier runs", n)
	}
	if len(stale) == 0 {
		return errors.Join(errs...)
	}
	for _, d := range stale {
		if err := unmountUnder(d); err != nil {
			errs = append(errs, err)
		}
	}
	if n, err := removeEmptyNetns(netnsDir, "cni-"); err != nil {
		errs = append(errs, err)
	} else if n > 0 {
		logf("reap: removed %d network namespaces no process is in", n)
	}
	var cleaned []string
	for _, d := range stale {
		removed, err := removeAllBut(d, "logs", "pod-logs")
		if err != nil {
			errs = append(errs, err)
		}
		if removed {
			cleaned = append(cleaned, d)
		}
	}
	if len(cleaned) > 0 {
		logf("reap: cleaned %d earlier runs (their logs kept): %s", len(cleaned), strings.Join(cleaned, " "))
	}
	return errors.Join(errs...)
}

// killNaming SIGKILLs every process whose command line names one of dirs,
// and first the children of those that are containerd shims (the
// containers, whose command lines name nothing of ours). It returns the
// ones it killed.
func killNaming(dirs []string) []int {
	self := os.Getpid()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var pids []int
	var shims []int
	for _, f := range procs {
		var pid int
		if _, err := fmt.Sscanf(f, "/proc/%d/cmdline", &pid); err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		cmdline := strings.ReplaceAll(string(b), "\x00", " ")
		for _, d := range dirs {
			if strings.Contains(cmdline, d+"/") || strings.HasSuffix(strings.TrimSpace(cmdline), d) {
				pids = append(pids, pid)
				if strings.Contains(cmdline, "containerd-shim") {
					shims = append(shims, pid)
				}
				break
			}
		}
	}
	var killed []int
	for _, s := range shims {
		for _, kid := range children(s) {
			if syscall.Kill(kid, syscall.SIGKILL) == nil {
				killed = append(killed, kid)
			}
		}
	}
	for _, p := range pids {
		if syscall.Kill(p, syscall.SIGKILL) == nil {
			killed = append(killed, p)
		}
	}
	return killed
}

// waitExited waits until none of pids runs (a zombie has exited: its
// cgroup and mounts are free) or the deadline passes, and returns those
// still running then. Exits of processes that are not our children cannot
// be waited for, so /proc is looked at every few milliseconds.
func waitExited(pids []int, deadline time.Time) []int {
	for {
		left := slices.DeleteFunc(slices.Clone(pids), func(p int) bool { return !alive(p) })
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(20 * time.Millisecond)
		pids = left
	}
}

// alive reports whether pid runs (a zombie waiting for its reaper does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// children lists a process's direct children.
func children(pid int) []int {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	var out []int
	for _, f := range strings.Fields(string(data)) {
		var kid int
		if _, err := fmt.Sscan(f, &kid); err == nil {
			out = append(out, kid)
		}
	}
	return out
}

// unmountUnder lazily unmounts every mount point under dir, deepest first.
func unmountUnder(dir string) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			mounts = append(mounts, f[4])
		}
	}
	var errs []error
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := syscall.Unmount(mounts[i], syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", mounts[i], err))
		}
	}
	return errors.Join(errs...)
}

// removeEmptyNetns removes the network namespaces in dir whose name starts
// with prefix (the CNI's, made by containerd's CRI) that no process is in:
// what a killed run's sandboxes leave. A namespace some process is still in
// belongs to a running pod and is kept.
func removeEmptyNetns(dir, prefix string) (int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	inUse := map[uint64]bool{}
	nsLinks, _ := filepath.Glob("/proc/[0-9]*/ns/net")
	for _, l := range nsLinks {
		var st syscall.Stat_t
		if syscall.Stat(l, &st) == nil {
			inUse[st.Ino] = true
		}
	}
	n := 0
	var errs []error
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil || inUse[st.Ino] {
			continue
		}
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
			continue
		}
		if err := os.Remove(p); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// removeAllBut removes everything in dir except the entries named keep; it
// says whether there was anything to remove.
func removeAllBut(dir string, keep ...string) (bool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	removed := false
	var errs []error
	for _, e := range entries {
		if slices.Contains(keep, e.Name()) {
			continue
		}
		removed = true
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}
