//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/aerostat-io/aerostat/internal/hostsfile"
)

// values are what a user of this cluster would write: the image they
// imported, the EC2 endpoint and credentials, and where the node's /etc is.
func (e *env) values(pollInterval string) string {
	return fmt.Sprintf(`
image:
  repository: aerostat.local/aerostat
  tag: e2e
  pullPolicy: Never
aws:
  region: us-east-1
  ec2Endpoint: %s
controller:
  pollInterval: %s
  extraEnv:
    - name: AWS_ACCESS_KEY_ID
      value: e2e
    - name: AWS_SECRET_ACCESS_KEY
      value: e2e
agent:
  hostEtcDir: %s
  stateDir: %s
`, e.ec2URL, pollInterval, e.c.HostPath("node-etc"), e.c.HostPath("node-state"))
}

const webService = `
apiVersion: aerostat.io/v1alpha1
kind: NamingService
metadata: {name: web}
spec:
  service: web
  scheme: Iterative
  reapPolicy: {holdBack: 0s}
`

const dbService = `
apiVersion: aerostat.io/v1alpha1
kind: NamingService
metadata: {name: db}
spec:
  service: db
  scheme: Masterful
`

// storeVolume is the PersistentVolume a cluster without a provisioner
// needs for the chart's store: a directory of the node, owned by the
// store's user.
func (e *env) storeVolume(ctx context.Context, t *testing.T) {
	dir := e.c.HostPath("store-data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65532, 65532); err != nil {
		t.Fatal(err)
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "aerostat-e2e-store"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}},
		},
	}
	if err := e.kube.c.Create(ctx, pv); err != nil {
		t.Fatalf("creating the store's PersistentVolume: %v", err)
	}
}

func scenarioInstall(ctx context.Context, t *testing.T, e *env) {
	e.storeVolume(ctx, t)
	e.helm = newHelm(t, e.kube.kubeconfig)
	start := time.Now()
	e.helm.install(t, e.values("1s"))
	t.Logf("helm install: every object ready in %s", time.Since(start).Round(time.Second))

	var d appsv1.Deployment
	if err := e.kube.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "aerostat-controller"}, &d); err != nil {
		t.Fatal(err)
	}
	if d.Status.ReadyReplicas != 2 {
		t.Fatalf("controller Deployment: %d of 2 replicas ready", d.Status.ReadyReplicas)
	}
	eventually(ctx, t, 2*time.Minute, "one controller replica holds the Lease", func(ctx context.Context) (bool, string) {
		h := e.kube.leaseHolder(ctx)
		names := podNames(e.kube.pods(ctx, "controller"))
		return h != "" && slices.Contains(names, holderPod(h)), fmt.Sprintf("holder %q, pods %v", h, names)
	})
	var crd apiextensionsv1.CustomResourceDefinition
	if err := e.kube.c.Get(ctx, client.ObjectKey{Name: "namingservices.aerostat.io"}, &crd); err != nil {
		t.Fatal(err)
	}
	established := false
	for _, c := range crd.Status.Conditions {
		established = established || (c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue)
	}
	if !established {
		t.Fatalf("CRD namingservices.aerostat.io not Established: %+v", crd.Status.Conditions)
	}

	e.kube.apply(ctx, t, webService)
	e.kube.apply(ctx, t, dbService)
	e.waitMembers(ctx, t, "web", "web-0", "web-1", "web-2")
	e.waitMembers(ctx, t, "db", "db-master", "db-slave-1", "db-slave-2")
}

