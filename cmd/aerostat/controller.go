//go:build !agentonly

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/aerostat-io/aerostat/api/v1alpha1"
	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/events"
	"github.com/aerostat-io/aerostat/internal/feed"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/memlimit"
	"github.com/aerostat-io/aerostat/internal/naming"
)

type controllerFlags struct {
	standalone, once                 bool
	server, database, dataDir        string
	flags                            *pflag.FlagSet // tells whether --data-dir or --ledger was given
	ec2Endpoint, region              string
	pollInterval                     time.Duration
	sqsQueueURL, sqsEndpoint         string
	eventsPollInterval               time.Duration
	reap                             reapFlags
	metricsAddr, probeAddr, feedAddr string
	leaderElect, metricsSecure       bool
	leaderElectionNamespace, kubecfg string
	log                              logFlags
	ec2                              ec2Flags
	feedSec                          feedServeFlags
	aliases                          aliasFlags
	attest                           attestServeFlags
}

func newControllerCmd() *cobra.Command {
	var f controllerFlags
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Keep the name ledger true to EC2 (Kubernetes controller, or --standalone)",
		Long: `Lists EC2 instances every --poll-interval, plans names per service and
applies the changes to the ledger. In Kubernetes the services are
NamingService objects; with --standalone they come from instance tags
(aerostat:service, aerostat:service-type, aerostat:aliases) and from the
services nodes registered in the ledger.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("leader-elect") {
				f.leaderElect = os.Getenv("KUBERNETES_SERVICE_HOST") != ""
			}
			return runController(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.standalone, "standalone", false, "run without Kubernetes: policies from EC2 instance tags and the ledger")
	fl.BoolVar(&f.once, "once", false, "run one full pass and exit (non-zero if EC2 could not be observed)")
	f.flags = fl
	addLedgerFlag(fl, &f.server, defaultLedger(), ledgerFlagHelp+"; --data-dir without --ledger starts the embedded store there instead", true)
	fl.StringVar(&f.database, "database", ledger.DefaultDatabase, "ledger database")
	fl.StringVar(&f.dataDir, "data-dir", defaultDataDir(), "embedded store directory (created if missing): used when given without --ledger (or with --ledger \"\")")
	fl.StringVar(&f.ec2Endpoint, "ec2-endpoint", "", "EC2 API endpoint URL (default: AWS_ENDPOINT_URL_EC2 or the region's endpoint)")
	fl.StringVar(&f.region, "region", "", "AWS region (default: AWS_REGION or the shared config)")
	fl.DurationVar(&f.pollInterval, "poll-interval", controllers.DefaultPollInterval, "how often EC2 is listed")
	fl.StringVar(&f.sqsQueueURL, "sqs-queue-url", "", "SQS queue that an EventBridge rule fills with EC2 state-change notifications; events wake a pass at once and the poll becomes the safety net (empty: poll only)")
	fl.StringVar(&f.sqsEndpoint, "sqs-endpoint", "", "SQS API endpoint URL (default: AWS_ENDPOINT_URL_SQS or the region's endpoint)")
	fl.DurationVar(&f.eventsPollInterval, "events-poll-interval", controllers.DefaultEventsPollInterval, "with --sqs-queue-url: how often EC2 is listed while the queue is healthy (a failing or silent queue brings back --poll-interval)")
	f.reap.register(fl)
	fl.StringVar(&f.metricsAddr, "metrics-bind-address", ":8080", "address of /metrics; 0 disables")
	fl.BoolVar(&f.metricsSecure, "metrics-secure", true, "serve /metrics over HTTPS to callers that TokenReview authenticates and SubjectAccessReview allows get on /metrics (Kubernetes mode)")
	fl.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz; 0 disables")
	fl.StringVar(&f.feedAddr, "feed-bind-address", "", "address of the agents' read-only HTTP feed (GET /v1/hosts); empty disables")
	fl.BoolVar(&f.leaderElect, "leader-elect", false, "elect one active controller through a Lease (default true in a cluster)")
	fl.StringVar(&f.leaderElectionNamespace, "leader-election-namespace", "", "namespace of the Lease (default: the pod's namespace)")
	fl.StringVar(&f.kubecfg, "kubeconfig", "", "kubeconfig path (default: KUBECONFIG, in-cluster, ~/.kube/config)")
	f.ec2.register(fl)
	f.feedSec.register(fl)
	f.aliases.register(fl)
	f.attest.register(fl)
	f.log.register(fl)
	return cmd
}

// reapFlags is the standalone reap policy (NamingServices set the same
// in spec.reapPolicy).
type reapFlags struct {
	holdBack, stoppedGrace, releaseWindow time.Duration
}

func (r *reapFlags) register(fl *pflag.FlagSet) {
	fl.DurationVar(&r.holdBack, "hold-back", controllers.DefaultHoldBack, "standalone: how long a released name is kept from other instances; 0 reuses names at once (1.x)")
	fl.DurationVar(&r.stoppedGrace, "stopped-grace-period", controllers.DefaultStoppedGracePeriod, "standalone: how long a stopped instance keeps its name; 0 releases it at once (1.x)")
	fl.DurationVar(&r.releaseWindow, "release-window", controllers.DefaultReleaseWindow, "standalone: within any window this long a service releases at most half the names it had bound when the window began, across passes and restarts; 0 leaves only the per-pass cap")
}

// policy is the reap policy of every standalone service.
func (r reapFlags) policy() (naming.ReapPolicy, error) {
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--hold-back", r.holdBack}, {"--stopped-grace-period", r.stoppedGrace}, {"--release-window", r.releaseWindow}} {
		if d.v < 0 {
			return naming.ReapPolicy{}, fmt.Errorf("%s %v: must not be negative", d.flag, d.v)
		}
	}
	p := controllers.DefaultReap()
	p.HoldBack, p.StoppedGracePeriod, p.ReleaseWindow = r.holdBack, r.stoppedGrace, r.releaseWindow
	return p, nil
}

func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "aerostat")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "aerostat")
	}
	return "aerostat-data"
}

func runController(ctx context.Context, f controllerFlags) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, logger, err := controllerProcess(ctx, f)
	if err != nil {
		return err
	}
	reap, err := f.reap.policy()
	if err != nil {
		return err
	}
	// Every commit through this store (passes, attested registrations)
	// wakes the feed once it exists, instead of waiting for its poll tick.
	var wakeFeed atomic.Pointer[func()]
	store, closeStore, err := openLedger(ctx, f, logger, func() {
		if wake := wakeFeed.Load(); wake != nil {
			(*wake)()
		}
	})
	if err != nil {
		return err
	}
	defer closeStore()
	ec2, err := newControllerCloud(ctx, f)
	if err != nil {
		return err
	}
	// Passes plan from a copy kept by deltas (change log reads) instead of
	// reading the whole ledger each time.
	planStore := ledger.NewCache(store, ledger.FollowerOptions{})
	opts, err := syncerOptions(f, store, planStore, ec2)
	if err != nil {
		return err
	}
	var hosts controllers.HostsReporter // status.hosts, from the feed's agents
	// always run beside the controller until ctx ends, under the manager or
	// (standalone) an errgroup: one failing ends the controller.
	var always []manager.Runnable
	if f.feedAddr != "" && !f.once {
		fh, feedSrv, err := serveFeed(f, logger, store, planStore, ec2.cloud, opts.Aliases)
		if err != nil {
			return err
		}
		hosts = fh
		notify := fh.Notify
		wakeFeed.Store(&notify)
		// Every replica serves the feed: neither needs the leader.
		always = append(always, fh, feedSrv)
	}
	if f.attest.enabled && (f.feedAddr == "" || f.once) {
		return errors.New("--attest-nodes: needs the feed (--feed-bind-address, not --once), which serves it")
	}
	syncer := controllers.NewSyncer(opts)

	src, err := eventSource(ctx, f, logger)
	if err != nil {
		return err
	}
	health := controllers.NewPassHealth(clock.RealClock{}, controllers.PassFailureWindow(f.passInterval(src != nil)))
	if f.standalone {
		sa := controllers.NewStandalone(controllers.StandaloneOptions{Syncer: syncer, Cloud: ec2.cloud, Store: planStore, Interval: f.pollInterval,
			Reap: reap, Events: src, EventsInterval: f.eventsPollInterval,
			OnPass: func(_ string, err error) { health.Observe("", err) }})
		if f.once {
			sum, err := sa.Pass(ctx)
			logger.Info("pass done", "services", len(sum.Services), "changes", sum.Changes)
			return err
		}
		return runStandalone(ctx, f, sa, src, always, readyChecks(store, health))
	}
	return runManager(ctx, f, syncer, managerExtras{hosts: hosts, store: store, events: src, cloud: ec2.cloud, budget: ec2.budget,
		shared: ec2.shared, always: always, health: health})
}

// controllerProcess sets the process up: the logger (controller-runtime's
// and ctx's) and the Go memory limit.
func controllerProcess(ctx context.Context, f controllerFlags) (context.Context, logr.Logger, error) {
	logger, err := f.log.logger(os.Stderr)
	if err != nil {
		return ctx, logger, err
	}
	ctrl.SetLogger(logger)
	// The chart passes the container's memory limit: a soft limit below it
	// makes the collector work harder instead of the kernel killing us.
	memLimit, err := memlimit.Apply(os.Getenv)
	if err != nil {
		return ctx, logger, err
	}
	logger.V(1).Info("go memory limit", "bytes", memLimit)
	return logr.NewContext(ctx, logger), logger, nil
}

// controllerCloud is the controller's EC2: the instrumented client (for
// events and tag write-back), the call budget metering the passes'
// listings and the sweep they share.
type controllerCloud struct {
	cloud  cloud.Cloud
	budget *controllers.CallBudget
	shared *cloud.Shared
}

func newControllerCloud(ctx context.Context, f controllerFlags) (controllerCloud, error) {
	if err := f.ec2.validate(f.standalone); err != nil {
		return controllerCloud{}, err
	}
	ec2Client, err := cloud.NewEC2(ctx, cloud.EC2Options{Region: f.region, Endpoint: f.ec2Endpoint,
		CallsPerSecond: f.ec2.callsPerSecond, Burst: f.ec2.burst})
	if err != nil {
		return controllerCloud{}, fmt.Errorf("ec2 client: %w", err)
	}
	// aerostat_ec2_requests_total and friends, served with the manager's
	// metrics (or by serveStandaloneEndpoints).
	ec2 := cloud.Instrument(ec2Client, crmetrics.Registry)
	// One sweep of every aerostat:service-tagged instance answers all the
	// services of a poll: 10 calls a poll at 10,000 instances.
	// Kubernetes mode meters every listing under the sweep, so with events
	// the waker keeps event batches within polling's calls (the
	// standalone loop meters its own).
	budget := controllers.NewCallBudget(nil, f.pollInterval, f.eventsPollInterval)
	shared := cloud.NewShared(budget.Meter(ec2), cloud.SharedOptions{TagKey: controllers.TagService, MaxAge: f.pollInterval / 2})
	return controllerCloud{cloud: ec2, budget: budget, shared: shared}, nil
}

// syncerOptions wires the passes: the shared sweep, the plan copy, the
// 1.x leftovers read from the store itself, alias rules and tag
// write-back.
func syncerOptions(f controllerFlags, store ledger.Store, planStore *ledger.Cache, ec2 controllerCloud) (controllers.SyncerOptions, error) {
	metrics, err := controllers.NewMetrics(crmetrics.Registry)
	if err != nil {
		return controllers.SyncerOptions{}, err
	}
	opts := controllers.SyncerOptions{Cloud: ec2.shared, Store: planStore, Metrics: metrics}
	// Both modes repair 1.x change-master leftovers, read from the store
	// itself: the plan copy holds named records only.
	opts.Unnamed, _ = store.(controllers.UnnamedStore)
	// Off the per-pass path: an unindexed scan on the embedded store.
	opts.UnnamedEvery = ledger.DefaultResyncEvery
	if opts.Aliases, err = f.aliases.guard(); err != nil {
		return opts, fmt.Errorf("alias rules: %w", err)
	}
	if f.ec2.tagWriteBack {
		tagger, ok := ec2.cloud.(cloud.Tagger)
		if !ok {
			return opts, errors.New("--tag-write-back: the EC2 client cannot write tags")
		}
		if opts.Tags, err = controllers.NewTagWriter(tagger, f.ec2.tagsPerPass, crmetrics.Registry); err != nil {
			return opts, err
		}
	}
	return opts, nil
}

// serveFeed makes the read-only feed every replica serves, leader or not,
// and its server (TLS and the agents' authentication, attestation when
// asked). The feed follows the passes' copy of the ledger: one copy of the
// records in this process, not two.
func serveFeed(f controllerFlags, logger logr.Logger, store ledger.Store, planStore *ledger.Cache, ec2 cloud.Cloud,
	aliases *naming.AliasGuard) (*feed.Handler, manager.Runnable, error) {
	fo := feed.Options{Logger: logger.WithName("feed"), Source: planStore.Feed()}
	if share, ok := store.(feed.NodeShare); ok {
		// Agents spread over the replicas; each reports them all.
		fo.Share = share
		fo.Replica, _ = os.Hostname() // the pod name in a cluster
	}
	fh := feed.NewHandler(store, fo)
	if err := feed.RegisterMetrics(crmetrics.Registry, fh); err != nil {
		return nil, nil, err
	}
	srv := feed.NewServer(f.feedAddr, fh, 0)
	kube := func() (kubernetes.Interface, error) {
		cfg, err := restConfig(f.kubecfg)
		if err != nil {
			return nil, err
		}
		return kubernetes.NewForConfig(cfg)
	}
	if err := f.feedSec.secure(srv, fh, logger.WithName("feed"), kube); err != nil {
		return nil, nil, err
	}
	if err := f.attest.mount(srv, ec2, store, aliases, logger.WithName("attest")); err != nil {
		return nil, nil, err
	}
	feedSrv, err := httpServer("feed", srv)
	if err != nil {
		return nil, nil, err
	}
	return fh, feedSrv, nil
}

// runStandalone runs the passes, the event source, the endpoints and the
// always runnables in one errgroup: a server that cannot bind or fails
// ends the controller with its error instead of only logging it.
func runStandalone(ctx context.Context, f controllerFlags, sa *controllers.Standalone, src *events.Source, always []manager.Runnable, ready map[string]healthz.Checker) error {
	endpoints, err := standaloneEndpoints(f, ready)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	for _, r := range append(always, endpoints...) {
		g.Go(func() error { return r.Start(ctx) })
	}
	if src != nil {
		g.Go(func() error { return src.Run(ctx) })
	}
	g.Go(func() error { return sa.Run(ctx) })
	return g.Wait()
}

// eventSource is the SQS event source of --sqs-queue-url, or nil.
func eventSource(ctx context.Context, f controllerFlags, logger logr.Logger) (*events.Source, error) {
	if f.sqsQueueURL == "" || f.once {
		return nil, nil
	}
	q, err := events.NewSQS(ctx, events.SQSOptions{QueueURL: f.sqsQueueURL, Region: f.region, Endpoint: f.sqsEndpoint})
	if err != nil {
		return nil, err
	}
	return events.NewSource(events.SourceOptions{Queue: q, Registerer: crmetrics.Registry, Logger: logger.WithName("events")})
}

func openLedger(ctx context.Context, f controllerFlags, logger logr.Logger, onCommit func()) (ledger.Store, func(), error) {
	sf := storeFlags{server: f.server, dataDir: f.dataDir, database: f.database, fl: f.flags, createDataDir: true, onCommit: onCommit}
	return sf.open(ctx, false, logger)
}

// managerExtras are what the manager's optional parts need.
type managerExtras struct {
	hosts  controllers.HostsReporter // fills status.hosts; nil without a feed
	store  ledger.Store              // read by the hosts ConfigMap
	events *events.Source            // EC2 events; nil without --sqs-queue-url
	cloud  cloud.Cloud               // describes the instances events name
	budget *controllers.CallBudget   // meters the passes' listings
	shared *cloud.Shared             // the passes' sweep, dropped when events are taken
	always []manager.Runnable        // the feed: on every replica, leader or not
	health *controllers.PassHealth   // hears of every pass, for /readyz
}

// passInterval is the longest a healthy controller goes between passes
// of a service: the safety-net poll with events, else the poll.
func (f controllerFlags) passInterval(events bool) time.Duration {
	if events {
		return max(f.pollInterval, f.eventsPollInterval)
	}
	return f.pollInterval
}

// runManager runs the NamingService reconciler and, with
// --hosts-configmap, the hosts ConfigMap for CoreDNS.
func runManager(ctx context.Context, f controllerFlags, syncer *controllers.Syncer, x managerExtras) error {
	cfg, err := restConfig(f.kubecfg)
	if err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	if f.once {
		c, err := client.New(cfg, client.Options{Scheme: scheme})
		if err != nil {
			return fmt.Errorf("kubernetes client: %w", err)
		}
		r := &controllers.NamingServiceReconciler{Client: c, Syncer: syncer}
		return r.Once(ctx)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsOptions(f.metricsAddr, f.metricsSecure),
		HealthProbeBindAddress:        f.probeAddr,
		LeaderElection:                f.leaderElect,
		LeaderElectionID:              "aerostat-controller.aerostat.io",
		LeaderElectionNamespace:       f.leaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	for _, r := range x.always {
		if err := mgr.Add(r); err != nil {
			return err
		}
	}
	poller := controllers.NewPoller(f.pollInterval, nil)
	if err := mgr.Add(poller); err != nil {
		return err
	}
	r := &controllers.NamingServiceReconciler{Client: mgr.GetClient(), Syncer: syncer, Recorder: mgr.GetEventRecorderFor("aerostat-controller"), Hosts: x.hosts, Health: x.health}
	if x.events != nil {
		if r.Events, err = controllers.NewEventWaker(controllers.EventWakerOptions{Events: x.events, Cloud: x.cloud, Reader: mgr.GetClient(),
			Budget: x.budget, Cache: x.shared}); err != nil {
			return err
		}
		if err := mgr.Add(r.Events); err != nil {
			return err
		}
		poller.WithEvents(x.events, f.eventsPollInterval)
	}
	if err := r.SetupWithManager(mgr, poller.Ticks()); err != nil {
		return fmt.Errorf("setting up reconciler: %w", err)
	}
	if f.ec2.hostsConfigMap != "" {
		key, err := controllers.ParseConfigMapRef(f.ec2.hostsConfigMap)
		if err != nil {
			return err
		}
		// Uncached reads: a cached client would watch every ConfigMap.
		cm := controllers.NewHostsConfigMap(controllers.HostsConfigMapOptions{Store: x.store, Reader: mgr.GetAPIReader(), Writer: mgr.GetClient(), Key: key})
		if err := mgr.Add(cm); err != nil {
			return err
		}
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	for name, check := range readyChecks(x.store, x.health) {
		if err := mgr.AddReadyzCheck(name, check); err != nil {
			return err
		}
	}
	return mgr.Start(ctx)
}

// metricsOptions puts /metrics behind controller-runtime's authentication
// and authorization filter, as kubebuilder v4 scaffolds: HTTPS with a
// self-signed certificate, a bearer token checked by TokenReview, and a
// SubjectAccessReview for get on the non-resource URL /metrics.
func metricsOptions(addr string, secure bool) metricsserver.Options {
	o := metricsserver.Options{BindAddress: addr, SecureServing: secure}
	if secure {
		o.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	return o
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %q: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes config (use --standalone to run without Kubernetes): %w", err)
	}
	return cfg, nil
}

// readyChecks are /readyz's checks in both modes: ping, the ledger
// answers, and passes are not failing.
func readyChecks(store ledger.Store, health *controllers.PassHealth) map[string]healthz.Checker {
	return map[string]healthz.Checker{
		"ping":   healthz.Ping,
		"ledger": controllers.LedgerReady(store, controllers.DefaultReadyTimeout),
		"passes": health.Check,
	}
}

// standaloneEndpoints are /metrics and the probes without a manager. The
// probes are controller-runtime's handlers with the checks the manager
// has in Kubernetes mode: /readyz fails while any of ready does.
func standaloneEndpoints(f controllerFlags, ready map[string]healthz.Checker) ([]manager.Runnable, error) {
	var out []manager.Runnable
	if f.metricsAddr != "" && f.metricsAddr != "0" {
		r, err := httpServer("metrics", &http.Server{Addr: f.metricsAddr, ReadHeaderTimeout: 10 * time.Second,
			Handler: promhttp.HandlerFor(crmetrics.Registry, promhttp.HandlerOpts{})})
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if f.probeAddr != "" && f.probeAddr != "0" {
		probes := http.NewServeMux()
		healthzH := &healthz.Handler{Checks: map[string]healthz.Checker{"ping": healthz.Ping}}
		readyzH := &healthz.Handler{Checks: ready}
		// As the manager mounts them: /readyz, and /readyz/ledger for one check.
		for path, h := range map[string]http.Handler{"/healthz": healthzH, "/readyz": readyzH} {
			probes.Handle(path, http.StripPrefix(path, h))
			probes.Handle(path+"/", http.StripPrefix(path, h))
		}
		r, err := httpServer("probes", &http.Server{Addr: f.probeAddr, Handler: probes, ReadHeaderTimeout: 10 * time.Second})
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// httpServer binds srv's address now, so a port in use fails the command
// at start, and returns the manager runnable that serves it (TLS when srv
// has a TLS config) on every replica until its context ends.
func httpServer(name string, srv *http.Server) (*manager.Server, error) {
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		return nil, fmt.Errorf("%s server: %w", name, err)
	}
	if srv.TLSConfig != nil {
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	shutdown := 5 * time.Second
	return &manager.Server{Name: name, Server: srv, Listener: ln, ShutdownTimeout: &shutdown}, nil
}
