package cluster

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// hostDirs are the machine's directories where containerd, runc and the CNI
// plugins keep state outside a run's own directory, whatever its config
// says: a run killed before its teardown leaves entries there that nothing
// removes (runc's per-container state, the shims' sockets, libcni's result
// cache) and the containers' empty cgroups.
type hostDirs struct {
	// RuncRoot holds runc's state, one directory per containerd namespace
	// (containerd's runc v2 shim default: /run/containerd/runc).
	RuncRoot string
	// ShimSockets holds the shims' sockets (/run/containerd/s).
	ShimSockets string
	// CNICache is libcni's result cache (/var/lib/cni/results).
	CNICache string
}

func machineHostDirs() hostDirs {
	return hostDirs{RuncRoot: "/run/containerd/runc", ShimSockets: "/run/containerd/s", CNICache: "/var/lib/cni/results"}
}

// containerdSocket is where a run's containerd listens, relative to the
// run's directory; the shims' socket names are derived from it.
var containerdSocket = filepath.Join("containerd", "containerd.sock")

// runOf returns the run directory (matching glob, not current) that path
// lies in, or "" when path belongs to the current run or to no run of ours:
// that is the marker telling an earlier run's leftover from anyone else's.
func runOf(path, glob, current string) string {
	for p := filepath.Clean(path); p != "/" && p != "."; p = filepath.Dir(p) {
		if ok, _ := filepath.Match(glob, p); ok {
			if p == current {
				return ""
			}
			return p
		}
	}
	return ""
}

// reapHost removes what earlier runs' containers left in the machine's
// directories (see hostDirs). Only entries whose own record names an
// earlier run's directory are touched: runc's state.json names the
// container's rootfs under that run's containerd state, libcni's cache
// names the run's IPAM directory. It runs after the earlier runs'
// processes are killed and returns how many containers it cleaned.
func reapHost(h hostDirs, glob, current string) (int, error) {
	var errs []error
	n := 0
	nsDirs, _ := filepath.Glob(filepath.Join(h.RuncRoot, "*"))
	for _, nsDir := range nsDirs {
		states, _ := filepath.Glob(filepath.Join(nsDir, "*", "state.json"))
		for _, f := range states {
			var st struct {
				ID     string `json:"id"`
				Config struct {
					Rootfs string `json:"rootfs"`
				} `json:"config"`
				CgroupPaths map[string]string `json:"cgroup_paths"`
			}
			data, err := os.ReadFile(f)
			if err != nil || json.Unmarshal(data, &st) != nil || st.ID == "" {
				continue
			}
			run := runOf(st.Config.Rootfs, glob, current)
			if run == "" {
				continue
			}
			// A cgroup is removed with rmdir once no process is in it. A
			// process killed a moment ago may not have exited yet: its
			// container is left whole for the next run to take.
			if slices.ContainsFunc(slices.Collect(maps.Values(st.CgroupPaths)), inUse) {
				continue
			}
			for _, cg := range st.CgroupPaths {
				if err := os.Remove(cg); err != nil && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, fmt.Errorf("removing cgroup %s of %s: %w", cg, st.ID, err))
				}
			}
			// containerd's runtime v2 names a shim's socket by the hash of
			// its address, namespace and sandbox id (a pod's other
			// containers share the sandbox's shim: no socket of theirs).
			sum := sha256.Sum256([]byte(filepath.Join(run, containerdSocket, filepath.Base(nsDir), st.ID)))
			if err := os.Remove(filepath.Join(h.ShimSockets, fmt.Sprintf("%x", sum))); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
			if err := os.RemoveAll(filepath.Dir(f)); err != nil {
				errs = append(errs, err)
			}
			n++
		}
	}
	if err := reapCNICache(h.CNICache, glob, current); err != nil {
		errs = append(errs, err)
	}
	return n, errors.Join(errs...)
}

// reapCNICache removes libcni's cached results of earlier runs' sandboxes:
// those whose network config puts its IPAM data in an earlier run's
// directory, and the same sandboxes' loopback entries.
func reapCNICache(dir, glob, current string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	type cached struct {
		ContainerID string `json:"containerId"`
		Config      []byte `json:"config"`
	}
	byFile := map[string]cached{}
	stale := map[string]bool{}
	for _, e := range entries {
		var c cached
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil || json.Unmarshal(data, &c) != nil || c.ContainerID == "" {
			continue
		}
		byFile[e.Name()] = c
		var conf struct {
			Plugins []struct {
				IPAM struct {
					DataDir string `json:"dataDir"`
				} `json:"ipam"`
			} `json:"plugins"`
		}
		if json.Unmarshal(c.Config, &conf) != nil {
			continue
		}
		for _, p := range conf.Plugins {
			if p.IPAM.DataDir != "" && runOf(p.IPAM.DataDir, glob, current) != "" {
				stale[c.ContainerID] = true
			}
		}
	}
	var errs []error
	for name, c := range byFile {
		// libcni names each entry <network>-<container id>-<interface>.
		if stale[c.ContainerID] && strings.Contains(name, "-"+c.ContainerID+"-") {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// inUse reports whether a process is in the cgroup at path.
func inUse(path string) bool {
	procs, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
	return err == nil && len(strings.TrimSpace(string(procs))) > 0
}
