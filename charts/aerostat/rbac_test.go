package chart_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// TestConfigMapRulesByName: no Role the chart or the kustomize config
// gives the controller can read or write ConfigMaps other than the hosts
// ConfigMap it keeps: a rule on configmaps names it (resourceNames) and
// allows get/update only, so kube-system's aws-auth or coredns stay out
// of reach, whichever namespace the Role is in.
func TestConfigMapRulesByName(t *testing.T) {
	var roles []*unstructured.Unstructured
	for _, o := range mustRender(t, loadChart(t), "controller: {hostsConfigMap: {enabled: true}}\n").objects {
		if o.GetKind() == "Role" || o.GetKind() == "ClusterRole" {
			roles = append(roles, o)
		}
	}
	b, err := os.ReadFile("../../config/rbac/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(b), "\n---\n") {
		o := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &o.Object); err != nil {
			t.Fatal(err)
		}
		roles = append(roles, o)
	}
	seen := 0
	for _, o := range roles {
		var role rbacv1.ClusterRole // the rules of a Role read the same
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &role); err != nil {
			t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
		}
		for i, r := range role.Rules {
			if !slices.Contains(r.APIGroups, "") && !slices.Contains(r.APIGroups, "*") {
				continue
			}
			if !slices.Contains(r.Resources, "configmaps") && !slices.Contains(r.Resources, "*") {
				continue
			}
			seen++
			if len(r.ResourceNames) != 1 || r.ResourceNames[0] != "aerostat-hosts" {
				t.Errorf("%s %s rule %d: configmaps with resourceNames %v, want only aerostat-hosts", o.GetKind(), o.GetName(), i, r.ResourceNames)
			}
			for _, v := range r.Verbs {
				if v != "get" && v != "update" {
					t.Errorf("%s %s rule %d: verb %q on configmaps, want get and update only", o.GetKind(), o.GetName(), i, v)
				}
			}
		}
	}
	if seen < 2 {
		t.Errorf("found %d configmap rules in the chart and config/rbac, want the hosts ConfigMap's in both", seen)
	}
}