// waitMembers waits until the NamingService is Ready with exactly these
// bound names.
func (e *env) waitMembers(ctx context.Context, t *testing.T, name string, want ...string) {
	t.Helper()
	eventually(ctx, t, 2*time.Minute, "NamingService "+name+" Ready with "+strings.Join(want, ","), func(ctx context.Context) (bool, string) {
		ns, err := e.kube.namingService(ctx, name)
		if err != nil {
			return false, err.Error()
		}
		var got []string
		for _, m := range ns.Status.Members {
			got = append(got, m.Hostname)
		}
		slices.Sort(got)
		ready := meta.IsStatusConditionTrue(ns.Status.Conditions, "Ready")
		return ready && slices.Equal(got, want), fmt.Sprintf("ready=%v members=%v conditions=%+v", ready, got, ns.Status.Conditions)
	})
}

// block reads the node's hosts file: hostname -> address inside the
// Aerostat block, and the lines outside it.
func (e *env) block() (names map[string]string, outside []string, err error) {
	data, err := os.ReadFile(e.hosts)
	if err != nil {
		return nil, nil, err
	}
	names = map[string]string{}
	in := false
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		switch {
		case line == hostsfile.BeginMarker:
			in = true
		case line == hostsfile.EndMarker:
			in = false
		case in && !strings.HasPrefix(line, "#"):
			f := strings.Fields(line)
			for _, n := range f[1:] {
				names[n] = f[0]
			}
		case !in:
			outside = append(outside, line)
		}
	}
	return names, outside, nil
}

// expectedHosts is what the node's block should hold: every bound name of
// the fleet's running instances, by the ledger's choice, as the controller
// reports it in the NamingServices.
func (e *env) expectedHosts(ctx context.Context) (map[string]string, error) {
	want := map[string]string{}
	for _, svc := range []string{"web", "db"} {
		ns, err := e.kube.namingService(ctx, svc)
		if err != nil {
			return nil, err
		}
		for _, m := range ns.Status.Members {
			in, ok := e.fleet.Instance(m.InstanceID)
			if !ok {
				return nil, fmt.Errorf("%s held by %s, which the fleet does not have", m.Hostname, m.InstanceID)
			}
			want[m.Hostname] = in.PrivateIP
		}
	}
	return want, nil
}

// waitHosts waits until the node's block maps exactly want (hostnames
// only; aliases are allowed beside them) and the user's lines are intact.
func (e *env) waitHosts(ctx context.Context, t *testing.T, timeout time.Duration, want map[string]string) time.Time {
	t.Helper()
	eventually(ctx, t, timeout, "the node's hosts file holds "+fmt.Sprint(want), func(context.Context) (bool, string) {
		names, outside, err := e.block()
		if err != nil {
			return false, err.Error()
		}
		if o := strings.Join(outside, "\n") + "\n"; o != userHosts {
			t.Fatalf("lines outside the Aerostat block changed:\n%s\nwant:\n%s", o, userHosts)
		}
		for h, ip := range want {
			if names[h] != ip {
				return false, fmt.Sprintf("%v", names)
			}
		}
		for h := range names {
			if _, ok := want[h]; !ok && !strings.Contains(h, ".") && isHostname(h) {
				return false, fmt.Sprintf("extra %s in %v", h, names)
			}
		}
		return true, ""
	})
	return time.Now()
}

// isHostname is true for a service's generated names (web-3, db-master),
// not for aliases.
func isHostname(h string) bool {
	return strings.HasPrefix(h, "web-") || strings.HasPrefix(h, "db-")
}

func scenarioAgent(ctx context.Context, t *testing.T, e *env) {
	eventually(ctx, t, 2*time.Minute, "the agent DaemonSet pod Running on the node", func(ctx context.Context) (bool, string) {
		pods := e.kube.pods(ctx, "agent")
		return len(pods) == 1 && running(pods[0]) && pods[0].Spec.NodeName != "", fmt.Sprintf("%d pods %v", len(pods), podNames(pods))
	})
	want, err := e.expectedHosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 6 {
		t.Fatalf("want 6 bound names, the NamingServices report %v", want)
	}
	e.waitHosts(ctx, t, 2*time.Minute, want)
}

