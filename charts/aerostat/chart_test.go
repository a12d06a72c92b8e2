// Package chart_test renders the aerostat Helm chart with the Helm SDK (the
// helm CLI is not needed) and checks what the cluster would receive.
package chart_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

const (
	chartDir  = "."
	repoRoot  = "../.."
	release   = "aerostat"
	namespace = "aerostat-system"
)

// variants are the value sets every render test and the envtest dry run use.
var variants = map[string]string{
	"defaults": ``,
	"existing secret": `
store: {enabled: false}
mongodb: {existingSecret: aerostat-mongodb}
`,
	"service monitor": `
metrics:
  serviceMonitor: {enabled: true, labels: {release: prometheus}}
`,
	"irsa": `
controller:
  serviceAccount:
    roleArn: arn:aws:iam::123456789012:role/aerostat-controller
    annotations: {team: naming}
aws: {region: eu-west-1}
`,
	"agent reads mongodb": `
store: {enabled: false}
mongodb: {existingSecret: aerostat-mongodb}
agent:
  source: mongodb
  mongodb: {existingSecret: aerostat-mongodb-readonly}
`,
	"single replica, no agent": `
controller: {replicas: 1, leaderElection: false}
agent: {enabled: false}
`,
}

type rendered struct {
	objects []*unstructured.Unstructured
	notes   string
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("loading chart: %v", err)
	}
	return ch
}

func parseValues(t *testing.T, s string) chartutil.Values {
	t.Helper()
	v, err := chartutil.ReadValues([]byte(s))
	if err != nil {
		t.Fatalf("values %q: %v", s, err)
	}
	return v
}

// renderChart renders like `helm install` does: defaults coalesced, schema
// checked, templates executed.
func renderChart(ch *chart.Chart, vals chartutil.Values) (rendered, error) {
	opts := chartutil.ReleaseOptions{Name: release, Namespace: namespace, Revision: 1, IsInstall: true}
	rv, err := chartutil.ToRenderValues(ch, vals, opts, chartutil.DefaultCapabilities)
	if err != nil {
		return rendered{}, err
	}
	files, err := engine.Render(ch, rv)
	if err != nil {
		return rendered{}, err
	}
	var r rendered
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if strings.HasSuffix(name, "NOTES.txt") {
			r.notes = files[name]
			continue
		}
		docs := releaseutil.SplitManifests(files[name])
		keys := make([]string, 0, len(docs))
		for k := range docs {
			keys = append(keys, k)
		}
		sort.Sort(releaseutil.BySplitManifestsOrder(keys))
		for _, k := range keys {
			obj := map[string]any{}
			if err := yaml.Unmarshal([]byte(docs[k]), &obj); err != nil {
				return rendered{}, err
			}
			if len(obj) == 0 {
				continue
			}
			r.objects = append(r.objects, &unstructured.Unstructured{Object: obj})
		}
	}
	return r, nil
}

func mustRender(t *testing.T, ch *chart.Chart, valuesYAML string) rendered {
	t.Helper()
	r, err := renderChart(ch, parseValues(t, valuesYAML))
	if err != nil {
		t.Fatalf("rendering: %v", err)
	}
	return r
}

