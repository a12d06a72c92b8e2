// Command aerostat is Aerostat's single binary: controller, node agent,
// registration, inspection and the embedded demo. Installed as
// kubectl-aerostat it is also a kubectl plugin.
package main

import (
	"fmt"
	"os"
)

func main() {
	// 1.x command lines (aerostat --update --daemon …) become 2.x commands.
	cmds, err := translateLegacyArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	for _, args := range cmds {
		root := newRootCmd()
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(exitCode(err))
		}
	}
}