// scenarioFleetChanges launches 3 and terminates 2 web instances and
// reports how long each change took to reach the node's file.
func scenarioFleetChanges(ctx context.Context, t *testing.T, e *env) {
	before, err := e.expectedHosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ids := e.fleet.Launch(3, map[string]string{"aerostat:service": "web"})
	want := maps(before)
	for i, id := range ids {
		in, _ := e.fleet.Instance(id)
		want[fmt.Sprintf("web-%d", 3+i)] = in.PrivateIP
	}
	done := e.waitHosts(ctx, t, 2*time.Minute, want)
	t.Logf("REPORT launch 3 -> node hosts file: %s", done.Sub(start).Round(time.Millisecond))

	web0, web1 := instanceOf(t, e, "web", "web-0"), instanceOf(t, e, "web", "web-1")
	start = time.Now()
	if err := e.fleet.Terminate(web0, web1); err != nil {
		t.Fatal(err)
	}
	delete(want, "web-0")
	delete(want, "web-1")
	done = e.waitHosts(ctx, t, 2*time.Minute, want)
	t.Logf("REPORT terminate 2 -> node hosts file: %s", done.Sub(start).Round(time.Millisecond))
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// instanceOf is the instance holding hostname, as the NamingService says.
func instanceOf(t *testing.T, e *env, svc, hostname string) string {
	t.Helper()
	ns, err := e.kube.namingService(context.Background(), svc)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ns.Status.Members {
		if m.Hostname == hostname {
			return m.InstanceID
		}
	}
	t.Fatalf("%s has no member %s: %+v", svc, hostname, ns.Status.Members)
	return ""
}

func scenarioFailover(ctx context.Context, t *testing.T, e *env) {
	leader := holderPod(e.kube.leaseHolder(ctx))
	var others []string
	for _, p := range e.kube.pods(ctx, "controller") {
		if p.Name != leader {
			others = append(others, p.Name)
		}
	}
	if leader == "" || len(others) != 1 {
		t.Fatalf("want a leader and one other replica: leader %q, others %v", leader, others)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: leader}}
	start := time.Now()
	if err := e.kube.c.Delete(ctx, pod); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, 3*time.Minute, "the other replica "+others[0]+" takes the Lease", func(ctx context.Context) (bool, string) {
		h := e.kube.leaseHolder(ctx)
		return holderPod(h) == others[0], h
	})
	t.Logf("REPORT leader pod deleted -> Lease taken by %s: %s", others[0], time.Since(start).Round(time.Millisecond))

	want, err := e.expectedHosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	ids := e.fleet.Launch(1, map[string]string{"aerostat:service": "web"})
	in, _ := e.fleet.Instance(ids[0])
	want["web-0"] = in.PrivateIP // the smallest gap is filled first
	done := e.waitHosts(ctx, t, 2*time.Minute, want)
	t.Logf("REPORT launch 1 after failover -> node hosts file: %s", done.Sub(start).Round(time.Millisecond))
}

func scenarioPrinterColumns(ctx context.Context, t *testing.T, e *env) {
	tbl := e.kube.table(ctx, t, "/apis/aerostat.io/v1alpha1/namingservices")
	var cols []string
	for _, c := range tbl.ColumnDefinitions {
		if c.Priority == 0 {
			cols = append(cols, c.Name)
		}
	}
	wantCols := []string{"Name", "Service", "Scheme", "Bound", "Gaps", "Master", "Ready", "Age"}
	if !slices.Equal(cols, wantCols) {
		t.Errorf("kubectl get namingservices columns %v, want %v", cols, wantCols)
	}
	rows := map[string][]any{}
	for _, r := range tbl.Rows {
		rows[fmt.Sprint(r.Cells[0])] = r.Cells
	}
	if r := rows["db"]; r == nil || fmt.Sprint(r[3]) != "3" || !strings.HasPrefix(fmt.Sprint(r[5]), "i-") || fmt.Sprint(r[6]) != "True" {
		t.Errorf("kubectl get namingservices db row: %v", r)
	}
	if r := rows["web"]; r == nil || fmt.Sprint(r[2]) != "Iterative" || fmt.Sprint(r[6]) != "True" {
		t.Errorf("kubectl get namingservices web row: %v", r)
	}
	out, err := exec.CommandContext(ctx, e.aerostat, "get", "services", "--kubeconfig", e.kube.kubeconfig).CombinedOutput()
	if err != nil {
		t.Fatalf("aerostat get services: %v\n%s", err, out)
	}
	t.Logf("aerostat get services:\n%s", out)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "SERVICE") || !strings.HasPrefix(lines[1], "db ") || !strings.HasPrefix(lines[2], "web ") {
		t.Errorf("aerostat get services: want a header then db and web, got:\n%s", out)
	}
}

