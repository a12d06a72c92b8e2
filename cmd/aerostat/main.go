// Command aerostat is Aerostat's single binary: controller, node agent,
// registration, inspection and the embedded demo. Installed as
// kubectl-aerostat it is also a kubectl plugin.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit status. 1.x command
// lines (aerostat --update --daemon …) become 2.x commands, run in order;
// the first failure stops the rest.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds, err := translateLegacyArgs(args)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 2
	}
	for _, args := range cmds {
		root := newRootCmd()
		root.SetArgs(args)
		root.SetOut(stdout)
		root.SetErr(stderr)
		if err := root.ExecuteContext(ctx); err != nil {
			if ee := (*exitError)(nil); !errors.As(err, &ee) || !ee.silent {
				fmt.Fprintln(stderr, "error:", err)
			}
			return exitCode(err)
		}
	}
	return 0
}
