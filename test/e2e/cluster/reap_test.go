package cluster

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func TestKillNamingKillsOnlyTheRunsProcesses(t *testing.T) {
	base := t.TempDir()
	stale, other := filepath.Join(base, "ae2e-1"), filepath.Join(base, "ae2e-10")
	start := func(arg string) *exec.Cmd {
		// $0 of the shell is arg: it shows in the command line as a
		// component's --data-dir would. The trailing command keeps the
		// shell from exec'ing sleep in its place.
		cmd := exec.Command("sh", "-c", "sleep 600; :", arg)
		if err := cmd.Start(); err != nil {
			t.Skipf("cannot start sh: %v", err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	victim, bystander := start(stale+"/etcd"), start(other+"/etcd")

	if killed := killNaming([]string{stale}); !slices.Equal(killed, []int{victim.Process.Pid}) {
		t.Fatalf("killNaming killed %v, want only the stale run's process %d", killed, victim.Process.Pid)
	}
	err := victim.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("the stale run's process ended with %v, want SIGKILL", err)
	}
	if err := bystander.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("a process of %s (not the stale run's, only a longer name) was killed: %v", other, err)
	}
}

func TestRemoveAllButKeepsTheLogs(t *testing.T) {
	tests := map[string]struct {
		entries     []string
		wantRemoved bool
		wantLeft    []string
	}{
		"a killed run":       {entries: []string{"logs", "pod-logs", "containerd", "etcd"}, wantRemoved: true, wantLeft: []string{"logs", "pod-logs"}},
		"already cleaned":    {entries: []string{"logs", "pod-logs"}, wantRemoved: false, wantLeft: []string{"logs", "pod-logs"}},
		"killed before logs": {entries: []string{"aerostat.oci.tar"}, wantRemoved: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for _, e := range tc.entries {
				if err := os.MkdirAll(filepath.Join(dir, e, "x"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			removed, err := removeAllBut(dir, "logs", "pod-logs")
			if err != nil {
				t.Fatal(err)
			}
			if removed != tc.wantRemoved {
				t.Errorf("removed = %v, want %v", removed, tc.wantRemoved)
			}
			left, _ := os.ReadDir(dir)
			var names []string
			for _, e := range left {
				names = append(names, e.Name())
			}
			if !slices.Equal(names, tc.wantLeft) {
				t.Errorf("left %v, want %v", names, tc.wantLeft)
			}
		})
	}
}

// TestReapCleansOnlyEarlierRuns is what a kill -9 of the e2e leaves, in
// small: an earlier run's component and shim (with a container under it,
// whose command line names nothing of ours), a mount in its directory, a
// CNI network namespace no process is in; and the current run's component
// and files. Reap takes the earlier run's and nothing of the current one.
func TestReapCleansOnlyEarlierRuns(t *testing.T) {
	base := t.TempDir()
	stale, current := filepath.Join(base, "ae2e-1"), filepath.Join(base, "ae2e-2")
	for _, d := range []string{stale, current} {
		for _, sub := range []string{"logs", "pod-logs", "containerd/state"} {
			if err := os.MkdirAll(filepath.Join(d, sub), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Each blocks reading its stdin, which the test holds open: a killed
	// one leaves no child behind.
	start := func(script, arg0 string) (*exec.Cmd, io.Reader) {
		cmd := exec.Command("sh", "-c", script, arg0)
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Skipf("cannot start sh: %v", err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); _ = in.Close() })
		return cmd, out
	}
	component, _ := start("read x", stale+"/etcd")
	mine, _ := start("read x", current+"/etcd")
	// The shim's child is its container (runc's init): its command line
	// names nothing of ours. The shim outlives it, as containerd's does.
	shim, out := start("sleep 600 & echo $!; wait; read x", "containerd-shim-runc-v2 -address "+stale+"/containerd/containerd.sock")
	var container int
	if _, err := fmt.Fscan(out, &container); err != nil {
		t.Fatalf("reading the fake container's pid: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Kill(container, syscall.SIGKILL) })
	mount := filepath.Join(stale, "containerd", "state", "rootfs")
	if err := os.MkdirAll(mount, 0o755); err != nil {
		t.Fatal(err)
	}
	mounted := syscall.Mount("tmpfs", mount, "tmpfs", 0, "size=1m") == nil
	if mounted {
		t.Cleanup(func() { _ = syscall.Unmount(mount, syscall.MNT_DETACH) })
	} else {
		t.Logf("cannot mount a tmpfs here (not root?): the unmount is not exercised")
	}
	netns := t.TempDir()
	for _, n := range []string{"cni-1234", "other-5678"} {
		if err := os.WriteFile(filepath.Join(netns, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	var logged []string
	host := hostDirs{RuncRoot: t.TempDir(), ShimSockets: t.TempDir(), CNICache: t.TempDir()}
	err := reap(filepath.Join(base, "ae2e-*"), current, netns, host, func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) })
	if err != nil {
		t.Fatalf("reap: %v", err)
	}
	for name, c := range map[string]*exec.Cmd{"component": component, "shim": shim} {
		var exit *exec.ExitError
		if err := c.Wait(); !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("the earlier run's %s ended with %v, want SIGKILL", name, err)
		}
	}
	// reap returns once what it killed has exited: the earlier run's
	// cgroups and mounts are free for the rest of the reap.
	if alive(container) {
		t.Errorf("reap returned while the container under the earlier run's shim (pid %d) still ran", container)
	}
	if err := mine.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the current run's component was killed: %v", err)
	}
	if mounted {
		if info, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(info), " "+mount+" ") {
			t.Errorf("%s is still mounted", mount)
		}
	}
	for dir, want := range map[string][]string{stale: {"logs", "pod-logs"}, current: {"containerd", "logs", "pod-logs"}, netns: {"other-5678"}} {
		entries, _ := os.ReadDir(dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if !slices.Equal(names, want) {
			t.Errorf("%s holds %v, want %v", dir, names, want)
		}
	}
	if !slices.ContainsFunc(logged, func(l string) bool {
		return strings.Contains(l, "cleaned 1 earlier runs") && strings.Contains(l, stale)
	}) {
		t.Errorf("reap logged %q, want the cleaned run named", logged)
	}
}
