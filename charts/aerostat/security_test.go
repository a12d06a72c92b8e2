package chart_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"

	"github.com/aerostat-io/aerostat/internal/store/embedded"
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

// TestFeedSecurity: the feed is HTTPS with the chart's certificate, the
// agents authenticate with a token made for the feed's audience (not the
// API server's: no ServiceAccount token is mounted), they see the CA but
// not the feed's key, and only agent pods may reach the feed port.
func TestFeedSecurity(t *testing.T) {
	r := mustRender(t, loadChart(t), "")
	var ds appsv1.DaemonSet
	typed(t, r, "DaemonSet", "aerostat-agent", &ds)
	pod := ds.Spec.Template.Spec
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("agent mounts an API ServiceAccount token")
	}
	var proj *corev1.ProjectedVolumeSource
	for _, v := range pod.Volumes {
		if v.Projected != nil {
			proj = v.Projected
		}
		if v.Secret != nil {
			t.Errorf("agent mounts Secret %s whole", v.Secret.SecretName)
		}
	}
	if proj == nil {
		t.Fatal("agent has no projected feed volume")
	}
	var audience string
	for _, src := range proj.Sources {
		switch {
		case src.ServiceAccountToken != nil:
			audience = src.ServiceAccountToken.Audience
			if e := src.ServiceAccountToken.ExpirationSeconds; e == nil || *e > 3600 {
				t.Errorf("feed token lives %v s, want at most an hour", e)
			}
		case src.Secret != nil:
			if len(src.Secret.Items) != 1 || src.Secret.Items[0].Key != "ca.crt" {
				t.Errorf("agent gets %+v of the feed's Secret, want ca.crt only", src.Secret.Items)
			}
		default:
			t.Errorf("unexpected projected source %+v", src)
		}
	}
	if audience != "aerostat-feed" {
		t.Errorf("feed token audience %q, want aerostat-feed", audience)
	}
	c := container(t, pod, "agent")
	checkArgs(t, "agent", c.Args, "--feed-insecure", "--feed=https://aerostat-feed.aerostat-system.svc:8082",
		"--feed-ca-file=/var/run/aerostat/feed/ca.crt", "--feed-token-file=/var/run/aerostat/feed/token")

	var d appsv1.Deployment
	typed(t, r, "Deployment", "aerostat-controller", &d)
	cc := container(t, d.Spec.Template.Spec, "controller")
	checkArgs(t, "controller", cc.Args, "--feed-insecure", "--feed-service-accounts=aerostat-system/aerostat-agent", "--feed-audience=aerostat-feed",
		"--feed-tls-cert-file=/etc/aerostat/feed-tls/tls.crt", "--feed-tls-key-file=/etc/aerostat/feed-tls/tls.key")
	var sec corev1.Secret
	typed(t, r, "Secret", "aerostat-feed-tls", &sec)
	for _, k := range []string{"tls.crt", "tls.key", "ca.crt"} {
		if sec.Data[k] == nil && sec.StringData[k] == "" {
			t.Errorf("feed Secret lacks %s", k)
		}
	}

	var np networkingv1.NetworkPolicy
	typed(t, r, "NetworkPolicy", "aerostat-feed", &np)
	feedOpen := false
	for _, rule := range np.Spec.Ingress {
		for _, p := range rule.Ports {
			if p.Port != nil && p.Port.String() == "feed" {
				feedOpen = len(rule.From) != 1 || rule.From[0].PodSelector == nil ||
					rule.From[0].PodSelector.MatchLabels["app.kubernetes.io/component"] != "agent"
			}
		}
	}
	if feedOpen {
		t.Errorf("feed port open to more than agent pods: %+v", np.Spec.Ingress)
	}
}

// TestStoreRequiresClientCertificates: the trial store listens on its pod's
// address, so it demands a client certificate from the chart's CA, which
// only the controller holds.
func TestStoreRequiresClientCertificates(t *testing.T) {
	r := mustRender(t, loadChart(t), "")
	var sts appsv1.StatefulSet
	typed(t, r, "StatefulSet", "aerostat-store", &sts)
	c := container(t, sts.Spec.Template.Spec, "store")
	checkArgs(t, "store", c.Args, "--insecure", "--client-ca-file=/etc/aerostat/store-tls/ca.crt", "--tls-cert-file=/etc/aerostat/store-tls/tls.crt")
	var sec corev1.Secret
	typed(t, r, "Secret", "aerostat-store-tls", &sec)
	if len(sec.Data["client.pem"]) == 0 || len(sec.Data["ca.crt"]) == 0 {
		t.Errorf("store Secret lacks client.pem or ca.crt: %v", len(sec.Data))
	}
	var ds appsv1.DaemonSet
	typed(t, r, "DaemonSet", "aerostat-agent", &ds)
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == sec.Name {
			t.Error("agents mount the store's certificates")
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.Secret != nil && src.Secret.Name == sec.Name {
					t.Error("agents mount the store's certificates")
				}
			}
		}
	}
}

// TestStoreCertificatesWork takes the certificates the chart generates and
// the URI it gives the controller, serves the embedded store on a
// non-loopback listener with them, and connects with the MongoDB driver:
// the controller's client.pem is accepted, a client without it is not.
func TestStoreCertificatesWork(t *testing.T) {
	r := mustRender(t, loadChart(t), "")
	var sec corev1.Secret
	typed(t, r, "Secret", "aerostat-store-tls", &sec)
	dir := t.TempDir()
	for k, v := range sec.Data {
		if err := os.WriteFile(filepath.Join(dir, k), v, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(sec.Data["ca.crt"]) {
		t.Fatal("ca.crt holds no certificate")
	}
	srv, err := embedded.Start(context.Background(), embedded.Options{DataDir: t.TempDir(), Listen: "0.0.0.0:0",
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	_, port, _ := net.SplitHostPort(strings.TrimSuffix(strings.TrimPrefix(srv.URI(), "mongodb://"), "/"))

	var d appsv1.Deployment
	typed(t, r, "Deployment", "aerostat-controller", &d)
	uri := envByName(container(t, d.Spec.Template.Spec, "controller").Env)["AEROSTAT_SERVER"].Value
	uri = strings.ReplaceAll(uri, "/etc/aerostat/store-tls", dir)
	uri = strings.Replace(uri, "aerostat-store.aerostat-system.svc:27017", "127.0.0.1:"+port, 1)
	// The certificate names the Service; here it is reached by IP.
	uri += "&tlsInsecure=true"
	ping := func(uri string) error {
		c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(3 * time.Second))
		if err != nil {
			return err
		}
		defer func() { _ = c.Disconnect(context.Background()) }()
		return c.Database("admin").RunCommand(context.Background(), bson.D{{Key: "ping", Value: 1}}).Err()
	}
	if err := ping(uri); err != nil {
		t.Errorf("the controller's URI and client.pem: %v", err)
	}
	if err := ping("mongodb://127.0.0.1:" + port + "/?tls=true&tlsInsecure=true"); err == nil {
		t.Error("a client without a certificate was served")
	}
}

// checkArgs wants every one of want in args and never the flag that turns
// the guard off.
func checkArgs(t *testing.T, what string, args []string, never string, want ...string) {
	t.Helper()
	for _, arg := range want {
		if !slices.Contains(args, arg) {
			t.Errorf("%s args %v lack %s", what, args, arg)
		}
	}
	if slices.ContainsFunc(args, func(a string) bool { return a == never || strings.HasPrefix(a, never+"=") }) {
		t.Errorf("%s args %v turn a guard off with %s", what, args, never)
	}
}