func (r rendered) find(kind, name string) *unstructured.Unstructured {
	for _, o := range r.objects {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func (r rendered) ofKind(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range r.objects {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// typed converts the named object into out, failing when it is missing.
func typed(t *testing.T, r rendered, kind, name string, out any) {
	t.Helper()
	u := r.find(kind, name)
	if u == nil {
		t.Fatalf("no %s %q rendered; have %s", kind, name, r.summary())
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		t.Fatalf("%s %q: %v", kind, name, err)
	}
}

func (r rendered) summary() string {
	var s []string
	for _, o := range r.objects {
		s = append(s, o.GetKind()+"/"+o.GetName())
	}
	return strings.Join(s, ", ")
}

func TestRenderVariants(t *testing.T) {
	ch := loadChart(t)
	for name, values := range variants {
		t.Run(name, func(t *testing.T) {
			r := mustRender(t, ch, values)
			vals := parseValues(t, values)
			checkLabels(t, r)
			checkController(t, r, vals)
			agentOn, _ := vals.PathValue("agent.enabled")
			if agentOn == false {
				if ds := r.ofKind("DaemonSet"); len(ds) != 0 {
					t.Errorf("agent.enabled=false still renders %d DaemonSet(s)", len(ds))
				}
			} else {
				checkAgent(t, r, vals)
			}
			checkRBAC(t, r)
			checkNotes(t, r)
		})
	}
}

func checkLabels(t *testing.T, r rendered) {
	t.Helper()
	for _, o := range r.objects {
		l := o.GetLabels()
		if l["app.kubernetes.io/name"] != "aerostat" || l["app.kubernetes.io/instance"] != release {
			t.Errorf("%s/%s: missing standard labels, have %v", o.GetKind(), o.GetName(), l)
		}
	}
}

func container(t *testing.T, spec corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range spec.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return corev1.Container{}
}

// checkLockedDown holds for every container the chart runs.
func checkLockedDown(t *testing.T, what string, c corev1.Container) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil {
		t.Fatalf("%s: no securityContext", what)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation must be false", what)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("%s: privileged", what)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: root filesystem must be read-only", what)
	}
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("%s: capabilities %+v, want drop [ALL] and nothing added", what, sc.Capabilities)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("%s: want cpu and memory requests and a memory limit, have %+v", what, c.Resources)
	}
}

func checkProbes(t *testing.T, what string, c corev1.Container, port string) {
	t.Helper()
	for probeName, want := range map[string]struct {
		p    *corev1.Probe
		path string
	}{"liveness": {c.LivenessProbe, "/healthz"}, "readiness": {c.ReadinessProbe, "/readyz"}} {
		p := want.p
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s: no HTTP %s probe", what, probeName)
			continue
		}
		if p.HTTPGet.Path != want.path || p.HTTPGet.Port.String() != port {
			t.Errorf("%s: %s probe GET %s on port %s, want %s on %s", what, probeName, p.HTTPGet.Path, p.HTTPGet.Port.String(), want.path, port)
		}
	}
	if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == port }) {
		t.Errorf("%s: probes use port %q, which the container does not declare", what, port)
	}
}

