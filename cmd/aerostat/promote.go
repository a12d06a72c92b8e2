package main

import (
	"github.com/spf13/cobra"
)

func newPromoteCmd() *cobra.Command {
	var f registerFlags
	cmd := &cobra.Command{
		Use:   "promote",
		Short: "Make this instance the master of its masterful service (1.x --change-master)",
		Long: `Takes <service>-master for this instance (or --instance-id). The old
master takes the lowest free slave number, like a new node. Refused for
iterative services and when this instance already is the master.

With --controller the controller promotes only an attested instance
tagged with the service (see register --help); without it the node
writes the ledger directly and is trusted (1.x migration mode).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.holdBackSet = cmd.Flags().Changed("hold-back")
			return runClaim(cmd.Context(), &f, true, cmd.OutOrStdout())
		},
	}
	f.register(cmd.Flags())
	return cmd
}
