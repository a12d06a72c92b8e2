package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestAgentBuildLeavesOutServerCode: the node agent's build (-tags
// agentonly, the aerostat-agent image on every node) must not link the
// embedded store, the controller, the AWS SDK or client-go's typed clients;
// one stray import puts them all back (96 MB instead of 20).
func TestAgentBuildLeavesOutServerCode(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not on PATH; cannot list the agent build's packages")
	}
	out, err := exec.Command(gobin, "list", "-tags", "agentonly", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -tags agentonly -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 {
		t.Fatalf("go list found only %d packages: %s", len(deps), out)
	}
	forbidden := map[string]string{
		"github.com/FerretDB/":                            "the embedded store",
		"modernc.org/sqlite":                              "the embedded store",
		"github.com/aerostat-io/aerostat/internal/store":  "the embedded store",
		"github.com/aerostat-io/aerostat/controllers":     "the controller",
		"github.com/aerostat-io/aerostat/internal/cloud":  "the EC2 client (AWS SDK); use internal/imds",
		"github.com/aerostat-io/aerostat/internal/events": "the SQS events (AWS SDK)",
		"github.com/aws/":                                 "the AWS SDK; use internal/imds for instance metadata",
		"sigs.k8s.io/controller-runtime/pkg/manager":      "the controller manager",
		"sigs.k8s.io/controller-runtime/pkg/metrics":      "controller-runtime's registry (brings client-go)",
		"k8s.io/client-go/":                               "client-go",
	}
	// register and promote are node commands too: their client side must
	// stay in this build (see TestAgentBuildNodeCommands).
	for _, want := range []string{
		"github.com/aerostat-io/aerostat/internal/attestclient",
		"github.com/aerostat-io/aerostat/internal/nodeclaim",
	} {
		if !slices.Contains(deps, want) {
			t.Errorf("the agent build lacks %s: register and promote are left out of it", want)
		}
	}
	seen := map[string]bool{}
	for _, d := range deps {
		for prefix, what := range forbidden {
			if strings.HasPrefix(d, prefix) && !seen[prefix] {
				seen[prefix] = true
				t.Errorf("the agent build imports %s (%s): keep it behind //go:build !agentonly or out of the node commands' imports", d, what)
			}
		}
	}
}