func checkController(t *testing.T, r rendered, vals chartutil.Values) {
	t.Helper()
	var d appsv1.Deployment
	typed(t, r, "Deployment", "aerostat-controller", &d)
	replicas, _ := vals.PathValue("controller.replicas")
	wantReplicas := int32(2)
	if replicas != nil {
		wantReplicas = int32(replicas.(float64))
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != wantReplicas {
		t.Errorf("controller replicas %v, want %d", d.Spec.Replicas, wantReplicas)
	}
	pod := d.Spec.Template.Spec
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("controller pod must run as a non-root uid, have %+v", psc)
	}
	c := container(t, pod, "controller")
	checkLockedDown(t, "controller", c)
	checkProbes(t, "controller", c, "health")
	if c.Args[0] != "controller" {
		t.Errorf("controller args %v: want the controller subcommand first", c.Args)
	}
	wantLE := "--leader-elect=true"
	if wantReplicas == 1 {
		wantLE = "--leader-elect=false"
	}
	for _, arg := range []string{wantLE, "--metrics-bind-address=:8080", "--health-probe-bind-address=:8081", "--feed-bind-address=:8082"} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("controller args %v: missing %s", c.Args, arg)
		}
	}
	// The MongoDB URI comes from the environment (AEROSTAT_SERVER, which
	// --ledger reads after AEROSTAT_LEDGER), never as an argument, and from the Secret when one is given.
	if slices.ContainsFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--server") || strings.HasPrefix(a, "--ledger") }) {
		t.Errorf("controller args %v: the URI must not be an argument", c.Args)
	}
	env := envByName(c.Env)
	secret, _ := vals.PathValue("mongodb.existingSecret")
	switch server := env["AEROSTAT_SERVER"]; {
	case secret != nil:
		if server.ValueFrom == nil || server.ValueFrom.SecretKeyRef == nil || server.ValueFrom.SecretKeyRef.Name != secret || server.ValueFrom.SecretKeyRef.Key != "uri" {
			t.Errorf("AEROSTAT_SERVER %+v, want Secret %v key uri", server, secret)
		}
		if r.find("StatefulSet", "aerostat-store") != nil {
			t.Error("trial store rendered although mongodb.existingSecret is set")
		}
	default:
		if server.Value != "mongodb://aerostat-store.aerostat-system.svc:27017/?tls=true&tlsCAFile=/etc/aerostat/store-tls/ca.crt&tlsCertificateKeyFile=/etc/aerostat/store-tls/client.pem" {
			t.Errorf("AEROSTAT_SERVER %q, want the trial store's Service", server.Value)
		}
		var s appsv1.StatefulSet
		typed(t, r, "StatefulSet", "aerostat-store", &s)
		if *s.Spec.Replicas != 1 || len(s.Spec.VolumeClaimTemplates) != 1 {
			t.Errorf("store: %d replicas, %d PVC templates; want 1 and 1", *s.Spec.Replicas, len(s.Spec.VolumeClaimTemplates))
		}
		checkLockedDown(t, "store", container(t, s.Spec.Template.Spec, "store"))
	}
	if r.find("Service", "aerostat-feed") == nil || r.find("Service", "aerostat-controller-metrics") == nil {
		t.Errorf("want the feed and metrics Services, have %s", r.summary())
	}
	if pdb := r.find("PodDisruptionBudget", "aerostat-controller"); (pdb != nil) != (wantReplicas > 1) {
		t.Errorf("PodDisruptionBudget rendered=%v with %d replicas", pdb != nil, wantReplicas)
	}

	var sa corev1.ServiceAccount
	typed(t, r, "ServiceAccount", "aerostat-controller", &sa)
	roleArn, _ := vals.PathValue("controller.serviceAccount.roleArn")
	if got := sa.Annotations["eks.amazonaws.com/role-arn"]; roleArn != nil && got != roleArn || roleArn == nil && got != "" {
		t.Errorf("IRSA annotation %q, want %v", got, roleArn)
	}
	if d.Spec.Template.Spec.ServiceAccountName != sa.Name {
		t.Errorf("controller runs as %q, want %q", d.Spec.Template.Spec.ServiceAccountName, sa.Name)
	}

	sm, _ := vals.PathValue("metrics.serviceMonitor.enabled")
	if got := len(r.ofKind("ServiceMonitor")); (sm == true) != (got > 0) {
		t.Errorf("%d ServiceMonitors with metrics.serviceMonitor.enabled=%v", got, sm)
	}
	for _, m := range r.ofKind("ServiceMonitor") {
		if m.GetLabels()["release"] != "prometheus" {
			t.Errorf("ServiceMonitor %s: extra labels missing: %v", m.GetName(), m.GetLabels())
		}
	}
}

func envByName(env []corev1.EnvVar) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range env {
		m[e.Name] = e
	}
	return m
}

func checkAgent(t *testing.T, r rendered, vals chartutil.Values) {
	t.Helper()
	var ds appsv1.DaemonSet
	typed(t, r, "DaemonSet", "aerostat-agent", &ds)
	pod := ds.Spec.Template.Spec
	// Every node pulls the agent's own image, not the full one.
	if img := container(t, pod, "agent").Image; !strings.Contains(img, "/aerostat-agent:") && !strings.Contains(img, "/aerostat-agent@") {
		t.Errorf("agent image %q: want the agentImage (aerostat-agent), not the full image", img)
	}
	if !slices.ContainsFunc(pod.Tolerations, func(t corev1.Toleration) bool {
		return t.Operator == corev1.TolerationOpExists && t.Key == "" && t.Effect == ""
	}) {
		t.Errorf("agent tolerations %+v: want one that tolerates every taint", pod.Tolerations)
	}
	if pod.HostNetwork {
		t.Error("agent uses the host network; it needs no more than the pod network")
	}
	if pod.HostPID || pod.HostIPC {
		t.Error("agent must not share the host's PID or IPC namespace")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("agent must not mount a ServiceAccount token")
	}
	// uid 0 only for the root-owned /etc/hosts; checkLockedDown covers the rest.
	if psc := pod.SecurityContext; psc == nil || psc.RunAsUser == nil || *psc.RunAsUser != 0 {
		t.Errorf("agent pod securityContext %+v: want runAsUser 0", psc)
	}
	c := container(t, pod, "agent")
	checkLockedDown(t, "agent", c)
	checkProbes(t, "agent", c, "http")

	// Which host paths are mounted, and how, is TestAgentHostPaths's.
	for _, arg := range []string{"--hosts-file=/host/etc/hosts", "--listen=:9101"} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("agent args %v: missing %s", c.Args, arg)
		}
	}
	if slices.ContainsFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--server") || strings.HasPrefix(a, "--ledger") }) {
		t.Errorf("agent args %v: a database URI must not be an argument", c.Args)
	}

	env := envByName(c.Env)
	source, _ := vals.PathValue("agent.source")
	if source == "mongodb" {
		ref := env["AEROSTAT_SERVER"].ValueFrom
		if ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "aerostat-mongodb-readonly" {
			t.Errorf("agent in mongodb mode: AEROSTAT_SERVER %+v, want the read-only Secret", env["AEROSTAT_SERVER"])
		}
		return
	}
	if !slices.Contains(c.Args, "--feed=https://aerostat-feed.aerostat-system.svc:8082") {
		t.Errorf("agent args %v: want the controller's feed by default", c.Args)
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			t.Errorf("agent in feed mode reads Secret %q: nodes must hold no database credentials", e.ValueFrom.SecretKeyRef.Name)
		}
	}
}

