package chart_test

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

// The opt-in extras: the hosts ConfigMap for CoreDNS (with a Role on that
// one ConfigMap in CoreDNS's namespace), tag write-back and the EC2 budget.
func TestControllerExtras(t *testing.T) {
	ch := loadChart(t)
	args := func(r rendered) string {
		t.Helper()
		var d appsv1.Deployment
		typed(t, r, "Deployment", "aerostat-controller", &d)
		return strings.Join(container(t, d.Spec.Template.Spec, "controller").Args, " ")
	}

	def := mustRender(t, ch, "")
	if a := args(def); !strings.Contains(a, "--ec2-calls-per-second=5") || !strings.Contains(a, "--ec2-burst=1") ||
		strings.Contains(a, "--tag-write-back") || strings.Contains(a, "--hosts-configmap") || strings.Contains(a, "--sqs-") {
		t.Errorf("default args: %s", a)
	}
	if r := def.find("Role", "aerostat-controller-hosts"); r != nil {
		t.Error("hosts Role rendered while hostsConfigMap is off")
	}

	on := mustRender(t, ch, `
controller:
  ec2CallsPerSecond: 2.5
  ec2Burst: 3
  tagWriteBack: {enabled: true, maxPerPass: 7}
  hostsConfigMap: {enabled: true, namespace: dns, name: fleet-hosts}
  events: {sqsQueueURL: "https://sqs.eu-west-1.amazonaws.com/123456789012/aerostat-events", pollInterval: 2m}
  attestNodes: {enabled: true, accounts: ["123456789012", "210987654321"], nodeCIDRs: [10.20.0.0/16]}
aws: {sqsEndpoint: "http://sqs.local:9324"}
`)
	a := args(on)
	for _, want := range []string{"--ec2-calls-per-second=2.5", "--ec2-burst=3", "--tag-write-back", "--tag-write-back-per-pass=7", "--hosts-configmap=dns/fleet-hosts",
		"--sqs-queue-url=https://sqs.eu-west-1.amazonaws.com/123456789012/aerostat-events", "--events-poll-interval=2m", "--sqs-endpoint=http://sqs.local:9324",
		"--attest-nodes", "--attest-accounts=123456789012,210987654321"} {
		if !strings.Contains(a, want) {
			t.Errorf("args lack %s: %s", want, a)
		}
	}
	if a := args(def); strings.Contains(a, "--attest") {
		t.Errorf("attestation on by default: %s", a)
	}
	// Attesting machines reach the feed port through its NetworkPolicy,
	// beside the agent pods; nothing else is opened.
	var np networkingv1.NetworkPolicy
	typed(t, on, "NetworkPolicy", "aerostat-feed", &np)
	var blocks []string
	for _, rule := range np.Spec.Ingress {
		for _, peer := range rule.From {
			if peer.IPBlock != nil {
				blocks = append(blocks, peer.IPBlock.CIDR)
				if len(rule.Ports) != 1 || rule.Ports[0].Port.String() != "feed" {
					t.Errorf("node CIDR %s opens %+v, want only the feed port", peer.IPBlock.CIDR, rule.Ports)
				}
			}
		}
	}
	if !slices.Equal(blocks, []string{"10.20.0.0/16"}) {
		t.Errorf("feed NetworkPolicy ipBlocks %v, want [10.20.0.0/16]", blocks)
	}
	var role rbacv1.Role
	typed(t, on, "Role", "aerostat-controller-hosts", &role)
	if role.Namespace != "dns" {
		t.Errorf("hosts Role in %q, want dns", role.Namespace)
	}
	// get and update of that one ConfigMap, nothing else: no create (it
	// cannot be limited by name, and would let the controller make an
	// aws-auth), so the chart makes the ConfigMap itself.
	if len(role.Rules) != 1 {
		t.Errorf("hosts Role has %d rules, want 1: %+v", len(role.Rules), role.Rules)
	}
	for _, rule := range role.Rules {
		if !slices.Equal(rule.APIGroups, []string{""}) || !slices.Equal(rule.Resources, []string{"configmaps"}) {
			t.Errorf("hosts Role grants more than configmaps: %+v", rule)
		}
		if !slices.Equal(rule.ResourceNames, []string{"fleet-hosts"}) {
			t.Errorf("hosts Role rule %+v is not limited to fleet-hosts", rule)
		}
		if v := slices.Sorted(slices.Values(rule.Verbs)); !slices.Equal(v, []string{"get", "update"}) {
			t.Errorf("hosts Role rule verbs %v, want get and update", v)
		}
	}
	var cm corev1.ConfigMap
	typed(t, on, "ConfigMap", "fleet-hosts", &cm)
	if cm.Namespace != "dns" || cm.Labels["aerostat.io/hosts-configmap"] != "true" || cm.Annotations["helm.sh/resource-policy"] != "keep" || len(cm.Data) != 0 {
		t.Errorf("hosts ConfigMap %+v: want it in dns, labelled, kept on uninstall, data left to the controller", cm.ObjectMeta)
	}
	var rb rbacv1.RoleBinding
	typed(t, on, "RoleBinding", "aerostat-controller-hosts", &rb)
	if rb.Namespace != "dns" || rb.RoleRef.Name != role.Name || len(rb.Subjects) != 1 || rb.Subjects[0].Name != "aerostat-controller" || rb.Subjects[0].Namespace != namespace {
		t.Errorf("hosts RoleBinding %+v does not bind the controller's ServiceAccount", rb)
	}

	for name, bad := range map[string]string{
		"zero budget":      `controller: {ec2CallsPerSecond: 0}`,
		"bad namespace":    `controller: {hostsConfigMap: {enabled: true, namespace: Kube_System}}`,
		"unknown key":      `controller: {tagWriteBack: {enable: true}}`,
		"zero tags a pass": `controller: {tagWriteBack: {enabled: true, maxPerPass: 0}}`,
	} {
		if _, err := renderChart(ch, parseValues(t, bad)); err == nil {
			t.Errorf("%s: rendered without error", name)
		}
	}
}
