//go:build !agentonly

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/tools/clientcmd"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/aerostat-io/aerostat/api/v1alpha1"
	"github.com/aerostat-io/aerostat/client"
	"github.com/aerostat-io/aerostat/client/kube"
	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/feed"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/table"
)

// pluginName is the name kubectl looks for on $PATH to run `kubectl aerostat`.
const pluginName = "kubectl-aerostat"

// isKubectlPlugin reports whether the binary runs as `kubectl aerostat`.
func isKubectlPlugin(argv0 string) bool {
	return strings.HasPrefix(filepath.Base(argv0), pluginName)
}

// sourceFlags say where get and describe read names: the ledger
// (--ledger) or, with kubectl's flags (--kubeconfig, --context, --server,
// ...), the NamingService status in a cluster.
type sourceFlags struct {
	server, database string
	kube             *genericclioptions.ConfigFlags
	timeout          time.Duration
	pollInterval     time.Duration
	log              logFlags
	// plugin: run as kubectl-aerostat, where the cluster is the default.
	plugin bool
}

// kubeFlags are kubectl's flags that point at a cluster: any of them
// given means reading from it.
var kubeFlags = []string{"kubeconfig", "context", "cluster", "user", "server", "token", "as", "certificate-authority"}

func (f *sourceFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	addLedgerFlag(fl, &f.server, defaultLedger(), ledgerFlagHelp, false)
	fl.StringVar(&f.database, "database", "aerostat", "ledger database")
	f.kube = genericclioptions.NewConfigFlags(true)
	timeout := "10s"
	f.kube.Timeout = &timeout
	f.kube.AddFlags(fl)
	f.log.registerForReport(fl)
	f.plugin = isKubectlPlugin(os.Args[0])
}

// cluster reports whether to read from Kubernetes: one of kubectl's
// cluster flags was given, or we run as a kubectl plugin and no --ledger
// was given.
func (f *sourceFlags) cluster(cmd *cobra.Command) bool {
	for _, name := range kubeFlags {
		if cmd.Flags().Changed(name) {
			return true
		}
	}
	return f.plugin && !ledgerChanged(cmd.Flags())
}

// parseTimeout reads kubectl's --request-timeout ("10s", "1m", or a bare
// number of seconds) for the ledger too; 0 means no limit.
func (f *sourceFlags) parseTimeout() error {
	s := *f.kube.Timeout
	if secs, err := strconv.Atoi(s); err == nil && secs >= 0 {
		f.timeout = time.Duration(secs) * time.Second
	} else if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		f.timeout = d
	} else {
		return fmt.Errorf("--request-timeout %q: want a duration such as 10s or 1m, or a number of seconds", s)
	}
	if f.timeout == 0 {
		f.timeout = 1<<63 - 1 // kubectl's 0: wait as long as it takes
	}
	return nil
}

// openLedgerClient connects to the ledger read-only.
func (f *sourceFlags) openLedgerClient(ctx context.Context) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	log, err := f.log.logger(os.Stderr)
	if err != nil {
		return nil, err
	}
	c, err := client.New(ctx, f.server, client.Options{Database: f.database, PollInterval: f.pollInterval, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("--ledger %q: %w", ledger.RedactURI(f.server), err)
	}
	return c, nil
}

// kubeClient builds a client of the cluster from kubectl's flags
// (--kubeconfig or $KUBECONFIG, ~/.kube/config, in-cluster config;
// --context, --server, ...).
func (f *sourceFlags) kubeClient() (crclient.WithWatch, error) {
	cfg, err := f.kube.ToRESTConfig()
	if clientcmd.IsEmptyConfig(err) {
		return nil, errors.New("no kubeconfig found: set KUBECONFIG or --kubeconfig, or read the ledger with --ledger")
	}
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %q context %q: %w", *f.kube.KubeConfig, *f.kube.Context, err)
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := crclient.NewWithWatch(cfg, crclient.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("connecting to the cluster at %s: %w", cfg.Host, err)
	}
	return c, nil
}

// source reads names and services from the ledger (client.Client) or the
// cluster (kube.Source).
type source interface {
	Names(ctx context.Context, sel client.Selector) ([]client.Name, error)
	Services(ctx context.Context) ([]client.Service, error)
	Watch(ctx context.Context, sel client.Selector, fn func([]client.Event) error) error
	Close(ctx context.Context) error
}

func (f *sourceFlags) open(cmd *cobra.Command) (source, error) {
	if err := f.parseTimeout(); err != nil {
		return nil, err
	}
	if f.cluster(cmd) {
		c, err := f.kubeClient()
		if err != nil {
			return nil, err
		}
		return kube.New(c), nil
	}
	return f.openLedgerClient(cmd.Context())
}