// checkRBAC keeps the controller least-privileged: it reads NamingServices,
// writes only their status, records Events and holds its Lease in its own
// namespace.
func checkRBAC(t *testing.T, r rendered) {
	t.Helper()
	var cr rbacv1.ClusterRole
	typed(t, r, "ClusterRole", "aerostat-controller", &cr)
	var role rbacv1.Role
	typed(t, r, "Role", "aerostat-controller", &role)
	if role.Namespace != namespace {
		t.Errorf("Role namespace %q, want %q", role.Namespace, namespace)
	}
	cluster := flatten(cr.Rules)
	for rule := range cluster {
		if rule.verb == "*" || rule.resource == "*" || rule.group == "*" {
			t.Errorf("ClusterRole has a wildcard: %+v", rule)
		}
		if rule.resource == "leases" {
			t.Errorf("ClusterRole grants Leases in every namespace: %+v", rule)
		}
		if rule.resource == "secrets" {
			t.Errorf("ClusterRole grants Secrets: %+v", rule)
		}
	}
	want := map[string][]string{
		"aerostat.io/namingservices":        {"get", "list", "watch"},
		"aerostat.io/namingservices/status": {"get", "patch", "update"},
		"/events":                           {"create", "patch"},
	}
	for res, verbs := range want {
		var got []string
		for rule := range cluster {
			if rule.group+"/"+rule.resource == res {
				got = append(got, rule.verb)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, verbs) {
			t.Errorf("ClusterRole verbs on %s: %v, want %v", res, got, verbs)
		}
	}
	for rule := range flatten(role.Rules) {
		if rule.group != "coordination.k8s.io" || rule.resource != "leases" {
			t.Errorf("namespaced Role grants more than Leases: %+v", rule)
		}
	}
	var crb rbacv1.ClusterRoleBinding
	typed(t, r, "ClusterRoleBinding", "aerostat-controller", &crb)
	if crb.RoleRef.Name != cr.Name || len(crb.Subjects) != 1 || crb.Subjects[0].Name != "aerostat-controller" || crb.Subjects[0].Namespace != namespace {
		t.Errorf("ClusterRoleBinding %+v does not bind the controller's ServiceAccount", crb)
	}
}

type grant struct{ group, resource, verb string }

func flatten(rules []rbacv1.PolicyRule) map[grant]bool {
	m := map[grant]bool{}
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					m[grant{g, res, v}] = true
				}
			}
		}
	}
	return m
}

func checkNotes(t *testing.T, r rendered) {
	t.Helper()
	for _, want := range []string{"kubectl get namingservices", "kubectl aerostat get names"} {
		if !strings.Contains(r.notes, want) {
			t.Errorf("NOTES.txt does not tell the user to run %q", want)
		}
	}
}

