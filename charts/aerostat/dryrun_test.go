package chart_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"helm.sh/helm/v3/pkg/releaseutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// TestDryRunApply installs the chart's CRDs into a real API server (envtest)
// and then creates every rendered object of every variant with a server-side
// dry run: the API server's own validation and admission judge the chart.
// The kustomize bases and samples under config/ go through the same check.
func TestDryRunApply(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set: run `make test`, or export KUBEBUILDER_ASSETS=$(hack/setup-envtest.sh)")
	}
	env := &envtest.Environment{
		// Installed for real, as helm installs crds/ before the templates.
		CRDDirectoryPaths:     []string{"crds", "testdata/crds"},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}

	ch := loadChart(t)
	for name, values := range variants {
		t.Run("chart/"+name, func(t *testing.T) {
			r := mustRender(t, ch, values)
			if len(r.objects) == 0 {
				t.Fatal("nothing rendered")
			}
			for _, obj := range r.objects {
				dryRunCreate(ctx, t, c, obj)
			}
		})
	}

	for _, dir := range []string{"manager", "agent", "samples"} {
		t.Run("config/"+dir, func(t *testing.T) {
			files, _ := filepath.Glob(filepath.Join(repoRoot, "config", dir, "*.yaml"))
			n := 0
			for _, f := range files {
				if filepath.Base(f) == "kustomization.yaml" {
					continue
				}
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				for _, doc := range releaseutil.SplitManifests(string(data)) {
					obj := map[string]any{}
					if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
						t.Fatalf("%s: %v", f, err)
					}
					if len(obj) == 0 {
						continue
					}
					dryRunCreate(ctx, t, c, &unstructured.Unstructured{Object: obj})
					n++
				}
			}
			if n == 0 {
				t.Fatalf("no objects in config/%s", dir)
			}
		})
	}
}

func dryRunCreate(ctx context.Context, t *testing.T, c client.Client, obj *unstructured.Unstructured) {
	t.Helper()
	what := obj.GetKind() + "/" + obj.GetName()
	if err := c.Create(ctx, obj.DeepCopy(), client.DryRunAll); err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	t.Logf("%s: accepted", what)
}