type getFlags struct {
	src       sourceFlags
	output    string
	noHeaders bool
	selector  string
	watch     bool
	feedURL   string
	feedCli   feedClientFlags
	// pending lists tagged instances without a name (reads EC2).
	pending             bool
	region, ec2Endpoint string
}

func newGetCmd() *cobra.Command {
	f := &getFlags{}
	cmd := &cobra.Command{
		Use:   "get names|services|nodes [NAME...]",
		Short: "List names, services or nodes, like kubectl get",
		Long: `List names (hostnames and who holds them), services (counts and master) or
nodes (which ledger rev each agent's hosts file holds: "2 of 3 hosts at rev 17",
laggards first; read from the controller's feed, --feed).

Reads the ledger (--ledger, default $AEROSTAT_LEDGER, $AEROSTAT_SERVER or
admin-master, as every command) without Kubernetes, or the NamingService status
of a cluster with kubectl's flags (--kubeconfig, --context, --server, ...; the
default when run as kubectl-aerostat).`,
		Example: `  aerostat get names
  aerostat get names -l service=web,state=bound -o wide
  aerostat get names web-3 -o json
  aerostat get services
  aerostat get nodes --feed http://aerostat-controller:8082
  aerostat get names --watch
  kubectl aerostat get services --context prod`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: f.complete,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGet(cmd, f, args[0], args[1:])
		},
	}
	f.src.register(cmd)
	fl := cmd.Flags()
	fl.StringVarP(&f.output, "output", "o", "", "output format: "+strings.Join(table.Formats, "|")+" (jsonpath sees -o json's fields; a list as {.items[*]})")
	fl.BoolVar(&f.noHeaders, "no-headers", false, "table, wide and custom-columns: print no header line (nodes: no summary either)")
	fl.StringVarP(&f.selector, "selector", "l", "", "label selector, as kubectl's: names have the labels service, service_type, state and role (e.g. service=web,state!=free, 'role in (master)'); services have service and service_type")
	fl.BoolVarP(&f.watch, "watch", "w", false, "after listing, print changes as they happen")
	fl.DurationVar(&f.src.pollInterval, "watch-interval", client.DefaultPollInterval, "--watch on a ledger without change streams (FerretDB, a standalone mongod): how often it polls; the cluster and a replica set push changes")
	fl.BoolVar(&f.pending, "pending", false, "names: also list live instances tagged "+controllers.TagService+" that hold no name yet (state pending, NAME <pending>); reads EC2")
	fl.StringVar(&f.region, "region", "", "with --pending: AWS region (default: AWS_REGION or the shared config)")
	fl.StringVar(&f.ec2Endpoint, "ec2-endpoint", "", "with --pending: EC2 API endpoint URL (default: AWS_ENDPOINT_URL_EC2 or the region's endpoint)")
	fl.StringVar(&f.feedURL, "feed", os.Getenv("AEROSTAT_FEED"), "for nodes: the controller's feed URL, https://host:port (env AEROSTAT_FEED)")
	f.feedCli.register(fl)
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(table.Formats, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("selector", f.src.completeSelector)
	return cmd
}

// resources get and describe accept, with their kubectl-style aliases.
func resourceKind(arg string) (string, error) {
	switch arg {
	case "names", "name", "hostnames", "hostname", "n":
		return "names", nil
	case "services", "service", "svc", "namingservices", "namingservice", "nsvc":
		return "services", nil
	case "nodes", "node", "no":
		return "nodes", nil
	}
	return "", fmt.Errorf("resource %q: want names, services or nodes", arg)
}

