//go:build !agentonly

package main

import "github.com/spf13/cobra"

// addFullCommands adds what the node agent's build (-tags agentonly, the
// aerostat-agent image) leaves out: the controller, the embedded store,
// inspection and planning, with their EC2, Kubernetes and FerretDB code.
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
	)
}
