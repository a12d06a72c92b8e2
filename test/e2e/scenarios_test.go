//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/aerostat-io/aerostat/internal/hostsfile"
)

// values are what a user of this cluster would write: the image they
// imported, the EC2 endpoint and credentials, and where the node's /etc is.
// The upgrade changes a controller value and an agent value, so both roll.
type releaseValues struct {
	pollInterval string
	agentMemory  string // the agent's memory limit
}

var (
	firstRelease = releaseValues{pollInterval: "1s", agentMemory: "128Mi"}
	upgraded     = releaseValues{pollInterval: "2s", agentMemory: "160Mi"}
)

func (e *env) values(r releaseValues) string {
	return fmt.Sprintf(`
image:
  repository: aerostat.local/aerostat
  tag: e2e
  pullPolicy: Never
# The node agent's own image (-tags agentonly), as the Dockerfile's agent
# target builds it.
agentImage:
  repository: aerostat.local/aerostat-agent
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
  resources:
    requests: {cpu: 10m, memory: 32Mi}
    limits: {memory: %s}
`, e.ec2URL, r.pollInterval, e.c.HostPath("node-etc"), e.c.HostPath("node-state"), r.agentMemory)
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
	e.helm.install(t, e.values(firstRelease))
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
	// The slim image, not the full one: the hosts file below is its work.
	if pods := e.kube.pods(ctx, "agent"); len(pods) != 1 || len(pods[0].Spec.Containers) != 1 || pods[0].Spec.Containers[0].Image != agentImage {
		t.Fatalf("the agent pod does not run %s: %v", agentImage, podImages(pods))
	}
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
	// The standby and the ReplicaSet's replacement race for the Lease the
	// old leader released: either may win, as in any rollout.
	var holder string
	eventually(ctx, t, 3*time.Minute, "a live replica other than "+leader+" takes the Lease", func(ctx context.Context) (bool, string) {
		holder = holderPod(e.kube.leaseHolder(ctx))
		for _, p := range e.kube.pods(ctx, "controller") {
			if p.Name == holder && p.Name != leader && running(p) {
				return true, ""
			}
		}
		return false, holder
	})
	role := "the standby"
	if holder != others[0] {
		role = "the replacement pod"
	}
	t.Logf("REPORT leader pod deleted -> Lease taken by %s (%s): %s", holder, role, time.Since(start).Round(time.Millisecond))

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

// members is hostname -> instance of every bound name of the services.
func (e *env) members(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	for _, svc := range []string{"web", "db"} {
		ns, err := e.kube.namingService(ctx, svc)
		if err != nil {
			return nil, err
		}
		for _, m := range ns.Status.Members {
			out[m.Hostname] = m.InstanceID
		}
	}
	return out, nil
}

func scenarioUpgradeUninstall(ctx context.Context, t *testing.T, e *env) {
	beforeCtl, beforeAgent := podNames(e.kube.pods(ctx, "controller")), podNames(e.kube.pods(ctx, "agent"))
	names, _, err := e.block()
	if err != nil {
		t.Fatal(err)
	}
	members, err := e.members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	e.helm.upgrade(t, e.values(upgraded))
	eventually(ctx, t, 3*time.Minute, "the controller and agent pods rolled to the new values", func(ctx context.Context) (bool, string) {
		ctl, agents := e.kube.pods(ctx, "controller"), e.kube.pods(ctx, "agent")
		n := 0
		for _, p := range ctl {
			if running(p) && !slices.Contains(beforeCtl, p.Name) && slices.Contains(p.Spec.Containers[0].Args, "--poll-interval="+upgraded.pollInterval) {
				n++
			}
		}
		agentRolled := len(agents) == 1 && running(agents[0]) && !slices.Contains(beforeAgent, agents[0].Name) &&
			agents[0].Spec.Containers[0].Resources.Limits.Memory().String() == upgraded.agentMemory
		return n == 2 && len(ctl) == 2 && agentRolled, fmt.Sprintf("controller %v (before %v), agent %v (before %v)", podNames(ctl), beforeCtl, podNames(agents), beforeAgent)
	})
	t.Logf("REPORT helm upgrade -> both components rolled: %s", time.Since(start).Round(time.Second))
	after, _, err := e.block()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(after, names) {
		t.Errorf("the node's names changed across the upgrade:\nbefore %v\nafter  %v", names, after)
	}
	if got, err := e.members(ctx); err != nil || !reflect.DeepEqual(got, members) {
		t.Errorf("the NamingServices' members changed across the upgrade (%v):\nbefore %v\nafter  %v", err, members, got)
	}
	// The rolled pods still carry changes to the node.
	want, err := e.expectedHosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	ids := e.fleet.Launch(1, map[string]string{"aerostat:service": "web"})
	in, _ := e.fleet.Instance(ids[0])
	gap := firstGap(want, "web")
	want[gap] = in.PrivateIP
	e.waitHosts(ctx, t, 2*time.Minute, want)
	t.Logf("REPORT launch 1 after the upgrade -> node hosts file: %s", time.Since(start).Round(time.Millisecond))
	// The feed reaches the node before the pass's status patch reaches the
	// NamingService: the snapshot the reinstall is compared with waits for
	// the status to show the new name too.
	members[gap] = ids[0]
	eventually(ctx, t, time.Minute, "the NamingServices' members show the launched instance", func(ctx context.Context) (bool, string) {
		got, err := e.members(ctx)
		if err != nil {
			return false, err.Error()
		}
		return reflect.DeepEqual(got, members), fmt.Sprintf("got %v, want %v", got, members)
	})
	e.checkNoDenials(t)

	e.helm.uninstall(t)
	e.checkUninstallKept(ctx, t)

	// The ledger is the proof: installed again, the release gives every
	// instance the name it had.
	e.helm.install(t, e.values(upgraded))
	eventually(ctx, t, 3*time.Minute, "reinstalled, every instance has the name it had", func(ctx context.Context) (bool, string) {
		got, err := e.members(ctx)
		if err != nil {
			return false, err.Error()
		}
		return reflect.DeepEqual(got, members), fmt.Sprintf("got %v, want %v", got, members)
	})
}

// firstGap is the smallest free ordinal name of an iterative service.
func firstGap(names map[string]string, svc string) string {
	for i := 0; ; i++ {
		n := fmt.Sprintf("%s-%d", svc, i)
		if _, ok := names[n]; !ok {
			return n
		}
	}
}

// checkUninstallKept: helm uninstall leaves the ledger (its claim and
// files), the CRD and the user's NamingServices, and the node's own hosts
// lines.
func (e *env) checkUninstallKept(ctx context.Context, t *testing.T) {
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
	var crd apiextensionsv1.CustomResourceDefinition
	if err := e.kube.c.Get(ctx, client.ObjectKey{Name: "namingservices.aerostat.io"}, &crd); err != nil {
		t.Errorf("after uninstall the CRD should stay (deleting it deletes every NamingService): %v", err)
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
	e.checkNoDenials(t)
	t.Run("a missing rule fails the check with the denied verb", func(t *testing.T) { e.missingRule(ctx, t) })
}

// checkNoDenials fails with every request of the release's ServiceAccounts
// the apiserver refused, but for the ones missingRule provoked.
func (e *env) checkNoDenials(t *testing.T) {
	t.Helper()
	denials, err := denied(e.c.AuditLog, e.provoked)
	if err != nil {
		t.Fatal(err)
	}
	if len(denials) > 0 {
		var lines []string
		for _, d := range denials {
			lines = append(lines, d.String())
		}
		t.Errorf("the apiserver refused the chart's ServiceAccounts:\n%s", strings.Join(lines, "\n"))
	}
}

// missingRule shows the RBAC check can fail: it takes the Lease rule out of
// the chart's controller Role, as a chart missing it would, and waits for
// the check to report the leader's refused renewal with its verb; then it
// puts the rule back and waits for a renewal. The window is left out of
// later checks.
func (e *env) missingRule(ctx context.Context, t *testing.T) {
	key := client.ObjectKey{Namespace: namespace, Name: "aerostat-controller"}
	var role rbacv1.Role
	if err := e.kube.c.Get(ctx, key, &role); err != nil {
		t.Fatal(err)
	}
	saved := slices.Clone(role.Rules)
	without := slices.DeleteFunc(slices.Clone(role.Rules), func(r rbacv1.PolicyRule) bool { return slices.Contains(r.Resources, "leases") })
	if len(without) == len(saved) {
		t.Fatalf("the chart's controller Role %s has no rule for leases: %+v", key, saved)
	}
	w := window{from: time.Now()}
	e.setRules(ctx, t, key, without)
	restored := false
	defer func() {
		if !restored {
			e.setRules(context.WithoutCancel(ctx), t, key, saved)
		}
	}()
	var caught []denial
	eventually(ctx, t, time.Minute, "the check reports the controller's refused Lease requests", func(context.Context) (bool, string) {
		all, err := denied(e.c.AuditLog, e.provoked)
		if err != nil {
			return false, err.Error()
		}
		caught = slices.DeleteFunc(all, func(d denial) bool {
			return d.at.Before(w.from) || !strings.Contains(d.uri, "/leases") || (d.verb != "get" && d.verb != "update")
		})
		return len(caught) > 0, fmt.Sprint(all)
	})
	for _, d := range caught {
		if d.user != "system:serviceaccount:"+namespace+":aerostat-controller" || d.code != 403 {
			t.Errorf("want the controller's ServiceAccount refused with 403, got %s", d)
		}
	}
	t.Logf("REPORT missing Lease rule: the check fails with %s", caught[0])
	e.setRules(ctx, t, key, saved)
	restored = true
	back := time.Now()
	eventually(ctx, t, time.Minute, "the controller renews the Lease with the rule back", func(ctx context.Context) (bool, string) {
		var l coordinationv1.Lease
		if err := e.kube.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: leaseName}, &l); err != nil || l.Spec.RenewTime == nil {
			return false, fmt.Sprint(err)
		}
		return l.Spec.RenewTime.After(back), l.Spec.RenewTime.String()
	})
	w.to = time.Now()
	e.provoked = append(e.provoked, w)
}

func (e *env) setRules(ctx context.Context, t *testing.T, key client.ObjectKey, rules []rbacv1.PolicyRule) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var role rbacv1.Role
		if err := e.kube.c.Get(ctx, key, &role); err != nil {
			return err
		}
		role.Rules = rules
		return e.kube.c.Update(ctx, &role)
	})
	if err != nil {
		t.Fatalf("setting the rules of Role %s: %v", key, err)
	}
}

// podImages lists each pod's container images, for a failure message.
func podImages(pods []corev1.Pod) map[string][]string {
	out := map[string][]string{}
	for _, p := range pods {
		for _, c := range p.Spec.Containers {
			out[p.Name] = append(out[p.Name], c.Image)
		}
	}
	return out
}
