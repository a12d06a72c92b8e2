//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	aerostatv1alpha1 "github.com/aerostat-io/aerostat/api/v1alpha1"
	"github.com/aerostat-io/aerostat/test/e2e/cluster"
)

// kubeClients talks to the cluster as its admin (the test plays the user).
type kubeClients struct {
	c          client.Client
	kubeconfig string
	restConfig *rest.Config
}

func newKubeClients(t *testing.T, c *cluster.Cluster) *kubeClients {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, aerostatv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := client.New(c.AdminConfig, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatalf("admin client: %v", err)
	}
	rc := rest.CopyConfig(c.AdminConfig)
	rc.GroupVersion = &aerostatv1alpha1.GroupVersion
	rc.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	return &kubeClients{c: cl, kubeconfig: c.AdminKubeconfig, restConfig: rc}
}

// eventually polls cond until it holds; on timeout the error names what
// was last seen.
func eventually(ctx context.Context, t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, string)) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ok, seen := cond(ctx)
		last = seen
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: not after %s; last seen: %s", what, timeout, last)
	}
}

// helm runs Helm SDK actions against the cluster, as `helm` would.
type helm struct {
	cfg *action.Configuration
}

func newHelm(t *testing.T, kubeconfig string) *helm {
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &kubeconfig
	ns := namespace
	flags.Namespace = &ns
	cfg := new(action.Configuration)
	if err := cfg.Init(flags, namespace, "secret", func(string, ...any) {}); err != nil {
		t.Fatalf("helm init: %v", err)
	}
	return &helm{cfg: cfg}
}

func parseValues(t *testing.T, s string) chartutil.Values {
	t.Helper()
	vals, err := chartutil.ReadValues([]byte(s))
	if err != nil {
		t.Fatalf("values: %v\n%s", err, s)
	}
	return vals
}

func (h *helm) install(t *testing.T, values string) {
	ch, err := loader.Load(repoRoot + "/charts/aerostat")
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	in := action.NewInstall(h.cfg)
	in.ReleaseName, in.Namespace, in.CreateNamespace = release, namespace, true
	in.Wait, in.Timeout = true, 5*time.Minute
	if _, err := in.Run(ch, parseValues(t, values)); err != nil {
		t.Fatalf("helm install: %v", err)
	}
}

func (h *helm) upgrade(t *testing.T, values string) {
	ch, err := loader.Load(repoRoot + "/charts/aerostat")
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	up := action.NewUpgrade(h.cfg)
	up.Namespace, up.Wait, up.Timeout = namespace, true, 5*time.Minute
	if _, err := up.Run(release, ch, parseValues(t, values)); err != nil {
		t.Fatalf("helm upgrade: %v", err)
	}
}

func (h *helm) uninstall(t *testing.T) {
	un := action.NewUninstall(h.cfg)
	un.Wait, un.Timeout = true, 3*time.Minute
	if _, err := un.Run(release); err != nil {
		t.Fatalf("helm uninstall: %v", err)
	}
}

// leaseName is the controller's leader-election Lease.
const leaseName = "aerostat-controller.aerostat.io"

// leaseHolder returns the controller Lease's holder, "" when none.
func (k *kubeClients) leaseHolder(ctx context.Context) string {
	var l coordinationv1.Lease
	if err := k.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: leaseName}, &l); err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// pods lists the release's pods of one component.
func (k *kubeClients) pods(ctx context.Context, component string) []corev1.Pod {
	var list corev1.PodList
	_ = k.c.List(ctx, &list, client.InNamespace(namespace), client.MatchingLabels{
		"app.kubernetes.io/instance": release, "app.kubernetes.io/component": component,
	})
	return list.Items
}

func running(p corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podNames(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	slices.Sort(out)
	return out
}

// holderPod is the pod named in a Lease holder identity (pod_uuid).
func holderPod(holder string) string {
	name, _, _ := strings.Cut(holder, "_")
	return name
}

func (k *kubeClients) apply(ctx context.Context, t *testing.T, manifest string) {
	var ns aerostatv1alpha1.NamingService
	if err := yaml.UnmarshalStrict([]byte(manifest), &ns); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if err := k.c.Create(ctx, &ns); err != nil {
		t.Fatalf("creating NamingService %s: %v", ns.Name, err)
	}
}

func (k *kubeClients) namingService(ctx context.Context, name string) (aerostatv1alpha1.NamingService, error) {
	var ns aerostatv1alpha1.NamingService
	err := k.c.Get(ctx, client.ObjectKey{Name: name}, &ns)
	return ns, err
}

// window is a time span whose denials a test provoked on purpose.
type window struct{ from, to time.Time }

// denial is one request the apiserver refused.
type denial struct {
	user, verb, uri string
	code            int32
	message         string
	at              time.Time
}

func (d denial) String() string {
	return fmt.Sprintf("%s: %s %s refused %d %s", d.user, d.verb, d.uri, d.code, d.message)
}

// denied reads the audit log for requests of the release's ServiceAccounts
// that the apiserver refused (401, 403), but for those received inside one
// of the provoked windows.
func denied(auditLog string, provoked []window) ([]denial, error) {
	data, err := os.ReadFile(auditLog)
	if err != nil {
		return nil, err
	}
	var out []denial
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" {
			continue
		}
		var ev struct {
			Verb       string `json:"verb"`
			RequestURI string `json:"requestURI"`
			User       struct {
				Username string `json:"username"`
			} `json:"user"`
			ResponseStatus *metav1.Status   `json:"responseStatus"`
			Received       metav1.MicroTime `json:"requestReceivedTimestamp"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			// The apiserver may be writing the last line.
			continue
		}
		if !strings.HasPrefix(ev.User.Username, "system:serviceaccount:"+namespace+":") || ev.ResponseStatus == nil {
			continue
		}
		if ev.ResponseStatus.Code != 401 && ev.ResponseStatus.Code != 403 {
			continue
		}
		if slices.ContainsFunc(provoked, func(w window) bool { return !ev.Received.Time.Before(w.from) && ev.Received.Time.Before(w.to) }) {
			continue
		}
		out = append(out, denial{user: ev.User.Username, verb: ev.Verb, uri: ev.RequestURI, code: ev.ResponseStatus.Code,
			message: ev.ResponseStatus.Message, at: ev.Received.Time})
	}
	return out, nil
}

// table asks the apiserver for path as a Table, as kubectl get does.
func (k *kubeClients) table(ctx context.Context, t *testing.T, path string) metav1.Table {
	t.Helper()
	rc, err := rest.RESTClientFor(k.restConfig)
	if err != nil {
		t.Fatal(err)
	}
	body, err := rc.Get().AbsPath(path).SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(ctx)
	if err != nil {
		t.Fatalf("GET %s as Table: %v", path, err)
	}
	var tbl metav1.Table
	if err := json.Unmarshal(body, &tbl); err != nil {
		t.Fatalf("decoding the Table: %v", err)
	}
	return tbl
}