// TestSyncedWithConfig fails when the chart's copies of what controller-gen
// generates are stale or were edited by hand.
func TestSyncedWithConfig(t *testing.T) {
	const fix = "charts/aerostat is out of sync with config/: run `make manifests` (or hack/sync-chart.sh)"
	gen, _ := filepath.Glob(filepath.Join(repoRoot, "config/crd/bases/*.yaml"))
	copied, _ := filepath.Glob("crds/*.yaml")
	if len(gen) == 0 {
		t.Fatal("no CRDs in config/crd/bases")
	}
	base := func(paths []string) []string {
		out := make([]string, len(paths))
		for i, p := range paths {
			out[i] = filepath.Base(p)
		}
		return out
	}
	if !slices.Equal(base(gen), base(copied)) {
		t.Fatalf("%s\nconfig/crd/bases: %v\ncharts/aerostat/crds: %v", fix, base(gen), base(copied))
	}
	for i := range gen {
		a, _ := os.ReadFile(gen[i])
		b, _ := os.ReadFile(copied[i])
		if !bytes.Equal(a, b) {
			t.Errorf("%s: crds/%s differs from config/crd/bases", fix, filepath.Base(gen[i]))
		}
	}

	want := generatedRules(t)
	tpl, err := os.ReadFile("templates/_rbac_rules.tpl")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(tpl)), "\n")
	if len(lines) < 3 || !strings.Contains(lines[0], "DO NOT EDIT") {
		t.Fatalf("%s: templates/_rbac_rules.tpl lacks its generated header", fix)
	}
	var got []rbacv1.PolicyRule
	if err := yaml.UnmarshalStrict([]byte(strings.Join(lines[2:len(lines)-1], "\n")), &got); err != nil {
		t.Fatalf("%s: templates/_rbac_rules.tpl: %v", fix, err)
	}
	if !equalRules(got, want) {
		t.Errorf("%s: templates/_rbac_rules.tpl rules\n%+v\nconfig/rbac/role.yaml rules\n%+v", fix, got, want)
	}

	// What the chart grants, split between ClusterRole and Role, is
	// exactly what controller-gen generated: nothing lost, nothing added.
	r := mustRender(t, loadChart(t), "")
	var cr rbacv1.ClusterRole
	var role rbacv1.Role
	typed(t, r, "ClusterRole", "aerostat-controller", &cr)
	typed(t, r, "Role", "aerostat-controller", &role)
	granted := flatten(append(cr.Rules, role.Rules...))
	generated := flatten(want)
	for g := range generated {
		if !granted[g] {
			t.Errorf("chart does not grant %+v from config/rbac/role.yaml", g)
		}
	}
	for g := range granted {
		if !generated[g] {
			t.Errorf("chart grants %+v, which config/rbac/role.yaml does not", g)
		}
	}
}

func generatedRules(t *testing.T) []rbacv1.PolicyRule {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "config/rbac/role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range releaseutil.SplitManifests(string(data)) {
		var cr rbacv1.ClusterRole
		if err := yaml.Unmarshal([]byte(doc), &cr); err != nil {
			t.Fatalf("config/rbac/role.yaml: %v", err)
		}
		if cr.Kind == "ClusterRole" {
			return cr.Rules
		}
	}
	t.Fatal("config/rbac/role.yaml has no ClusterRole")
	return nil
}

func equalRules(a, b []rbacv1.PolicyRule) bool {
	ja, _ := yaml.Marshal(a)
	jb, _ := yaml.Marshal(b)
	return bytes.Equal(ja, jb)
}

