package cluster

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestReapHostTakesOnlyEarlierRunsState is what a kill -9 of the e2e left
// in the machine's directories (found after a real one): runc's state of
// each container, the sandboxes' shim sockets, their empty cgroups and
// libcni's cached results. Beside them sit the same of the current run, of
// a container nobody of ours made, and one of an earlier run still holding
// a process. Only the earlier run's idle containers go, found by the run
// directory their own records name.
func TestReapHostTakesOnlyEarlierRunsState(t *testing.T) {
	base := t.TempDir()
	glob := filepath.Join(base, "ae2e-*")
	stale, current := filepath.Join(base, "ae2e-1"), filepath.Join(base, "ae2e-2")
	// The earlier run's directory is gone (an earlier reap or a user took
	// it): its leftovers must still be recognised.
	if err := os.MkdirAll(current, 0o755); err != nil {
		t.Fatal(err)
	}
	h := hostDirs{RuncRoot: t.TempDir(), ShimSockets: t.TempDir(), CNICache: t.TempDir()}
	cgroups := t.TempDir()

	type container struct{ id, run string }
	containers := map[string]container{
		"stale":   {"aaa1", stale},
		"stale2":  {"aaa2", stale},
		"busy":    {"aaa3", stale},
		"current": {"bbb1", current},
		"foreign": {"ccc1", "/var/lib/someone-else"},
	}
	socketOf := func(c container) string {
		sum := sha256.Sum256([]byte(filepath.Join(c.run, containerdSocket, "k8s.io", c.id)))
		return filepath.Join(h.ShimSockets, fmt.Sprintf("%x", sum))
	}
	write := func(path string, v any) {
		t.Helper()
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for name, c := range containers {
		cg := filepath.Join(cgroups, "memory", "k8s.io", c.id)
		if err := os.MkdirAll(cg, 0o755); err != nil {
			t.Fatal(err)
		}
		if name == "busy" { // a process not yet gone after its SIGKILL
			if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte("4242\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write(filepath.Join(h.RuncRoot, "k8s.io", c.id, "state.json"), map[string]any{
			"id":           c.id,
			"config":       map[string]any{"rootfs": filepath.Join(c.run, "containerd", "state", "io.containerd.runtime.v2.task", "k8s.io", c.id, "rootfs")},
			"cgroup_paths": map[string]string{"memory": cg},
		})
		if err := os.WriteFile(socketOf(c), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		conf, _ := json.Marshal(map[string]any{"name": "aerostat-e2e", "plugins": []any{
			map[string]any{"type": "bridge", "ipam": map[string]any{"type": "host-local", "dataDir": filepath.Join(c.run, "cni", "ipam")}},
			map[string]any{"type": "loopback"},
		}})
		write(filepath.Join(h.CNICache, "aerostat-e2e-"+c.id+"-eth0"), map[string]any{"kind": "cniCacheV1", "containerId": c.id, "config": conf})
		lo, _ := json.Marshal(map[string]any{"type": "loopback", "name": "cni-loopback"})
		write(filepath.Join(h.CNICache, "cni-loopback-"+c.id+"-lo"), map[string]any{"kind": "cniCacheV1", "containerId": c.id, "config": lo})
	}

	n, err := reapHost(h, glob, current)
	if err != nil {
		t.Fatalf("reapHost: %v", err)
	}
	if n != 2 {
		t.Errorf("reapHost cleaned %d containers, want 2 (the earlier run's idle ones)", n)
	}
	for name, c := range containers {
		gone := name == "stale" || name == "stale2"
		for what, path := range map[string]string{
			"runc state":   filepath.Join(h.RuncRoot, "k8s.io", c.id),
			"shim socket":  socketOf(c),
			"cgroup":       filepath.Join(cgroups, "memory", "k8s.io", c.id),
			"CNI result":   filepath.Join(h.CNICache, "aerostat-e2e-"+c.id+"-eth0"),
			"CNI loopback": filepath.Join(h.CNICache, "cni-loopback-"+c.id+"-lo"),
		} {
			_, err := os.Stat(path)
			switch {
			case gone && err == nil:
				t.Errorf("the %s container's %s is still there", name, what)
			case !gone && err != nil && !(name == "busy" && (what == "CNI result" || what == "CNI loopback")):
				// The busy container's network is torn down already
				// (its cache entries go by the run they name); the rest
				// of it waits for its process to exit.
				t.Errorf("the %s container's %s was removed: %v", name, what, err)
			}
		}
	}
	if entries, _ := os.ReadDir(h.RuncRoot); !slices.ContainsFunc(entries, func(e os.DirEntry) bool { return e.Name() == "k8s.io" }) {
		t.Errorf("the namespace directory %s/k8s.io was removed", h.RuncRoot)
	}
}
