package cluster

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

	if n := killNaming([]string{stale}); n != 1 {
		t.Fatalf("killNaming killed %d processes, want 1", n)
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
