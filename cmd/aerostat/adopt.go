//go:build !agentonly

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"

	"github.com/aerostat-io/aerostat/internal/adopt"
	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/naming"
	"github.com/aerostat-io/aerostat/internal/table"
)

type adoptFlags struct {
	storeFlags
	log                         logFlags
	ec2Endpoint, region, output string
	services                    []string
	noEC2, apply                bool
	timeout                     time.Duration
}

func newAdoptCmd() *cobra.Command {
	var f adoptFlags
	cmd := &cobra.Command{
		Use:   "adopt",
		Short: "Take over a running fleet without renaming it: import a 1.x ledger in place, bind names from EC2 tags (dry run unless --apply)",
		Long: `Imports a running 1.x database in place (it is the same aerostat.servers
collection): documents get the 2.x fields (role, ordinal, rev, updated_at;
1.x clients ignore them) and the 1.x fields they lack or hold with a type
1.x clients cannot read (ip, service, service_type, instance_id as
strings, aliases a list: 1.x's updater dies on a missing one), and hostnames that 1.x races gave to several
documents keep one (the live instance's, else the most recent) while the
others are removed; the unique index on hostname is then built.

Then reads EC2: a live or stopped instance whose aerostat:hostname or Name
tag is a name of its service's scheme (service from the aerostat:service
tag, or --service for untagged fleets) is recorded as bound to that name,
unless the ledger already names it or gives the name to another instance
(the ledger wins; reported as a conflict), or the name was released from
another instance less than the service's hold-back ago (the policy the
controller stored in the ledger, else 3m, as register applies it).

Without --apply nothing is written. With it, every write is a
compare-and-set on what was read; a document changed meanwhile (a 1.x
client, the controller) is reported and left alone, and running adopt
again finishes the work.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAdopt(cmd.Context(), f, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	f.storeFlags.register(fl)
	f.log.registerForReport(fl)
	fl.StringVar(&f.ec2Endpoint, "ec2-endpoint", "", "EC2 API endpoint URL (default: AWS_ENDPOINT_URL_EC2 or the region's endpoint)")
	fl.StringVar(&f.region, "region", "", "AWS region (default: AWS_REGION or the shared config)")
	fl.BoolVar(&f.noEC2, "no-ec2", false, "do not call EC2: duplicates are resolved by age, no tags are read")
	fl.StringSliceVar(&f.services, "service", nil, "service[=iterative|masterful] whose untagged instances' Name tags to adopt (repeatable)")
	fl.BoolVar(&f.apply, "apply", false, "write (default: report only)")
	fl.StringVarP(&f.output, "output", "o", "", "output format: json (default a report)")
	fl.DurationVar(&f.timeout, "timeout", 2*time.Minute, "give up after this long")
	return cmd
}

// parseServices reads --service values: "web" or "db=masterful".
func parseServices(vals []string) (map[string]naming.Scheme, error) {
	out := map[string]naming.Scheme{}
	for _, v := range vals {
		name, typ, _ := strings.Cut(v, "=")
		if err := naming.ValidateLabel("--service", name); err != nil {
			return nil, err
		}
		scheme := naming.Iterative
		if typ != "" {
			s, err := naming.ParseScheme(typ)
			if err != nil {
				return nil, fmt.Errorf("--service %q: %w", v, err)
			}
			scheme = s
		}
		out[name] = scheme
	}
	return out, nil
}

func runAdopt(ctx context.Context, f adoptFlags, out io.Writer) error {
	if f.output != "" && f.output != "json" {
		return fmt.Errorf("--output %q: want json (or nothing for a report)", f.output)
	}
	services, err := parseServices(f.services)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	// A dry run opens read-only: not even the index setup is written.
	log, err := f.log.logger(os.Stderr)
	if err != nil {
		return err
	}
	ctx = logr.NewContext(ctx, log)
	store, closeStore, err := f.storeFlags.open(ctx, !f.apply, log)
	if err != nil {
		return err
	}
	defer closeStore()
	opts := adopt.Options{Ledger: store, Services: services, Apply: f.apply}
	if !f.noEC2 {
		ec2, err := cloud.NewEC2(ctx, cloud.EC2Options{Region: f.region, Endpoint: f.ec2Endpoint})
		if err != nil {
			return fmt.Errorf("ec2 client: %w", err)
		}
		opts.Cloud = ec2
	}
	rep, err := adopt.Run(ctx, opts)
	if err != nil {
		return fmt.Errorf("adopting: %w", err)
	}
	if f.output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "    ")
		return enc.Encode(rep)
	}
	return writeAdopt(out, rep, store.Database())
}

func writeAdopt(w io.Writer, rep adopt.Report, database string) error {
	var rows [][]string
	for _, d := range rep.Duplicates {
		var removed []string
		for _, r := range d.Removed {
			s := orDash(r.Instance) + " (" + r.State
			if r.Why != "" {
				s += ": " + r.Why
			}
			removed = append(removed, s+")")
		}
		rows = append(rows, []string{"dedupe", d.Hostname, orDash(d.Kept.Instance),
			"kept (" + d.Kept.State + "); removed " + strings.Join(removed, ", ")})
	}
	for _, b := range rep.Backfills {
		var parts []string
		if len(b.Onex) > 0 {
			parts = append(parts, "repair 1.x "+strings.Join(b.Onex, ", "))
		}
		if len(b.Missing) > 0 {
			parts = append(parts, "add "+strings.Join(b.Missing, ", "))
		}
		detail := "fresh rev"
		if len(parts) > 0 {
			detail = strings.Join(parts, "; ")
		}
		rows = append(rows, []string{"backfill", b.Hostname, orDash(b.Instance), detail})
	}
	for _, b := range rep.Binds {
		rows = append(rows, []string{"bind", b.Hostname, b.Instance, "from tag " + b.Tag})
	}
	for _, c := range rep.Conflicts {
		rows = append(rows, []string{"conflict", c.Hostname, orDash(c.Instance), c.Reason})
	}
	for _, p := range rep.Policies {
		rows = append(rows, []string{"policy", p.Service, "-", fmt.Sprintf("hold-back %v (%s)", p.HoldBack, p.Source)})
	}
	if _, err := fmt.Fprintf(w, "Ledger %s.servers: %d documents.\n\n", database, rep.Documents); err != nil {
		return err
	}
	if len(rows) > 0 {
		if err := table.Write(w, []string{"ACTION", "NAME", "INSTANCE", "DETAIL"}, rows); err != nil {
			return err
		}
		if _, err := fmt.Fprintln(w); err != nil {
			return err
		}
	}
	for _, p := range rep.Problems {
		if _, err := fmt.Fprintf(w, "problem: %s\n", p); err != nil {
			return err
		}
	}
	removed := 0
	for _, d := range rep.Duplicates {
		removed += len(d.Removed)
	}
	summary := fmt.Sprintf("backfill %d documents, resolve %d duplicated hostnames (remove %d documents), bind %d names from tags; %d already bound, %d conflicts.",
		len(rep.Backfills), len(rep.Duplicates), removed, len(rep.Binds), rep.AlreadyBound, len(rep.Conflicts))
	prefix := "Would "
	if rep.Applied {
		prefix = "Applied: "
	}
	_, err := fmt.Fprintln(w, prefix+summary)
	if err == nil && !rep.Applied {
		_, err = fmt.Fprintln(w, "Dry run: nothing written. Run again with --apply to write.")
	}
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
