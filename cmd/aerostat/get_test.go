package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// runCmd runs the aerostat command line with args and returns its output.
func runCmd(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

var seedTime = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

// seedLedger names web-0..web-11 (web-1 then freed) and db-master,
// db-slave-1 in a fresh database; it returns --server/--database flags.
func seedLedger(t *testing.T) []string {
	t.Helper()
	db := ledgertest.Database(t)
	store := ledgertest.Open(t, ledger.Options{Database: db})
	web := testInstances("i-0a", "10.0.1.", 12)
	claim(t, store, "web", naming.Iterative, web)
	web[1].State = naming.StateTerminated
	claim(t, store, "web", naming.Iterative, web)
	claim(t, store, "db", naming.Masterful, testInstances("i-0d", "10.0.2.", 2))
	return []string{"--ledger", ledgertest.URI(t), "--database", db}
}

func testInstances(idPrefix, ipPrefix string, n int) []naming.Instance {
	var out []naming.Instance
	for i := range n {
		out = append(out, naming.Instance{ID: fmt.Sprintf("%s%015d", idPrefix, i+1), PrivateIP: fmt.Sprintf("%s%d", ipPrefix, i+1),
			State: naming.StateRunning, LaunchTime: seedTime.Add(time.Duration(i) * time.Minute)})
	}
	return out
}

func claim(t *testing.T, store ledger.Store, service string, scheme naming.Scheme, in []naming.Instance) {
	t.Helper()
	_, err := ledger.Claim(context.Background(), store, service, func(recs []naming.Record) (naming.Result, error) {
		return naming.Plan(naming.Input{Policy: naming.Policy{Service: service, Scheme: scheme}, Records: recs,
			Observed: naming.Observation{Instances: in, Complete: true}, Now: seedTime.Add(time.Hour)})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestGetNames(t *testing.T) {
	srv := seedLedger(t)
	out, _, err := runCmd(t, append([]string{"get", "names", "-l", "service=web"}, srv...)...)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "NAME SERVICE STATE INSTANCE IP AGE" {
		t.Errorf("header = %q", lines[0])
	}
	var order []string
	for _, l := range lines[1:] {
		order = append(order, strings.Fields(l)[0])
	}
	if got, want := strings.Join(order, " "), "web-0 web-1 web-2 web-3 web-4 web-5 web-6 web-7 web-8 web-9 web-10 web-11"; got != want {
		t.Errorf("names in order %q, want %q", got, want)
	}
	// Columns line up: each header starts where its cells start.
	col := strings.Index(lines[0], "INSTANCE")
	for _, l := range lines[1:] {
		if l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("row %q is not aligned with the INSTANCE column at %d", l, col)
		}
	}
	if !strings.Contains(lines[2], "free") || !strings.Contains(lines[2], "<none>") {
		t.Errorf("web-1 row = %q, want free with <none> instance", lines[2])
	}
}

func TestGetNamesJSON(t *testing.T) {
	srv := seedLedger(t)
	out, _, err := runCmd(t, append([]string{"get", "names", "-o", "json", "-l", "service=db"}, srv...)...)
	if err != nil {
		t.Fatal(err)
	}
	var docs []map[string]any
	if err := json.Unmarshal([]byte(out), &docs); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if len(docs) != 2 {
		t.Fatalf("got %d records, want 2", len(docs))
	}
	m := docs[0]
	want := map[string]any{"hostname": "db-master", "ip": "10.0.2.1", "service": "db", "service_type": "masterful",
		"instance_id": "i-0d000000000000001", "state": "bound", "role": "master", "ordinal": float64(0)}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	for _, k := range []string{"aliases", "updated_at"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no field %s", k)
		}
	}

	out, _, err = runCmd(t, append([]string{"get", "names", "web-3", "-o", "json"}, srv...)...)
	if err != nil {
		t.Fatal(err)
	}
	var one map[string]any
	if err := json.Unmarshal([]byte(out), &one); err != nil || one["hostname"] != "web-3" {
		t.Errorf("get names web-3 -o json = %s (%v), want one object", out, err)
	}
}

// The kubectl output flags reach the printers: the CLI only wires them.
func TestGetOutputFlags(t *testing.T) {
	srv := seedLedger(t)
	tests := map[string]struct {
		args []string
		want string
	}{
		"name":           {[]string{"get", "names", "-l", "service=db", "-o", "name"}, "name/db-master\nname/db-slave-1\n"},
		"jsonpath":       {[]string{"get", "names", "-l", "service=db", "-o", "jsonpath={.items[*].ip}"}, "10.0.2.1 10.0.2.2"},
		"custom-columns": {[]string{"get", "names", "-l", "role=master", "-o", "custom-columns=NAME:.hostname,IP:.ip", "--no-headers"}, "db-master   10.0.2.1\n"},
		"services name":  {[]string{"get", "services", "db", "-o", "name"}, "service/db\n"},
		// -l is apimachinery's label selector: set-based terms work.
		"selector in":       {[]string{"get", "names", "-l", "service in (db),state notin (free)", "-o", "name"}, "name/db-master\nname/db-slave-1\n"},
		"selector no role":  {[]string{"get", "names", "-l", "!role,state=free", "-o", "name"}, "name/web-1\n"},
		"services selector": {[]string{"get", "services", "-l", "service_type=Masterful", "-o", "name"}, "service/db\n"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			out, _, err := runCmd(t, append(tt.args, srv...)...)
			if err != nil || out != tt.want {
				t.Errorf("%v = %q, %v; want %q", tt.args, out, err, tt.want)
			}
		})
	}
}

func TestGetErrors(t *testing.T) {
	srv := seedLedger(t)
	tests := map[string]struct {
		args []string
		want string
	}{
		"resource":        {[]string{"get", "pods"}, `resource "pods"`},
		"format":          {[]string{"get", "names", "-o", "jsonpath"}, `-o "jsonpath": jsonpath needs a template`},
		"bad jsonpath":    {[]string{"get", "names", "-o", "jsonpath={.items[*]"}, `-o "jsonpath={.items[*]": template "{.items[*]"`},
		"bad timeout":     {[]string{"get", "names", "--request-timeout", "soon"}, `--request-timeout "soon"`},
		"bad columns":     {[]string{"get", "services", "-o", "custom-columns=SERVICE"}, `column "SERVICE": want HEADER:.field`},
		"selector":        {[]string{"get", "names", "-l", "colour=red"}, `-l/--selector "colour=red": key "colour": want one of service, service_type, state, role`},
		"selector syntax": {[]string{"get", "names", "-l", "service=web=x"}, `-l/--selector "service=web=x": `},
		"selector state":  {[]string{"get", "names", "--selector", "state=gone"}, `-l/--selector "state=gone": state "gone": want bound, free or pending`},
		"services key":    {[]string{"get", "services", "-l", "role=master"}, `-l/--selector "role=master": key "role": want one of service, service_type`},
		"missing name":    {[]string{"get", "names", "web-99"}, `name "web-99" not found`},
		"missing svc":     {[]string{"describe", "service", "cache"}, `service "cache" not found`},
		"watch service":   {[]string{"get", "services", "--watch"}, "--watch"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, _, err := runCmd(t, append(tt.args, srv...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one mentioning %s", err, tt.want)
			}
		})
	}
	_, _, err := runCmd(t, "get", "names", "--ledger", "http://x")
	if err == nil || !strings.Contains(err.Error(), `"http://x"`) {
		t.Errorf("bad --ledger: err = %v", err)
	}
}

func TestGetServicesAndDescribe(t *testing.T) {
	srv := seedLedger(t)
	out, _, err := runCmd(t, append([]string{"get", "services"}, srv...)...)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %q", out)
	}
	if got := strings.Fields(lines[1]); strings.Join(got[:5], " ") != "db masterful 2 0 i-0d000000000000001" {
		t.Errorf("db row = %q", lines[1])
	}
	if got := strings.Fields(lines[2]); strings.Join(got[:5], " ") != "web iterative 11 1 <none>" {
		t.Errorf("web row = %q", lines[2])
	}

	out, _, err = runCmd(t, append([]string{"describe", "name", "db-slave-1"}, srv...)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Name:         db-slave-1", "Role:         slave", "Ordinal:      1", "Instance:     i-0d000000000000002", "Claimed:      2026-", "ago)"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe name output lacks %q:\n%s", want, out)
		}
	}
	out, _, err = runCmd(t, append([]string{"describe", "service", "db"}, srv...)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Service Type: masterful", "Master:       db-master (i-0d000000000000001)", "Names:", "  NAME ", "  db-slave-1 "} {
		if !strings.Contains(out, want) {
			t.Errorf("describe service output lacks %q:\n%s", want, out)
		}
	}
}

