package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/aerostat-io/aerostat/api/v1alpha1"
)

var wantColumns = []string{"Service", "Scheme", "Bound", "Gaps", "Master", "Ready", "Age"}

func reqFor(name string) ctrl.Request {
	return ctrl.Request{NamespacedName: client.ObjectKey{Name: name}}
}

// TestCRDPrinterColumns checks the generated CRD file.
func TestCRDPrinterColumns(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "config", "crd", "bases", "aerostat.io_namingservices.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatal(err)
	}
	if crd.Spec.Scope != apiextensionsv1.ClusterScoped {
		t.Errorf("scope = %s, want Cluster", crd.Spec.Scope)
	}
	// kubectl get shows the priority 0 columns; -o wide adds the others.
	var got []string
	for _, c := range crd.Spec.Versions[0].AdditionalPrinterColumns {
		if c.Priority == 0 {
			got = append(got, c.Name)
		}
	}
	if !slices.Equal(got, wantColumns) {
		t.Errorf("default printer columns = %v, want %v", got, wantColumns)
	}
}

// TestKubectlGetTable asks the API server for the table kubectl get shows.
func TestKubectlGetTable(t *testing.T) {
	cfg, c := envtestClient(t)
	r := newRig(t)
	r.launch(3, "tbl")
	createService(t, c, v1alpha1.NamingServiceSpec{Service: "tbl"})
	r.reconciler(c, r.store).pass(t, "tbl")

	rc := rest.CopyConfig(cfg)
	rc.GroupVersion = &v1alpha1.GroupVersion
	rc.APIPath = "/apis"
	rc.NegotiatedSerializer = serializer.NewCodecFactory(kube.scheme).WithoutConversion()
	rest, err := rest.RESTClientFor(rc)
	if err != nil {
		t.Fatal(err)
	}
	body, err := rest.Get().Resource("namingservices").Name("tbl").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
		DoRaw(context.Background())
	if err != nil {
		t.Fatalf("table request: %v", err)
	}
	var table metav1.Table
	if err := json.Unmarshal(body, &table); err != nil {
		t.Fatalf("decoding table: %v\n%s", err, body)
	}
	// The server prepends Name; kubectl get shows the priority 0 columns.
	var cols []string
	var shown []int
	for i, c := range table.ColumnDefinitions {
		if c.Priority == 0 {
			cols = append(cols, c.Name)
			shown = append(shown, i)
		}
	}
	if !slices.Equal(cols, append([]string{"Name"}, wantColumns...)) {
		t.Fatalf("table columns = %v, want Name + %v", cols, wantColumns)
	}
	if len(table.Rows) != 1 {
		t.Fatalf("table rows = %d, want 1", len(table.Rows))
	}
	var row []any
	for _, i := range shown {
		row = append(row, table.Rows[0].Cells[i])
	}
	t.Logf("kubectl get namingservices:\n%s", kubectlText(cols, row))
	if row[1] != "tbl" || row[2] != "Iterative" || row[3] != float64(3) || row[4] != float64(0) || row[6] != "True" {
		t.Errorf("row = %v, want tbl Iterative 3 0 <none> True <age>", row)
	}
}

// kubectlText lays out one table row the way kubectl get prints it.
func kubectlText(cols []string, row []any) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 8, 3, ' ', 0)
	for i, c := range cols {
		if i > 0 {
			fmt.Fprint(w, "\t")
		}
		fmt.Fprint(w, strings.ToUpper(c))
	}
	fmt.Fprintln(w)
	for i, c := range row {
		if i > 0 {
			fmt.Fprint(w, "\t")
		}
		if c == nil {
			c = "<none>"
		}
		fmt.Fprint(w, c)
	}
	fmt.Fprintln(w)
	_ = w.Flush()
	return b.String()
}
