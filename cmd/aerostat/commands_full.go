//go:build !agentonly

package main

import "github.com/spf13/cobra"

// addFullCommands adds what the node agent's build (-tags agentonly, the
// aerostat-agent image) leaves out: the controller, the embedded store,
// inspection, planning and (for now) register and promote, with their
// EC2, Kubernetes and FerretDB code.
func addFullCommands(root *cobra.Command) {
	root.AddCommand(
		newGetCmd(),
		newDescribeCmd(),
		newCompletionCmd(root),
		newDemoCmd(),
		newStoreCmd(),
		newControllerCmd(),
		newPlanCmd(),
		newAdoptCmd(),
		// register and promote call the attestation client and the alias
		// rules, which still live beside server code (internal/attest
		// imports the EC2 client, the alias guard is in controllers).
		newRegisterCmd(),
		newPromoteCmd(),
	)
}
