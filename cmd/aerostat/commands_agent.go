//go:build agentonly

package main

import "github.com/spf13/cobra"

// addFullCommands adds nothing in the node agent's build: it runs agent,
// update, register and promote only, without the store, the controller or
// the AWS SDK (see agentdeps_test.go).
func addFullCommands(*cobra.Command) {}
