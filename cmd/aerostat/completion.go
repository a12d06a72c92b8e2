//go:build !agentonly

package main

import (
	"context"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aerostat-io/aerostat/client"
)

// completionTimeout bounds a ledger read made for a <Tab>.
const completionTimeout = 3 * time.Second

// newCompletionCmd replaces cobra's default completion command so the
// scripts also work for the kubectl plugin: installed as kubectl-aerostat,
// the root takes the display name "kubectl aerostat", and kubectl's plugin
// completion calls `kubectl_complete-aerostat`, a script that runs
// `kubectl-aerostat __complete "$@"`.
func newCompletionCmd(root *cobra.Command) *cobra.Command {
	if isKubectlPlugin(os.Args[0]) {
		if root.Annotations == nil {
			root.Annotations = map[string]string{}
		}
		root.Annotations[cobra.CommandDisplayNameAnnotation] = "kubectl aerostat"
	}
	cmd := &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print a shell completion script",
		Long: `Print a shell completion script for commands, flags and service names.

  source <(aerostat completion bash)
  aerostat completion zsh > "${fpath[1]}/_aerostat"
  aerostat completion fish > ~/.config/fish/completions/aerostat.fish

As a kubectl plugin, put this script on $PATH as kubectl_complete-aerostat:

  #!/bin/sh
  exec kubectl-aerostat __complete "$@"`,
		Args:                  cobra.ExactArgs(1),
		ValidArgs:             []string{"bash", "zsh", "fish", "powershell"},
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			r := cmd.Root()
			switch args[0] {
			case "bash":
				return r.GenBashCompletionV2(out, true)
			case "zsh":
				return r.GenZshCompletion(out)
			case "fish":
				return r.GenFishCompletion(out, true)
			case "powershell":
				return r.GenPowerShellCompletionWithDesc(out)
			}
			return cmd.Usage()
		},
	}
	return cmd
}

// complete completes the resource kind, then hostnames (names) or service
// names (services), read from the ledger or the cluster.
func (f *getFlags) complete(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return []cobra.Completion{"names\tnames and who holds them", "services\tservices: counts and master", "nodes\twhich rev each host holds"}, cobra.ShellCompDirectiveNoFileComp
	}
	kind, err := resourceKind(args[0])
	if err != nil || kind == "nodes" || (cmd.Name() == "describe" && len(args) > 1) {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	names, err := f.src.listForCompletion(cmd)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, n := range names {
		v := n.Hostname
		if kind == "services" {
			v = n.Service
		}
		if strings.HasPrefix(v, toComplete) && !slices.Contains(args[1:], v) && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeSelector completes -l values: keys, then service names and
// states.
func (f *sourceFlags) completeSelector(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	done, term := "", toComplete
	if i := strings.LastIndex(toComplete, ","); i >= 0 {
		done, term = toComplete[:i+1], toComplete[i+1:]
	}
	key, _, hasValue := strings.Cut(term, "=")
	var out []cobra.Completion
	if !hasValue {
		for _, k := range []string{"service=", "service_type=", "state=", "role="} {
			out = append(out, done+k)
		}
		return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	}
	var values []string
	switch key {
	case "service":
		names, err := f.listForCompletion(cmd)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		for _, n := range names {
			if !slices.Contains(values, n.Service) {
				values = append(values, n.Service)
			}
		}
	case "service_type":
		values = []string{"iterative", "masterful"}
	case "state":
		values = []string{string(client.Bound), string(client.Free)}
	case "role":
		values = []string{client.RoleMaster, client.RoleSlave}
	}
	for _, v := range values {
		out = append(out, done+key+"="+v)
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

func (f *sourceFlags) listForCompletion(cmd *cobra.Command) ([]client.Name, error) {
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	t := completionTimeout.String()
	f.kube.Timeout = &t
	src, err := f.open(cmd)
	if err != nil {
		return nil, err
	}
	defer src.Close(context.WithoutCancel(ctx))
	return src.Names(ctx, client.Selector{})
}
