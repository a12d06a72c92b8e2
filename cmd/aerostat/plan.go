//go:build !agentonly

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/naming"
	"github.com/aerostat-io/aerostat/internal/table"
)

// exitPending is `aerostat plan`'s status when the next pass would write.
const exitPending = 2

type planFlags struct {
	storeFlags
	log                         logFlags
	ec2Endpoint, region, output string
	services                    []string
	reap                        reapFlags
	timeout                     time.Duration
}

func newPlanCmd() *cobra.Command {
	var f planFlags
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show the changes the next controller pass would make, without writing (exit 2 when some are pending)",
		Long: `Lists EC2 and reads the ledger as the standalone controller does, plans
every service and prints what the next pass would do: names bound and
released, master moves, alias moves, IP updates, releases deferred by the
reap cap, and names held back (with the reason and until when). Nothing is
written. Exit status: 0 nothing to do, 2 changes pending, 1 error.

plan keeps no memory between runs: the grace periods of absent and stopped
instances start at the plan's own time, while the running controller has
counted since it first saw them, so it may act on them earlier than shown.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPlan(cmd.Context(), f, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	f.storeFlags.register(fl)
	f.log.registerForReport(fl)
	fl.StringVar(&f.ec2Endpoint, "ec2-endpoint", "", "EC2 API endpoint URL (default: AWS_ENDPOINT_URL_EC2 or the region's endpoint)")
	fl.StringVar(&f.region, "region", "", "AWS region (default: AWS_REGION or the shared config)")
	fl.StringSliceVar(&f.services, "service", nil, "only these services (repeat or comma-separate; default all)")
	fl.StringVarP(&f.output, "output", "o", "", "output format: json|yaml (default a table)")
	fl.DurationVar(&f.timeout, "timeout", time.Minute, "give up after this long")
	f.reap.register(fl)
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func runPlan(ctx context.Context, f planFlags, out io.Writer) error {
	if f.output != "" && f.output != "json" && f.output != "yaml" {
		return fmt.Errorf("--output %q: want json or yaml (or nothing for a table)", f.output)
	}
	reap, err := f.reap.policy()
	if err != nil {
		return err
	}
	for _, s := range f.services {
		if err := naming.ValidateLabel("--service", s); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	log, err := f.log.logger(os.Stderr)
	if err != nil {
		return err
	}
	ctx = logr.NewContext(ctx, log)
	store, closeStore, err := f.storeFlags.open(ctx, true, log)
	if err != nil {
		return err
	}
	defer closeStore()
	ec2, err := cloud.NewEC2(ctx, cloud.EC2Options{Region: f.region, Endpoint: f.ec2Endpoint})
	if err != nil {
		return fmt.Errorf("ec2 client: %w", err)
	}
	syncer := controllers.NewSyncer(controllers.SyncerOptions{Cloud: ec2, Store: store, DryRun: true, Unnamed: store})
	sa := controllers.NewStandalone(controllers.StandaloneOptions{Syncer: syncer, Cloud: ec2, Store: store, Reap: reap})
	sum, err := sa.Pass(ctx)
	if err != nil {
		return fmt.Errorf("planning: %w", err)
	}
	rep := controllers.NewPlanReport(sum, f.services)
	if err := writePlan(out, rep, f.output, time.Now()); err != nil {
		return err
	}
	if rep.Pending > 0 {
		return &exitError{code: exitPending, err: fmt.Errorf("%d changes pending", rep.Pending), silent: true}
	}
	return nil
}

func writePlan(w io.Writer, rep controllers.PlanReport, output string, now time.Time) error {
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "    ")
		return enc.Encode(rep)
	case "yaml":
		b, err := yaml.Marshal(rep)
		if err != nil {
			return fmt.Errorf("encoding yaml: %w", err)
		}
		_, err = w.Write(b)
		return err
	}
	var rows [][]string
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, c := range slices.Concat(rep.Changes, rep.Deferred) {
		inst := dash(c.Instance)
		if c.From != "" && c.From != c.Instance {
			if c.Instance == "" {
				inst = c.From + " ->"
			} else {
				inst = c.From + " -> " + c.Instance
			}
		}
		rows = append(rows, []string{c.Service, c.Action, c.Name, inst, dash(c.IP), c.Reason})
	}
	for _, h := range rep.Held {
		rows = append(rows, []string{h.Service, "hold", h.Name, dash(h.Instance), "-",
			h.Reason + "; until " + h.Until.Format(time.RFC3339) + " (in " + table.Age(now, h.Until) + ")"})
	}
	for _, u := range rep.Unnamed {
		next := "no name this pass"
		if u.Next != "" {
			next = "gets " + u.Next + " (bind above)"
		}
		rows = append(rows, []string{u.Service, "unnamed", "<none>", u.Instance, dash(u.IP), "live instance without a record: " + next})
	}
	if len(rows) > 0 {
		if err := table.Write(w, []string{"SERVICE", "ACTION", "NAME", "INSTANCE", "IP", "REASON"}, rows); err != nil {
			return err
		}
		if _, err := fmt.Fprintln(w); err != nil {
			return err
		}
	}
	for _, p := range rep.Problems {
		if _, err := fmt.Fprintf(w, "problem: %s: %s\n", p.Service, p.Problem); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(w, rep.Summary())
	return err
}
