package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/hostsfile"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// The controller renders the ledger into a ConfigMap with the agents'
// renderer; reading the ConfigMap back from the API server and parsing it
// as a hosts file gives the bound names. Changes and hand edits are
// written over; an unchanged ledger costs no write.
func TestHostsConfigMap(t *testing.T) {
	_, c := envtestClient(t)
	r := newRig(t)
	ctx := context.Background()
	// envtest has no namespace controller, so a deleted namespace stays
	// Terminating: each run takes a fresh name, and -count=N works.
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "dns-"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	nsName := ns.Name
	t.Cleanup(func() { _ = c.Delete(context.Background(), ns) })
	key := types.NamespacedName{Namespace: nsName, Name: "aerostat-hosts"}
	bind := func(host, id, ip string, aliases ...string) {
		t.Helper()
		if _, err := r.store.Apply(ctx, []naming.Change{{Type: naming.Bind, Hostname: host, Service: "web", Scheme: naming.Iterative,
			InstanceID: id, IP: ip, Aliases: aliases, Reason: "test"}}); err != nil {
			t.Fatal(err)
		}
	}
	read := func() (string, corev1.ConfigMap) {
		t.Helper()
		var cm corev1.ConfigMap
		if err := c.Get(ctx, key, &cm); err != nil {
			t.Fatal(err)
		}
		f, err := hostsfile.Parse([]byte(cm.Data[controllers.HostsConfigMapKey]))
		if err != nil {
			t.Fatalf("configmap does not parse as a hosts file: %v\n%s", err, cm.Data[controllers.HostsConfigMapKey])
		}
		var out []string
		for _, e := range f.Entries {
			out = append(out, e.IP+" "+e.Hostname)
		}
		return strings.Join(out, ","), cm
	}

	bind("web-0", "i-0", "10.0.0.1", "www")
	bind("web-1", "i-1", "10.0.0.2")
	h := controllers.NewHostsConfigMap(controllers.HostsConfigMapOptions{Store: r.store, Reader: c, Writer: c, Key: key, Clock: r.clock})
	// The controller has no create permission: a missing ConfigMap is an
	// error and nothing is created; one without the managed-by label (say
	// aws-auth named by mistake) is refused and left as it was.
	if err := h.SyncOnce(ctx); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("sync with no ConfigMap = %v, want an error saying it does not exist", err)
	}
	var none corev1.ConfigMap
	if err := c.Get(ctx, key, &none); err == nil {
		t.Fatal("the controller created the ConfigMap")
	}
	foreign := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name},
		Data: map[string]string{"mapRoles": "- rolearn: x"}}
	if err := c.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	if err := h.SyncOnce(ctx); err == nil || !strings.Contains(err.Error(), controllers.HostsLabel) {
		t.Fatalf("sync over an unlabelled ConfigMap = %v, want a refusal naming %s", err, controllers.HostsLabel)
	}
	if _, cm := readRaw(t, c, key); cm.Data["mapRoles"] != "- rolearn: x" || len(cm.Data) != 1 {
		t.Fatalf("unlabelled ConfigMap changed: %v", cm.Data)
	}
	foreign.Labels = map[string]string{controllers.HostsLabel: "true"}
	if err := c.Update(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	if err := h.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	got, cm := read()
	if want := "10.0.0.1 web-0,10.0.0.2 web-1,10.0.0.1 www"; got != want {
		t.Fatalf("configmap names = %s, want %s", got, want)
	}
	t.Logf("configmap %s, key %s:\n%s", key, controllers.HostsConfigMapKey, cm.Data[controllers.HostsConfigMapKey])
	version := cm.ResourceVersion

	r.clock.Step(5 * time.Second)
	if err := h.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if _, cm := read(); cm.ResourceVersion != version {
		t.Errorf("unchanged ledger rewrote the configmap (%s → %s)", version, cm.ResourceVersion)
	}

	r.clock.Step(31 * time.Second) // past the follower's overlap: deltas
	bind("web-2", "i-2", "10.0.0.3")
	if err := h.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := read(); got != "10.0.0.1 web-0,10.0.0.2 web-1,10.0.0.3 web-2,10.0.0.1 www" {
		t.Errorf("after a bind: %s", got)
	}

	_, cm = read()
	cm.Data[controllers.HostsConfigMapKey] = "10.9.9.9 web-0\n"
	if err := c.Update(ctx, &cm); err != nil {
		t.Fatal(err)
	}
	r.clock.Step(time.Minute)
	if err := h.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := read(); got != "10.0.0.1 web-0,10.0.0.2 web-1,10.0.0.3 web-2,10.0.0.1 www" {
		t.Errorf("hand edit not repaired: %s", got)
	}
}

func readRaw(t *testing.T, c client.Client, key types.NamespacedName) (string, corev1.ConfigMap) {
	t.Helper()
	var cm corev1.ConfigMap
	if err := c.Get(context.Background(), key, &cm); err != nil {
		t.Fatal(err)
	}
	return cm.ResourceVersion, cm
}

func TestParseConfigMapRef(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    types.NamespacedName
		wantErr bool
	}{
		"ok":             {"kube-system/aerostat-hosts", types.NamespacedName{Namespace: "kube-system", Name: "aerostat-hosts"}, false},
		"dotted name":    {"dns/aerostat.hosts", types.NamespacedName{Namespace: "dns", Name: "aerostat.hosts"}, false},
		"no namespace":   {"aerostat-hosts", types.NamespacedName{}, true},
		"empty name":     {"kube-system/", types.NamespacedName{}, true},
		"upper case":     {"Kube/x", types.NamespacedName{}, true},
		"extra slash":    {"a/b/c", types.NamespacedName{}, true},
		"empty":          {"", types.NamespacedName{}, true},
		"space in name":  {"a/b c", types.NamespacedName{}, true},
		"long namespace": {strings.Repeat("a", 64) + "/x", types.NamespacedName{}, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := controllers.ParseConfigMapRef(tc.in)
			if (err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
				t.Errorf("ParseConfigMapRef(%q) = %v, %v", tc.in, got, err)
			}
			if err != nil && !strings.Contains(err.Error(), "--hosts-configmap") {
				t.Errorf("error %q does not name the flag", err)
			}
		})
	}
}

func FuzzParseConfigMapRef(f *testing.F) {
	f.Add("kube-system/aerostat-hosts")
	f.Add("a/b/c")
	f.Fuzz(func(t *testing.T, s string) {
		key, err := controllers.ParseConfigMapRef(s)
		if err != nil {
			return
		}
		if key.Namespace+"/"+key.Name != s || key.Namespace == "" || key.Name == "" || strings.Contains(key.Name, "/") {
			t.Fatalf("ParseConfigMapRef(%q) = %v", s, key)
		}
	})
}