func TestCompletion(t *testing.T) {
	srv := seedLedger(t)
	out, _, err := runCmd(t, append(append([]string{"__complete", "get"}, srv...), "services", "")...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "db\nweb\n:4\n") {
		t.Errorf("service completion = %q, want db, web and NoFileComp", out)
	}
	out, _, err = runCmd(t, append(append([]string{"__complete", "describe"}, srv...), "name", "db-")...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "db-master\ndb-slave-1\n:4\n") {
		t.Errorf("name completion = %q", out)
	}
	out, _, err = runCmd(t, append(append([]string{"__complete", "get", "names"}, srv...), "-l", "service=w")...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "service=web\n") {
		t.Errorf("selector completion = %q", out)
	}
	out, _, err = runCmd(t, "__complete", "get", "")
	if err != nil || !strings.Contains(out, "names\t") || !strings.Contains(out, "services\t") {
		t.Errorf("resource completion = %q, %v", out, err)
	}
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		out, _, err := runCmd(t, "completion", shell)
		if err != nil || !strings.Contains(out, "aerostat") {
			t.Errorf("completion %s: %v, %d bytes", shell, err, len(out))
		}
	}
}

// TestKubectlPlugin runs the binary's command line as kubectl-aerostat
// against envtest: with no --server it reads NamingService status.
func TestKubectlPlugin(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is unset: run hack/setup-envtest.sh and export its output (make test does)")
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	user, err := env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}

	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	kc, err := crclient.New(cfg, crclient.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	since := metav1.NewTime(time.Now().Add(-10 * time.Minute).Truncate(time.Second))
	ns := &v1alpha1.NamingService{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Spec: v1alpha1.NamingServiceSpec{Service: "db", Scheme: "Masterful"}}
	if err := kc.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	ns.Status = v1alpha1.NamingServiceStatus{Bound: 2, Master: "i-0d1", Members: []v1alpha1.Member{
		{Hostname: "db-slave-1", InstanceID: "i-0d2", IP: "10.0.2.2", Since: &since},
		{Hostname: "db-master", InstanceID: "i-0d1", IP: "10.0.2.1", Since: &since},
	}, Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Synced", LastTransitionTime: since}}}
	if err := kc.Status().Update(ctx, ns); err != nil {
		t.Fatal(err)
	}

	oldArg0 := os.Args[0]
	os.Args[0] = "/usr/local/bin/kubectl-aerostat"
	t.Cleanup(func() { os.Args[0] = oldArg0 })
	t.Setenv("KUBECONFIG", path)
	t.Setenv("AEROSTAT_SERVER", "127.0.0.1:1") // must not be used

	out, _, err := runCmd(t, "get", "services")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// The last column is the object's age, which depends on when the test ran.
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "SERVICE TYPE BOUND GAPS MASTER READY HOLD-BACK POLICY AGE" ||
		!strings.HasPrefix(strings.Join(strings.Fields(lines[1]), " "), "db masterful 2 0 i-0d1 True 3m0s NamingService db ") {
		t.Errorf("kubectl aerostat get services =\n%s", out)
	}
	out, _, err = runCmd(t, "get", "names", "--context", user.Config().Host, "-o", "name")
	if err == nil {
		t.Errorf("unknown --context accepted: %s", out)
	}
	out, _, err = runCmd(t, "get", "names", "--kubeconfig", path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "db-master") || strings.Index(out, "db-master") > strings.Index(out, "db-slave-1") || !strings.Contains(out, "10m") {
		t.Errorf("kubectl aerostat get names =\n%s", out)
	}
	out, _, err = runCmd(t, "--help")
	if err != nil || !strings.Contains(out, "kubectl aerostat [command]") {
		t.Errorf("plugin help does not say kubectl aerostat: %v\n%s", err, out)
	}
}