// TestBadValues: mistakes fail the install with a message that names the
// value and says what is wrong, from the schema or from the chart's checks.
func TestBadValues(t *testing.T) {
	ch := loadChart(t)
	tests := map[string]struct {
		values string
		want   []string
	}{
		"misspelt key": {
			values: `controller: {replica: 3}`,
			want:   []string{"/controller", "'replica' not allowed"},
		},
		"unknown top-level key": {
			values: `mongo: {existingSecret: x}`,
			want:   []string{"'mongo' not allowed"},
		},
		"zero replicas": {
			values: `controller: {replicas: 0}`,
			want:   []string{"/controller/replicas", "0"},
		},
		"duration as a number": {
			values: `controller: {pollInterval: 10}`,
			want:   []string{"/controller/pollInterval", "want string"},
		},
		"bad duration": {
			values: `controller: {pollInterval: ten}`,
			want:   []string{"/controller/pollInterval", "'ten'"},
		},
		"unknown agent source": {
			values: `agent: {source: etcd}`,
			want:   []string{"/agent/source", "feed", "mongodb"},
		},
		"bad pull policy": {
			values: `image: {pullPolicy: Sometimes}`,
			want:   []string{"/image/pullPolicy", "IfNotPresent"},
		},
		"role name instead of ARN": {
			values: `controller: {serviceAccount: {roleArn: aerostat-controller}}`,
			want:   []string{"/controller/serviceAccount/roleArn", "'aerostat-controller'"},
		},
		"port out of range": {
			values: `agent: {port: 70000}`,
			want:   []string{"/agent/port", "65,535"},
		},
		"queue name instead of URL": {
			values: `controller: {events: {sqsQueueURL: aerostat-events}}`,
			want:   []string{"/controller/events/sqsQueueURL", "'aerostat-events'"},
		},
		"bad events poll interval": {
			values: `controller: {events: {pollInterval: often}}`,
			want:   []string{"/controller/events/pollInterval", "'often'"},
		},
		"account id too short": {
			values: `controller: {attestNodes: {enabled: true, accounts: ["12345"]}}`,
			want:   []string{"/controller/attestNodes/accounts/0", "'12345'"},
		},
		"node network without a prefix": {
			values: `controller: {attestNodes: {enabled: true, nodeCIDRs: [10.0.0.1]}}`,
			want:   []string{"/controller/attestNodes/nodeCIDRs/0", "'10.0.0.1'"},
		},
		"bad region": {
			values: `aws: {region: Ireland}`,
			want:   []string{"/aws/region", "'Ireland'"},
		},
		"relative host directory": {
			values: `agent: {hostEtcDir: etc}`,
			want:   []string{"/agent/hostEtcDir", "'etc'"},
		},
		"hosts file instead of its directory": {
			values: `agent: {hostEtcDir: /etc/hosts}`,
			want:   []string{`agent.hostEtcDir="/etc/hosts"`, "give its directory"},
		},
		"both secret and trial store": {
			values: `mongodb: {existingSecret: aerostat-mongodb}`,
			want:   []string{"mongodb.existingSecret and store.enabled=true are both set"},
		},
		"no database at all": {
			values: `store: {enabled: false}`,
			want:   []string{"no MongoDB configured", "mongodb.existingSecret"},
		},
		"agent on mongodb without read-only secret": {
			values: `agent: {source: mongodb}`,
			want:   []string{"agent.source=mongodb needs agent.mongodb.existingSecret"},
		},
		"two replicas without leader election": {
			values: `controller: {leaderElection: false}`,
			want:   []string{"controller.leaderElection=false with controller.replicas=2"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := renderChart(ch, parseValues(t, tc.values))
			if err == nil {
				t.Fatalf("values %q rendered; want an error", tc.values)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not mention %q", err, w)
				}
			}
		})
	}
}

// TestLint runs `helm lint`'s checks (chart metadata, templates, schema)
// and fails on warnings as well as errors.
func TestLint(t *testing.T) {
	for name, values := range variants {
		t.Run(name, func(t *testing.T) {
			l := lint.AllWithKubeVersionAndSchemaValidation(chartDir, parseValues(t, values), namespace, nil, false)
			for _, m := range l.Messages {
				if m.Severity >= support.WarningSev {
					t.Error(m)
				} else {
					t.Log(m)
				}
			}
		})
	}
}

// TestPackagedFiles: the tests and their fixtures live beside the chart but
// must stay out of the package users install (.helmignore).
func TestPackagedFiles(t *testing.T) {
	ch := loadChart(t)
	var files []*chart.File
	files = append(files, ch.Files...)
	files = append(files, ch.Templates...)
	for _, f := range files {
		if strings.HasSuffix(f.Name, ".go") || strings.HasPrefix(f.Name, "testdata/") {
			t.Errorf("%s is packaged into the chart; add it to .helmignore", f.Name)
		}
	}
	if len(ch.CRDObjects()) == 0 {
		t.Error("the chart carries no CRDs")
	}
}
