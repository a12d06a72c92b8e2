package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
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
	ec2Endpoint, region, output string
	services                    []string
	holdBack, stoppedGrace      time.Duration
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
	fl.StringVar(&f.ec2Endpoint, "ec2-endpoint", "", "EC2 API endpoint URL (default: AWS_ENDPOINT_URL_EC2 or the region's endpoint)")
	fl.StringVar(&f.region, "region", "", "AWS region (default: AWS_REGION or the shared config)")
	fl.StringSliceVar(&f.services, "service", nil, "only these services (repeat or comma-separate; default all)")
	fl.StringVarP(&f.output, "output", "o", "", "output format: json|yaml (default a table)")
	fl.DurationVar(&f.timeout, "timeout", time.Minute, "give up after this long")
	addReapFlags(fl, &f.holdBack, &f.stoppedGrace)
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// PlanReport is `aerostat plan -o json`: flat lists, one entry a change,
// ready for jq.
type PlanReport struct {
	// Pending is the number of writes the next pass would make.
	Pending  int           `json:"pending"`
	Changes  []PlanChange  `json:"changes"`
	Deferred []PlanChange  `json:"deferred"`
	Held     []PlanHold    `json:"held"`
	Problems []PlanProblem `json:"problems"`
}

// PlanChange is one write of the next pass.
type PlanChange struct {
	Service string `json:"service"`
	// Action: bind, release, move-master, move-alias, set-aliases,
	// set-ip, update (a bound name's ip and aliases rewritten).
	Action   string   `json:"action"`
	Name     string   `json:"name"`
	Instance string   `json:"instance,omitempty"`
	From     string   `json:"from,omitempty"` // the holder it replaces or releases
	IP       string   `json:"ip,omitempty"`
	Aliases  []string `json:"aliases,omitempty"`
	Reason   string   `json:"reason"`
}

// PlanHold is one name kept from the instances waiting for one.
type PlanHold struct {
	Service  string    `json:"service"`
	Name     string    `json:"name"`
	Instance string    `json:"instance,omitempty"` // kept for
	Until    time.Time `json:"until"`
	Reason   string    `json:"reason"`
}

// PlanProblem is a planner finding that does not stop the plan.
type PlanProblem struct {
	Service string `json:"service"`
	Problem string `json:"problem"`
}

func runPlan(ctx context.Context, f planFlags, out io.Writer) error {
	if f.output != "" && f.output != "json" && f.output != "yaml" {
		return fmt.Errorf("--output %q: want json or yaml (or nothing for a table)", f.output)
	}
	reap, err := standaloneReap(f.holdBack, f.stoppedGrace)
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
	store, closeStore, err := f.storeFlags.open(ctx, true, logr.Discard())
	if err != nil {
		return err
	}
	defer closeStore()
	ec2, err := cloud.NewEC2(ctx, cloud.EC2Options{Region: f.region, Endpoint: f.ec2Endpoint})
	if err != nil {
		return fmt.Errorf("ec2 client: %w", err)
	}
	syncer := controllers.NewSyncer(controllers.SyncerOptions{Cloud: ec2, Store: store, DryRun: true})
	sa := controllers.NewStandalone(controllers.StandaloneOptions{Syncer: syncer, Cloud: ec2, Store: store, Reap: reap})
	sum, err := sa.Pass(ctx)
	if err != nil {
		return fmt.Errorf("planning: %w", err)
	}
	rep := planReport(sum, f.services)
	if err := writePlan(out, rep, f.output, time.Now()); err != nil {
		return err
	}
	if rep.Pending > 0 {
		return &exitError{code: exitPending, err: fmt.Errorf("%d changes pending", rep.Pending), silent: true}
	}
	return nil
}

// planReport flattens a dry-run pass, services in name order.
func planReport(sum controllers.Summary, only []string) PlanReport {
	rep := PlanReport{Changes: []PlanChange{}, Deferred: []PlanChange{}, Held: []PlanHold{}, Problems: []PlanProblem{}}
	for _, svc := range sum.Services {
		if len(only) > 0 && !slices.Contains(only, svc) {
			continue
		}
		p := sum.Passes[svc].Plan
		for _, c := range p.Changes {
			rep.Changes = append(rep.Changes, planChange(svc, c))
		}
		for _, c := range p.Deferred {
			pc := planChange(svc, c)
			pc.Action = "deferred-release"
			rep.Deferred = append(rep.Deferred, pc)
		}
		for _, h := range p.Held {
			rep.Held = append(rep.Held, PlanHold{Service: svc, Name: h.Hostname, Instance: h.InstanceID, Until: h.Until.UTC(), Reason: h.Reason})
		}
		for _, pr := range p.Problems {
			rep.Problems = append(rep.Problems, PlanProblem{Service: svc, Problem: pr})
		}
	}
	rep.Pending = len(rep.Changes)
	return rep
}

func planChange(svc string, c naming.Change) PlanChange {
	pc := PlanChange{Service: svc, Name: c.Hostname, Instance: c.InstanceID, From: c.ExpectInstanceID, IP: c.IP, Aliases: c.Aliases, Reason: c.Reason}
	switch c.Type {
	case naming.Release:
		pc.Action, pc.IP, pc.Aliases = "release", "", nil
	case naming.Bind:
		switch {
		case c.ExpectInstanceID == c.InstanceID:
			pc.Action, pc.From = "update", ""
		case c.Role == naming.RoleMaster && c.ExpectInstanceID != "":
			pc.Action = "move-master"
		default:
			pc.Action = "bind"
		}
	case naming.SetIP:
		pc.Action, pc.Instance, pc.From = "set-ip", c.ExpectInstanceID, ""
	case naming.SetAliases:
		pc.Action, pc.Instance, pc.From = "set-aliases", c.ExpectInstanceID, ""
		if strings.Contains(c.Reason, " moved from ") {
			pc.Action = "move-alias"
		}
	default:
		pc.Action = strings.ToLower(string(c.Type))
	}
	return pc
}

func writePlan(w io.Writer, rep PlanReport, output string, now time.Time) error {
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
	_, err := fmt.Fprintln(w, planSummary(rep))
	return err
}

// planSummary is the closing line, e.g. "Plan: 3 changes (2 bind, 1
// release), 0 deferred, 1 held."
func planSummary(rep PlanReport) string {
	if rep.Pending == 0 && len(rep.Deferred) == 0 && len(rep.Held) == 0 {
		return "No changes: the ledger matches the fleet."
	}
	count := map[string]int{}
	var order []string
	for _, c := range rep.Changes {
		if count[c.Action] == 0 {
			order = append(order, c.Action)
		}
		count[c.Action]++
	}
	var parts []string
	for _, a := range order {
		parts = append(parts, fmt.Sprintf("%d %s", count[a], a))
	}
	s := fmt.Sprintf("Plan: %d change", rep.Pending)
	if rep.Pending != 1 {
		s += "s"
	}
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s + fmt.Sprintf(", %d deferred, %d held.", len(rep.Deferred), len(rep.Held))
}