func scenarioUpgradeUninstall(ctx context.Context, t *testing.T, e *env) {
	before := podNames(e.kube.pods(ctx, "controller"))
	names, _, err := e.block()
	if err != nil {
		t.Fatal(err)
	}
	e.helm.upgrade(t, e.values("2s"))
	eventually(ctx, t, 3*time.Minute, "the controller pods rolled to the new values", func(ctx context.Context) (bool, string) {
		pods := e.kube.pods(ctx, "controller")
		n := 0
		for _, p := range pods {
			if running(p) && !slices.Contains(before, p.Name) && slices.Contains(p.Spec.Containers[0].Args, "--poll-interval=2s") {
				n++
			}
		}
		return n == 2 && len(pods) == 2, fmt.Sprintf("%v (before %v)", podNames(pods), before)
	})
	after, _, err := e.block()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(after) != fmt.Sprint(names) {
		t.Errorf("names changed across the upgrade:\nbefore %v\nafter  %v", names, after)
	}

	e.helm.uninstall(t)
	var pvcs corev1.PersistentVolumeClaimList
	if err := e.kube.c.List(ctx, &pvcs, client.InNamespace(namespace)); err != nil {
		t.Fatal(err)
	}
	if len(pvcs.Items) != 1 || pvcs.Items[0].Status.Phase != corev1.ClaimBound {
		t.Errorf("after uninstall the store's claim should stay bound (the ledger): %+v", pvcs.Items)
	}
	if entries, err := os.ReadDir(e.c.HostPath("store-data")); err != nil || len(entries) == 0 {
		t.Errorf("after uninstall the ledger's files should stay: %v %v", entries, err)
	}
	for _, svc := range []string{"web", "db"} {
		if _, err := e.kube.namingService(ctx, svc); err != nil {
			t.Errorf("after uninstall NamingService %s (the user's) should stay: %v", svc, err)
		}
	}
	if _, outside, err := e.block(); err != nil || strings.Join(outside, "\n")+"\n" != userHosts {
		t.Errorf("after uninstall the node's own hosts lines should stay: %v %q", err, outside)
	}
}

// scenarioRBAC: every pod of the release runs as one of the chart's
// ServiceAccounts (or none), and the apiserver refused none of their
// requests; a refusal fails with the denied verb and resource.
func scenarioRBAC(ctx context.Context, t *testing.T, e *env) {
	var pods corev1.PodList
	if err := e.kube.c.List(ctx, &pods, client.InNamespace(namespace)); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		sa, mounts := p.Spec.ServiceAccountName, p.Spec.AutomountServiceAccountToken
		switch {
		case sa == "aerostat-controller" || sa == "aerostat-agent":
		case mounts != nil && !*mounts:
			// No token: the pod cannot call the API at all.
		default:
			t.Errorf("pod %s runs as ServiceAccount %q with a token: not one of the chart's", p.Name, sa)
		}
	}
	denials, err := denied(e.c.AuditLog)
	if err != nil {
		t.Fatal(err)
	}
	if len(denials) > 0 {
		t.Errorf("the apiserver refused the chart's ServiceAccounts:\n%s", strings.Join(denials, "\n"))
	}
}
