package main

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// exitError carries a specific exit status (e.g. `aerostat plan` exits 2
// when changes are pending).
type exitError struct {
	code int
	err  error
	// silent: the command's output already says it; main prints nothing.
	silent bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "aerostat",
		Short:         "Stable human names for cloud machines, in every /etc/hosts",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// Each subcommand lives in its own file; add one line per command here
	// (node commands) or in commands_full.go (everything else).
	root.AddCommand(
		newVersionCmd(),
		newAgentCmd(),
		newUpdateCmd(),
		newRegisterCmd(),
		newPromoteCmd(),
	)
	addFullCommands(root)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rev := ""
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						rev = " " + s.Value
					}
				}
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "aerostat %s%s %s %s/%s\n", version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}
