package chart_test

import (
	"path"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// nodeSecrets are host files a compromised agent must not be able to write:
// any of them is node root.
var nodeSecrets = []string{
	"/etc/passwd", "/etc/shadow", "/etc/sudoers", "/etc/kubernetes/pki/ca.key",
	"/etc/kubernetes/kubelet.conf", "/root/.ssh/authorized_keys", "/etc/hosts.bak",
	"/etc/cron.d/x", "/usr/bin/kubelet",
}

// hostWrites returns the host paths the agent's container can write and
// whether each is a single file (hostPath type File).
func hostWrites(t *testing.T, pod corev1.PodSpec) map[string]bool {
	t.Helper()
	vols := map[string]*corev1.HostPathVolumeSource{}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			vols[v.Name] = v.HostPath
		}
	}
	out := map[string]bool{}
	for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		for _, m := range c.VolumeMounts {
			hp, ok := vols[m.Name]
			if !ok || m.ReadOnly {
				continue
			}
			p := path.Join(hp.Path, m.SubPath)
			out[p] = hp.Type != nil && *hp.Type == corev1.HostPathFile && m.SubPath == ""
		}
	}
	return out
}

// reachable reports whether a write to host file f is possible through writes.
func reachable(writes map[string]bool, f string) bool {
	for p, file := range writes {
		if f == p || (!file && strings.HasPrefix(f, strings.TrimSuffix(p, "/")+"/")) {
			return true
		}
	}
	return false
}

// TestAgentHostPaths renders the agent as a node would receive it and tries
// to reach /etc/passwd and the other node secrets through its mounts: none
// is reachable, while the hosts file is, as one file (default) or inside a
// directory of Aerostat's own (agent.hostsDirectory).
func TestAgentHostPaths(t *testing.T) {
	ch := loadChart(t)
	tests := map[string]struct {
		values    string
		wantHosts string // host path that is the hosts file
		wantWrite map[string]bool
	}{
		"default: the one file": {``, "/etc/hosts",
			map[string]bool{"/etc/hosts": true, "/var/lib/aerostat": false}},
		"custom etc dir": {`agent: {hostEtcDir: /host-etc/, hostsFileName: hosts.aerostat}`, "/host-etc/hosts.aerostat",
			map[string]bool{"/host-etc/hosts.aerostat": true, "/var/lib/aerostat": false}},
		"dedicated directory": {`agent: {hostsDirectory: /etc/aerostat}`, "/etc/aerostat/hosts",
			map[string]bool{"/etc/aerostat": false}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := mustRender(t, ch, tc.values)
			var ds appsv1.DaemonSet
			typed(t, r, "DaemonSet", "aerostat-agent", &ds)
			writes := hostWrites(t, ds.Spec.Template.Spec)
			if len(writes) != len(tc.wantWrite) {
				t.Errorf("agent can write host paths %v, want %v", writes, tc.wantWrite)
			}
			for p, file := range tc.wantWrite {
				if got, ok := writes[p]; !ok || got != file {
					t.Errorf("host path %s: writable=%v single file=%v; want single file=%v", p, ok, got, file)
				}
			}
			for _, f := range nodeSecrets {
				if reachable(writes, f) {
					t.Errorf("agent can write the host's %s through its mounts %v", f, writes)
				}
			}
			if !reachable(writes, tc.wantHosts) {
				t.Errorf("agent cannot write its hosts file %s through %v", tc.wantHosts, writes)
			}
		})
	}
	// A directory that holds other files is refused outright.
	for _, dir := range []string{"/etc", "/etc/", "/", "/var/lib"} {
		if _, err := renderChart(ch, parseValues(t, "agent: {hostsDirectory: "+dir+"}")); err == nil || !strings.Contains(err.Error(), "hostsDirectory") {
			t.Errorf("hostsDirectory=%s: err = %v, want a refusal naming hostsDirectory", dir, err)
		}
	}
}

// failedChecks returns the IDs of the Pod Security Standards checks of
// level (and the levels below it) that the pod fails.
func failedChecks(pod corev1.PodSpec, meta corev1.PodTemplateSpec, level api.Level) []string {
	var failed []string
	for _, c := range policy.DefaultChecks() {
		if c.Level == api.LevelRestricted && level != api.LevelRestricted {
			continue
		}
		// The newest version of each check is what "latest" enforces.
		v := c.Versions[len(c.Versions)-1]
		if res := v.CheckPod(&meta.ObjectMeta, &pod); !res.Allowed {
			failed = append(failed, string(c.ID)+" ("+res.ForbiddenReason+": "+res.ForbiddenDetail+")")
		}
	}
	slices.Sort(failed)
	return failed
}

func checkIDs(failed []string) []string {
	out := make([]string, len(failed))
	for i, f := range failed {
		out[i], _, _ = strings.Cut(f, " ")
	}
	return out
}

// TestPodSecurity evaluates every rendered pod with the Pod Security
// Standards' own checks (k8s.io/pod-security-admission): the controller
// and the store meet "restricted"; the agent meets every "baseline" check
// but hostPathVolumes (the one file it writes) and every "restricted" check
// but those and running as uid 0 (the file is root's, mode 0644). Any new
// deviation fails here.
func TestPodSecurity(t *testing.T) {
	ch := loadChart(t)
	type want struct{ baseline, restricted []string }
	agent := want{
		baseline:   []string{"hostPathVolumes"},
		restricted: []string{"hostPathVolumes", "restrictedVolumes", "runAsNonRoot", "runAsUser"},
	}
	for name, values := range variants {
		t.Run(name, func(t *testing.T) {
			r := mustRender(t, ch, values)
			pods := map[string]corev1.PodTemplateSpec{}
			for _, kind := range []string{"Deployment", "DaemonSet", "StatefulSet"} {
				for _, u := range r.ofKind(kind) {
					var d appsv1.Deployment // the pod template sits at the same path in all three
					typed(t, r, kind, u.GetName(), &d)
					pods[kind+"/"+u.GetName()] = d.Spec.Template
				}
			}
			if len(pods) == 0 {
				t.Fatal("no pods rendered")
			}
			for name, tmpl := range pods {
				w := want{}
				if strings.HasPrefix(name, "DaemonSet/") {
					w = agent
				}
				if got := checkIDs(failedChecks(tmpl.Spec, tmpl, api.LevelBaseline)); !slices.Equal(got, w.baseline) {
					t.Errorf("%s fails baseline checks %v, want %v", name, failedChecks(tmpl.Spec, tmpl, api.LevelBaseline), w.baseline)
				}
				if got := checkIDs(failedChecks(tmpl.Spec, tmpl, api.LevelRestricted)); !slices.Equal(got, w.restricted) {
					t.Errorf("%s fails restricted checks %v, want %v", name, failedChecks(tmpl.Spec, tmpl, api.LevelRestricted), w.restricted)
				}
			}
		})
	}
}
