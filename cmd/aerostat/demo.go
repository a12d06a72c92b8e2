//go:build !agentonly

package main

import (
	"errors"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/aerostat-io/aerostat/internal/demo"
)

func newDemoCmd() *cobra.Command {
	var o demo.Options
	var logs logFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Play the whole system on this machine: store, fleet, controller, feed, agents",
		Long: `Starts the embedded store, a simulated EC2 fleet, the controller in standalone
mode serving its HTTP feed on a loopback port, and three agents following
that feed, each writing a hosts file (the first one --hosts-file), then plays
a story: web and db fleets are named, nodes die and leave gaps, new nodes
refill them, a db slave is promoted. After each change it prints how long it
took until the feed saw every agent's hosts file at the new rev. Then it
keeps running with live changes until Ctrl-C.

With --once it stops after the story and exits non-zero unless every
invariant held (no duplicate names, every running instance named, every
agent at the final rev, the hosts files matching the ledger). Nothing to
install: this is what make run does.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Everything the demo has to say is the story; the components'
			// logs would drown it, unless a log level is asked for.
			log := logr.Discard()
			if logs.given() {
				var err error
				if log, err = logs.logger(cmd.ErrOrStderr()); err != nil {
					return err
				}
			}
			ctrllog.SetLogger(log)
			o.Logger = log
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			o.Out = cmd.OutOrStdout()
			_, err := demo.Run(ctx, o)
			if errors.Is(err, demo.ErrInvariant) {
				return &exitError{code: 1, err: err}
			}
			if err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.HostsFile, "hosts-file", "demo-hosts", "hosts file the first agent keeps (the others write theirs in the data dir)")
	fl.IntVar(&o.Web, "web", 5, "web (iterative) fleet size")
	fl.IntVar(&o.DB, "db", 3, "db (masterful) fleet size")
	fl.DurationVar(&o.StepDelay, "step-delay", time.Second, "pause after each step of the story (0: none)")
	fl.DurationVar(&o.ChurnEvery, "churn-every", 5*time.Second, "after the story, replace a web node this often")
	logs.registerForReport(fl)
	fl.BoolVar(&o.Once, "once", false, "exit after the story; status 0 only if every invariant held")
	fl.StringVar(&o.DataDir, "data-dir", "", "store directory (default: a temp dir, removed at exit)")
	return cmd
}
