package chart_test

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// TestControllerMemoryLimitEnv: the controller learns its container's
// memory limit, in bytes, to set GOMEMLIMIT from it (internal/memlimit).
func TestControllerMemoryLimitEnv(t *testing.T) {
	ch := loadChart(t)
	for name, values := range map[string]string{
		"defaults":           "",
		"user's GOMEMLIMIT":  "controller: {extraEnv: [{name: GOMEMLIMIT, value: 100MiB}]}",
		"other memory limit": "controller: {resources: {limits: {memory: 1Gi}}}",
	} {
		t.Run(name, func(t *testing.T) {
			var d appsv1.Deployment
			typed(t, mustRender(t, ch, values), "Deployment", "aerostat-controller", &d)
			c := container(t, d.Spec.Template.Spec, "controller")
			env := envByName(c.Env)
			ref := env["AEROSTAT_MEMORY_LIMIT"].ValueFrom
			if ref == nil || ref.ResourceFieldRef == nil {
				t.Fatalf("AEROSTAT_MEMORY_LIMIT = %+v, want a resourceFieldRef", env["AEROSTAT_MEMORY_LIMIT"])
			}
			f := ref.ResourceFieldRef
			if f.Resource != "limits.memory" || f.ContainerName != "controller" || !f.Divisor.Equal(resource.MustParse("1")) {
				t.Errorf("resourceFieldRef = %+v, want limits.memory of container controller in bytes", f)
			}
			if _, ok := c.Resources.Limits["memory"]; !ok {
				t.Errorf("the controller has no memory limit: the env would carry the node's memory")
			}
			if name == "user's GOMEMLIMIT" && env["GOMEMLIMIT"].Value != "100MiB" {
				t.Errorf("extraEnv GOMEMLIMIT lost: %+v", env["GOMEMLIMIT"])
			}
		})
	}
}
