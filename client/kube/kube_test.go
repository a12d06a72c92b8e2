package kube

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1alpha1 "github.com/aerostat-io/aerostat/api/v1alpha1"
	"github.com/aerostat-io/aerostat/client"
	"github.com/aerostat-io/aerostat/controllers"
)

func TestPolicySourceIsTheControllers(t *testing.T) {
	if policySource != controllers.SourceNamingService {
		t.Errorf("policySource = %q, controllers write %q", policySource, controllers.SourceNamingService)
	}
}

func nsvc(name, scheme string, members ...v1alpha1.Member) v1alpha1.NamingService {
	return v1alpha1.NamingService{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.NamingServiceSpec{Service: name, Scheme: scheme},
		Status: v1alpha1.NamingServiceStatus{Members: members}}
}

func summary(events []client.Event) string {
	var parts []string
	for _, e := range events {
		parts = append(parts, string(e.Type)+" "+e.Name.Hostname+" "+e.Name.InstanceID)
	}
	return strings.Join(parts, ", ")
}

// TestRelistReportsTheDifference: after a watch expired, the fresh list
// is reported as the changes since the last state seen, nothing twice.
func TestRelistReportsTheDifference(t *testing.T) {
	web := nsvc("web", "Iterative", v1alpha1.Member{Hostname: "web-0", InstanceID: "i-1", IP: "10.0.0.1"}, v1alpha1.Member{Hostname: "web-1", InstanceID: "i-2", IP: "10.0.0.2"})
	db := nsvc("db", "Masterful", v1alpha1.Member{Hostname: "db-master", InstanceID: "i-7", IP: "10.0.1.7"})
	tests := map[string]struct {
		sel   string
		items []v1alpha1.NamingService
		want  string
	}{
		"nothing changed": {items: []v1alpha1.NamingService{web, db}, want: ""},
		"holder replaced, name gone, service gone": {
			items: []v1alpha1.NamingService{nsvc("web", "Iterative", v1alpha1.Member{Hostname: "web-0", InstanceID: "i-9", IP: "10.0.0.9"})},
			want:  "DELETED db-master i-7, MODIFIED web-0 i-9, DELETED web-1 i-2",
		},
		"new service": {
			items: []v1alpha1.NamingService{web, db, nsvc("cache", "Iterative", v1alpha1.Member{Hostname: "cache-0", InstanceID: "i-5"})},
			want:  "ADDED cache-0 i-5",
		},
		"selector hides the rest": {
			sel:   "service=web",
			items: []v1alpha1.NamingService{nsvc("db", "Masterful")},
			want:  "DELETED web-0 i-1, DELETED web-1 i-2",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			sel, err := client.ParseSelector(tc.sel)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			w := watcher{sel: sel, seen: map[string]map[string]client.Name{}, fn: func(ev []client.Event) error {
				got = append(got, summary(ev))
				return nil
			}}
			if err := w.relisted([]v1alpha1.NamingService{web, db}, true); err != nil {
				t.Fatal(err)
			}
			got = nil
			if err := w.relisted(tc.items, false); err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, " | ") != tc.want {
				t.Errorf("events after relist = %q, want %q", strings.Join(got, " | "), tc.want)
			}
		})
	}
}

// TestWatchFollowsTheAPIServer: against a real API server (envtest), the
// first batch lists the members and each status update or deletion
// arrives as its own batch, through the watch (nothing polls: the test
// has no clock to step).
func TestWatchFollowsTheAPIServer(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is unset: run hack/setup-envtest.sh and export its output (make test does)")
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{filepath.Join("..", "..", "config", "crd", "bases")}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	kc, err := crclient.NewWithWatch(cfg, crclient.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	setStatus := func(ns *v1alpha1.NamingService, members ...v1alpha1.Member) {
		t.Helper()
		ns.Status = v1alpha1.NamingServiceStatus{Bound: int32(len(members)), Members: members}
		if err := kc.Status().Update(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	db := &v1alpha1.NamingService{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Spec: v1alpha1.NamingServiceSpec{Service: "db", Scheme: "Masterful"}}
	web := &v1alpha1.NamingService{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: v1alpha1.NamingServiceSpec{Service: "web"}}
	for _, o := range []*v1alpha1.NamingService{db, web} {
		if err := kc.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	setStatus(db, v1alpha1.Member{Hostname: "db-slave-1", InstanceID: "i-2", IP: "10.0.2.2"}, v1alpha1.Member{Hostname: "db-master", InstanceID: "i-1", IP: "10.0.2.1"})

	sel, err := client.ParseSelector("service=db")
	if err != nil {
		t.Fatal(err)
	}
	batches := make(chan string)
	done := make(chan error, 1)
	wctx, stop := context.WithCancel(ctx)
	go func() {
		done <- New(kc).Watch(wctx, sel, func(ev []client.Event) error {
			select {
			case batches <- summary(ev):
			case <-wctx.Done():
			}
			return nil
		})
	}()
	next := func(want string) {
		t.Helper()
		select {
		case got := <-batches:
			if got != want {
				t.Errorf("batch = %q, want %q", got, want)
			}
		case <-ctx.Done():
			t.Fatalf("no batch; want %q", want)
		}
	}
	next("ADDED db-master i-1, ADDED db-slave-1 i-2")
	// web is filtered out: its update must not show up before db's.
	setStatus(web, v1alpha1.Member{Hostname: "web-0", InstanceID: "i-5", IP: "10.0.1.5"})
	setStatus(db, v1alpha1.Member{Hostname: "db-master", InstanceID: "i-2", IP: "10.0.2.2"}, v1alpha1.Member{Hostname: "db-slave-2", InstanceID: "i-3", IP: "10.0.2.3"})
	next("MODIFIED db-master i-2, DELETED db-slave-1 i-2, ADDED db-slave-2 i-3")
	if err := kc.Delete(ctx, db); err != nil {
		t.Fatal(err)
	}
	next("DELETED db-master i-2, DELETED db-slave-2 i-3")
	stop()
	if err := <-done; err != nil {
		t.Errorf("Watch after cancel = %v, want nil", err)
	}
}