func runGet(cmd *cobra.Command, f *getFlags, resource string, args []string) error {
	kind, err := resourceKind(resource)
	if err != nil {
		return err
	}
	format, err := table.ParseFormat(f.output)
	if err != nil {
		return err
	}
	if f.noHeaders {
		format = format.WithoutHeaders()
	}
	if kind == "nodes" {
		return getNodes(cmd, f, format, args)
	}
	sel, err := client.ParseSelector(f.selector)
	if kind == "services" {
		sel = client.Selector{}
		sel.Labels, err = client.ParseServiceSelector(f.selector)
	}
	if err != nil {
		return fmt.Errorf("-l/--selector %q: %w", f.selector, err)
	}
	ctx := cmd.Context()
	src, err := f.src.open(cmd)
	if err != nil {
		return err
	}
	defer src.Close(context.WithoutCancel(ctx))
	out := cmd.OutOrStdout()
	if !f.watch {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.src.timeout)
		defer cancel()
	}

	if kind == "services" {
		if f.watch {
			return errors.New("--watch: only for names")
		}
		svcs, err := src.Services(ctx)
		if err != nil {
			return err
		}
		svcs = slices.DeleteFunc(svcs, func(s client.Service) bool { return !sel.Labels.Matches(client.ServiceLabels(s)) })
		if len(args) > 0 {
			svcs = slices.DeleteFunc(svcs, func(s client.Service) bool { return !slices.Contains(args, s.Service) })
			if err := missing(args, svcs, func(s client.Service) string { return s.Service }, "service"); err != nil {
				return err
			}
		}
		if len(svcs) == 0 && format.Kind() == table.KindTable {
			fmt.Fprintln(cmd.ErrOrStderr(), "No services found.")
			return nil
		}
		return table.Services(out, svcs, format, time.Now())
	}

	if f.watch {
		return watchNames(ctx, out, src, format, sel, args)
	}
	names, err := f.names(ctx, src, sel)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		names = slices.DeleteFunc(names, func(n client.Name) bool { return !slices.Contains(args, n.Hostname) })
		if err := missing(args, names, func(n client.Name) string { return n.Hostname }, "name"); err != nil {
			return err
		}
	}
	if len(names) == 0 && format.Kind() == table.KindTable {
		fmt.Fprintln(cmd.ErrOrStderr(), "No names found.")
		return nil
	}
	return table.Names(out, names, format, len(args) == 1, time.Now())
}

// getNodes prints the convergence table the controller's feed keeps from
// its agents' requests.
func getNodes(cmd *cobra.Command, f *getFlags, format table.Format, args []string) error {
	switch {
	case f.feedURL == "":
		return errors.New("get nodes: --feed (or AEROSTAT_FEED) is required: agents report which names they hold to the controller's feed, e.g. --feed http://aerostat-controller:8082")
	case f.watch:
		return errors.New("--watch: only for names")
	case f.selector != "":
		return errors.New("-l/--selector: only for names and services")
	}
	if err := f.src.parseTimeout(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), f.src.timeout)
	defer cancel()
	hc, err := f.feedCli.client(f.feedURL, 30*time.Second)
	if err != nil {
		return err
	}
	c, err := feed.GetConvergence(ctx, hc, f.feedURL)
	if err != nil {
		return fmt.Errorf("--feed %q: %w", f.feedURL, err)
	}
	if len(args) > 0 {
		c.Nodes = slices.DeleteFunc(c.Nodes, func(n feed.NodeState) bool { return !slices.Contains(args, n.Name) })
		if err := missing(args, c.Nodes, func(n feed.NodeState) string { return n.Name }, "node"); err != nil {
			return err
		}
	}
	return table.Nodes(cmd.OutOrStdout(), c, format, time.Now())
}

// missing returns a not-found error naming the args that matched nothing.
func missing[T any](args []string, found []T, key func(T) string, what string) error {
	var miss []string
	for _, a := range args {
		if !slices.ContainsFunc(found, func(v T) bool { return key(v) == a }) {
			miss = append(miss, a)
		}
	}
	if len(miss) == 0 {
		return nil
	}
	return fmt.Errorf("%s %q not found", what, strings.Join(miss, `", "`))
}

func watchNames(ctx context.Context, out io.Writer, src source, format table.Format, sel client.Selector, args []string) error {
	stream := table.NewStream(out, format, time.Now)
	return src.Watch(ctx, sel, func(events []client.Event) error {
		if len(args) > 0 {
			events = slices.DeleteFunc(events, func(e client.Event) bool { return !slices.Contains(args, e.Name.Hostname) })
		}
		return stream.Print(events)
	})
}

// names reads the selected names; with --pending, every name and then the
// tagged instances none is held by, selected together.
func (f *getFlags) names(ctx context.Context, src source, sel client.Selector) ([]client.Name, error) {
	if !f.pending {
		return src.Names(ctx, sel)
	}
	if f.watch {
		return nil, errors.New("--pending: not with --watch")
	}
	all, err := src.Names(ctx, client.Selector{})
	if err != nil {
		return nil, err
	}
	ec2, err := cloud.NewEC2(ctx, cloud.EC2Options{Region: f.region, Endpoint: f.ec2Endpoint})
	if err != nil {
		return nil, fmt.Errorf("--pending: ec2 client: %w", err)
	}
	tagged, err := ec2.List(ctx, cloud.Filter{Name: "tag-key", Values: []string{controllers.TagService}})
	if err != nil {
		return nil, fmt.Errorf("--pending: listing instances tagged %s: %w", controllers.TagService, err)
	}
	all = append(all, client.Unnamed(all, tagged, controllers.TagService)...)
	return slices.DeleteFunc(all, func(n client.Name) bool { return !sel.Matches(n) }), nil
}
