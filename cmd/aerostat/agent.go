package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"

	"github.com/aerostat-io/aerostat/client"
	"github.com/aerostat-io/aerostat/internal/agent"
	"github.com/aerostat-io/aerostat/internal/feed"
	"github.com/aerostat-io/aerostat/internal/hostsfile"
	"github.com/aerostat-io/aerostat/internal/ledger"
)

// defaultServer is 1.x's ledger host.
const defaultServer = "admin-master"

// nodeFlags are shared by the commands that run on a node.
type nodeFlags struct {
	server, database string
	log              logFlags
	dryRun           bool
}

func (f *nodeFlags) register(fl *pflag.FlagSet) {
	addLedgerFlag(fl, &f.server, defaultLedger(), ledgerFlagHelp, true)
	fl.StringVar(&f.database, "database", ledger.DefaultDatabase, "ledger database")
	f.log.register(fl)
	fl.BoolVar(&f.dryRun, "dry-run", false, "print what would be done; write nothing")
}

// logger builds the node command's logger from the logging flags.
func (f *nodeFlags) logger() (logr.Logger, error) {
	return f.log.logger(os.Stderr)
}

// openLedger opens the ledger named by --ledger.
func (f *nodeFlags) openLedger(ctx context.Context, log logr.Logger, readOnly bool) (*ledger.Mongo, error) {
	uri, err := client.ServerURI(f.server)
	if err != nil {
		return nil, err
	}
	m, err := ledger.Open(ctx, uri, ledger.Options{Database: f.database, ReadOnly: readOnly, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("--ledger %q: %w", ledger.RedactURI(f.server), err)
	}
	return m, nil
}

type agentFlags struct {
	nodeFlags
	feedURL, hostsFile, backupFile    string
	nodeName                          string
	legacyUpdater, legacyFile         string
	legacyTimeout, interval, feedWait time.Duration
	overlap, resync                   time.Duration
	maxShrink                         float64
	listen                            string
	daemon                            bool
	// checkCredentials refuses --ledger credentials that can write unless
	// allowWrite (the agent command; 1.x's update keeps its shared user).
	checkCredentials, allowWrite bool
	feedClient                   feedClientFlags
}

func (f *agentFlags) register(fl *pflag.FlagSet) {
	f.nodeFlags.register(fl)
	fl.StringVar(&f.feedURL, "feed", "", "read names from the controller's feed (https://host:port) instead of the ledger; needs no database credentials")
	f.feedClient.register(fl)
	fl.StringVar(&f.nodeName, "node-name", defaultNodeName(), "with --feed: the name this node reports to the controller, so aerostat get nodes can show which names it holds (env NODE_NAME, else the hostname; empty reports nothing)")
	fl.StringVar(&f.hostsFile, "hosts-file", "/etc/hosts", "hosts file to keep current")
	fl.StringVar(&f.backupFile, "backup-file", "", "copy of the hosts file before Aerostat first changed it (default <hosts-file>.bak)")
	fl.StringVar(&f.legacyUpdater, "legacy-updater", "", "program run before each update; its output file (--legacy-file) goes before the Aerostat block (as 1.x)")
	fl.StringVar(&f.legacyFile, "legacy-file", hostsfile.DefaultLegacyFile, "file the legacy updater writes")
	fl.DurationVar(&f.legacyTimeout, "legacy-timeout", 30*time.Second, "time limit for the legacy updater")
	fl.Float64Var(&f.maxShrink, "max-shrink", hostsfile.DefaultMaxShrink, "largest fraction of the block one update may remove unless the names were released (1 disables the guard)")
}

// defaultNodeName is the Kubernetes node name the DaemonSet passes through
// the downward API, or else the machine's hostname.
func defaultNodeName() string {
	if n := os.Getenv("NODE_NAME"); n != "" {
		return n
	}
	n, _ := os.Hostname()
	return n
}

func newAgentCmd() *cobra.Command {
	var f agentFlags
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Keep /etc/hosts current on this node (the DaemonSet; 1.x --update --daemon)",
		Long: `Follows the ledger read-only (--ledger) or the controller's HTTP feed
(--feed) and keeps the "# AEROSTAT" block of --hosts-file current. Lines
outside the block are kept as they are. With --ledger it is woken by the
ledger's change stream where MongoDB has one (replica set), else it polls
the rev counter every --interval and reads only what changed. When the
source is down the file is left as it was and /readyz reports Degraded.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAgent(cmd.Context(), &f, false, cmd.OutOrStdout())
		},
	}
	f.register(cmd.Flags())
	fl := cmd.Flags()
	fl.DurationVar(&f.interval, "interval", time.Second, "ledger poll interval (±20% jitter)")
	fl.DurationVar(&f.feedWait, "feed-wait", 30*time.Second, "long-poll duration asked of the feed")
	fl.DurationVar(&f.overlap, "overlap", ledger.DefaultOverlap, "how far back deltas re-read, for writes that commit out of order")
	fl.DurationVar(&f.resync, "resync", ledger.DefaultResyncEvery, "period of full re-reads of the ledger (anti-entropy)")
	fl.StringVar(&f.listen, "listen", ":9101", "address of /metrics, /healthz and /readyz; empty disables")
	fl.BoolVar(&f.allowWrite, "allow-write-credentials", false, "with --ledger: start even when its credentials can write the ledger (1.x migration mode); by default the agent refuses them")
	f.checkCredentials = true
	return cmd
}

func newUpdateCmd() *cobra.Command {
	var f agentFlags
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Sync the hosts file once and exit (1.x --update); --daemon keeps running",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAgent(cmd.Context(), &f, !f.daemon, cmd.OutOrStdout())
		},
	}
	f.register(cmd.Flags())
	fl := cmd.Flags()
	fl.BoolVar(&f.daemon, "daemon", false, "keep running, as aerostat agent does")
	fl.DurationVar(&f.interval, "interval", time.Second, "with --daemon: ledger poll interval")
	fl.DurationVar(&f.feedWait, "feed-wait", 30*time.Second, "with --daemon: long-poll duration asked of the feed")
	fl.StringVar(&f.listen, "listen", "", "with --daemon: address of /metrics, /healthz and /readyz")
	return cmd
}

// agentRegistry holds the agent's metrics and the Go and process
// collectors. It is not controller-runtime's registry: that one would
// bring client-go into the node agent's build.
func agentRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

func runAgent(ctx context.Context, f *agentFlags, once bool, out io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	log, err := f.logger()
	if err != nil {
		return err
	}
	src, closeSrc, err := f.source(ctx, once, log)
	if err != nil {
		return err
	}
	defer closeSrc()
	a, err := agent.New(f.options(src, once, log))
	if err != nil {
		return err
	}
	if once {
		if err := a.SyncOnce(ctx); err != nil {
			return err
		}
		if f.dryRun {
			_, err := out.Write(a.LastResult().New)
			return err
		}
		return nil
	}
	log.Info("agent started", "hostsFile", f.hostsFile, "feed", f.feedURL != "")
	if f.listen == "" {
		return a.Run(ctx)
	}
	return serveWhile(ctx, f.listen, a.Handler(), a.Run)
}

// serveWhile binds addr now, so a port in use fails the command at start
// rather than leaving an agent without probes, then serves handler for as
// long as run runs. A server that fails ends run (through its context)
// and the command with its error; run returning closes the server.
func serveWhile(ctx context.Context, addr string, handler http.Handler, run func(context.Context) error) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", addr, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: 8 << 10}
	g, ctx := errgroup.WithContext(ctx)
	ctx, stop := context.WithCancel(ctx)
	g.Go(func() error {
		<-ctx.Done()
		return srv.Close()
	})
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serving %s: %w", addr, err)
		}
		return nil
	})
	g.Go(func() error {
		defer stop()
		return run(ctx)
	})
	return g.Wait()
}

// source is where the agent reads names: the feed at --feed, else the
// ledger read-only (its credentials checked when asked). release lets it go.
func (f *agentFlags) source(ctx context.Context, once bool, log logr.Logger) (_ agent.Source, release func(), err error) {
	if f.feedURL != "" {
		wait := f.feedWait
		if once {
			wait = 0
		}
		// The client timeout bounds a hung feed; it must outlast the long-poll.
		hc, err := f.feedClient.client(f.feedURL, wait+30*time.Second)
		if err != nil {
			return nil, nil, err
		}
		c, err := feed.NewClient(f.feedURL, hc, wait)
		if err != nil {
			return nil, nil, err
		}
		if f.nodeName != "" && !feed.ValidNodeName(f.nodeName) {
			return nil, nil, fmt.Errorf("--node-name %q: want a node name or hostname (letters, digits, '-', '.', '_')", f.nodeName)
		}
		c.SetNode(f.nodeName)
		return c, func() {}, nil
	}
	store, err := f.openLedger(ctx, log, true)
	if err != nil {
		return nil, nil, err
	}
	release = func() { _ = store.Close(context.WithoutCancel(ctx)) }
	if f.checkCredentials {
		if err := checkAgentCredentials(ctx, store, f.allowWrite, log); err != nil {
			release()
			return nil, nil, err
		}
	}
	return agent.NewLedgerSource(store, ledger.FollowerOptions{Overlap: f.overlap, ResyncEvery: f.resync}), release, nil
}

// options are the agent's options from the flags: a one-shot run (once)
// fails on a failing legacy updater, as 1.x did.
func (f *agentFlags) options(src agent.Source, once bool, log logr.Logger) agent.Options {
	opts := agent.Options{
		Source:   src,
		Writer:   &hostsfile.Writer{Path: f.hostsFile, BackupPath: f.backupFile, MaxShrink: f.maxShrink},
		Interval: f.interval,
		DryRun:   f.dryRun,
		Logger:   log,
		Metrics:  agentRegistry(),
	}
	if f.feedURL != "" && f.feedWait > 0 {
		opts.Interval = 0 // the long-poll paces the loop
	}
	if f.legacyUpdater != "" {
		prog, file, timeout := f.legacyUpdater, f.legacyFile, f.legacyTimeout
		opts.Legacy = func(ctx context.Context) ([]byte, error) {
			return hostsfile.RunLegacy(ctx, prog, file, timeout)
		}
		// A one-shot update fails without touching the file, as 1.x did;
		// the daemon keeps the last legacy section and goes on.
		opts.LegacyRequired = once
	}
	return opts
}
