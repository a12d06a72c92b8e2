//go:build !agentonly

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/aerostat-io/aerostat/client"
	"github.com/aerostat-io/aerostat/internal/table"
)

func newDescribeCmd() *cobra.Command {
	f := &getFlags{}
	cmd := &cobra.Command{
		Use:   "describe names|services NAME",
		Short: "Show one name or one service in detail, like kubectl describe",
		Example: `  aerostat describe name web-3
  aerostat describe service db`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: f.complete,
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := resourceKind(args[0])
			if err != nil {
				return err
			}
			if kind == "nodes" {
				return errors.New("describe nodes: use `aerostat get nodes NODE -o yaml`")
			}
			src, err := f.src.open(cmd)
			if err != nil {
				return err
			}
			defer src.Close(context.WithoutCancel(cmd.Context()))
			ctx, cancel := context.WithTimeout(cmd.Context(), f.src.timeout)
			defer cancel()
			if kind == "names" {
				return describeName(ctx, cmd.OutOrStdout(), src, args[1], time.Now())
			}
			return describeService(ctx, cmd.OutOrStdout(), src, args[1], time.Now())
		},
	}
	f.src.register(cmd)
	return cmd
}

func describeName(ctx context.Context, w io.Writer, src source, hostname string, now time.Time) error {
	names, err := src.Names(ctx, client.Selector{})
	if err != nil {
		return err
	}
	for _, n := range names {
		if n.Hostname == hostname {
			return writeName(w, n, now)
		}
	}
	return fmt.Errorf("name %q not found", hostname)
}

func writeName(w io.Writer, n client.Name, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	kv := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, orNone(v)) }
	kv("Name", n.Hostname)
	kv("Service", n.Service)
	kv("Service Type", n.ServiceType)
	kv("State", string(n.State))
	kv("Role", n.Role)
	kv("Ordinal", strconv.Itoa(n.Ordinal))
	kv("Instance", n.InstanceID)
	kv("IP", n.IP)
	kv("Aliases", strings.Join(n.Aliases, ", "))
	kv("Claimed", when(n.ClaimedAt, now))
	kv("Updated", when(n.UpdatedAt, now))
	kv("Rev", strconv.FormatInt(n.Rev, 10))
	return tw.Flush()
}

func describeService(ctx context.Context, w io.Writer, src source, service string, now time.Time) error {
	svcs, err := src.Services(ctx)
	if err != nil {
		return err
	}
	var svc *client.Service
	for i := range svcs {
		if svcs[i].Service == service {
			svc = &svcs[i]
		}
	}
	if svc == nil {
		return fmt.Errorf("service %q not found", service)
	}
	names, err := src.Names(ctx, client.Selector{Service: service})
	if err != nil {
		return err
	}
	master := svc.Master
	for _, n := range names {
		if n.Role == client.RoleMaster && n.State == client.Bound {
			master = n.Hostname + " (" + n.InstanceID + ")"
		}
	}
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	kv := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, orNone(v)) }
	kv("Service", svc.Service)
	kv("Service Type", svc.ServiceType)
	kv("Bound", strconv.Itoa(svc.Bound))
	kv("Gaps", strconv.Itoa(svc.Gaps))
	kv("Master", master)
	if svc.Ready != "" {
		kv("Ready", svc.Ready)
	}
	kv("Since", when(svc.Since, now))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "Names:")
	if len(names) == 0 {
		fmt.Fprintln(w, "  <none>")
		return nil
	}
	var b strings.Builder
	if err := table.Names(&b, names, table.Table, false, now); err != nil {
		return err
	}
	for _, line := range strings.SplitAfter(strings.TrimSuffix(b.String(), "\n"), "\n") {
		fmt.Fprint(w, "  "+line)
	}
	_, err = fmt.Fprintln(w)
	return err
}

// when renders a time as kubectl describe does: the time and its age.
func when(t *time.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339) + " (" + table.Age(*t, now) + " ago)"
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}
