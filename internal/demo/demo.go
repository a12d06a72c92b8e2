// Package demo plays Aerostat's story on one machine with nothing
// installed: the embedded store, a simulated EC2 fleet, the standalone
// controller serving its HTTP feed, and three node agents following that
// feed, each writing a local hosts file. It is what
// `make run` (aerostat demo) shows a newcomer, and its invariant checks make
// it a smoke test of the whole system.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/aerostat-io/aerostat/client"
	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/agent"
	"github.com/aerostat-io/aerostat/internal/cloud/fake"
	"github.com/aerostat-io/aerostat/internal/feed"
	"github.com/aerostat-io/aerostat/internal/hostsfile"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
	"github.com/aerostat-io/aerostat/internal/store/embedded"
	"github.com/aerostat-io/aerostat/internal/table"
)

// Options configure Run.
type Options struct {
	// Out receives the story; required.
	Out io.Writer
	// HostsFile is the file the first agent keeps (default ./demo-hosts).
	// Lines outside Aerostat's block are kept. The other agents write
	// hosts-<node> files in the data dir.
	HostsFile string
	// Web and DB are the initial fleet sizes (defaults 5 and 3; at least 2
	// each: the story frees two web names and promotes a db slave).
	Web, DB int
	// StepDelay is the pause after each step, to give a reader time; 0
	// runs straight through.
	StepDelay time.Duration
	// Once ends after the story; otherwise Run keeps the system running
	// (a web node is replaced every ChurnEvery) until ctx ends.
	Once       bool
	ChurnEvery time.Duration
	// DataDir holds the store; default a temp dir removed at the end.
	DataDir string
	Logger  logr.Logger
}

// Check is one invariant and whether it held.
type Check struct {
	Name   string
	OK     bool
	Detail string
}

// Report is what the story did and found.
type Report struct {
	// Names holds the names table (hostname → instance, "" for a gap)
	// after each step, keyed by step name.
	Names map[string][]client.Name
	// Checks are the invariants checked after the story.
	Checks []Check
	// Facts are the story's claims and whether they held ("after relaunch
	// the web names are web-0..web-5", …); checked like Checks.
	Facts []Check
}

// OK reports whether every check and fact held.
func (r Report) OK() bool {
	for _, c := range append(slices.Clone(r.Checks), r.Facts...) {
		if !c.OK {
			return false
		}
	}
	return true
}

// ErrInvariant is returned (wrapped) when a check or fact failed.
var ErrInvariant = errors.New("demo: an invariant did not hold")

const (
	defaultWeb   = 5
	defaultDB    = 3
	defaultChurn = 5 * time.Second

	// agents is how many nodes follow the feed: enough for "N of M hosts".
	agents = 3
	// feedWait is the agents' long-poll: a change reaches them as soon as
	// the feed has it, not at their next poll.
	feedWait = 30 * time.Second
	// convergeTimeout bounds the wait for every agent to report a rev; far
	// above what a loopback feed takes (milliseconds).
	convergeTimeout = 30 * time.Second
)

// node is one simulated host: an agent following the feed under a node
// name, writing its own hosts file.
type node struct {
	name  string
	path  string
	agent *agent.Agent
}

// world is the running system.
type world struct {
	opts   Options
	out    io.Writer
	fleet  *fake.Fleet
	store  *ledger.Mongo // the controller's writable ledger
	reader *client.Client
	ctrl   *controllers.Standalone
	feed   *feed.Handler
	feedLn net.Listener
	nodes  []node
	writer *hostsfile.Writer // the first node's file, for prepareHostsFile
	uri    string
	report Report
	step   int
	steps  int

	mu    sync.Mutex
	wrote time.Time // when the last ledger write not yet awaited committed
}

// Run plays the story. With Once it returns after the checks: an error
// wrapping ErrInvariant when one failed. Otherwise it keeps running until
// ctx ends and returns nil.
func Run(ctx context.Context, opts Options) (Report, error) {
	if err := defaults(&opts); err != nil {
		return Report{}, err
	}
	// The controller logs through the context; the story is the output.
	ctx = ctrllog.IntoContext(ctx, opts.Logger)

	dataDir := opts.DataDir
	if dataDir == "" {
		dir, err := os.MkdirTemp("", "aerostat-demo-")
		if err != nil {
			return Report{}, fmt.Errorf("creating demo data dir: %w", err)
		}
		defer os.RemoveAll(dir)
		dataDir = dir
	}
	srv, err := embedded.Start(ctx, embedded.Options{DataDir: dataDir, Logger: opts.Logger})
	if err != nil {
		return Report{}, err
	}
	defer srv.Close()

	w, closeAll, err := build(ctx, opts, srv.URI(), dataDir)
	if err != nil {
		return Report{}, err
	}
	defer closeAll()
	// Before the agents start: they write the same file.
	if err := w.prepareHostsFile(); err != nil {
		return Report{}, err
	}
	stop, err := w.start(ctx)
	if err != nil {
		return Report{}, err
	}
	defer stop()

	if err := w.story(ctx); err != nil {
		return w.report, err
	}
	if !w.report.OK() {
		return w.report, ErrInvariant
	}
	if opts.Once {
		return w.report, nil
	}
	return w.report, w.live(ctx)
}

func defaults(o *Options) error {
	if o.Out == nil {
		return errors.New("demo: Out is required")
	}
	if o.HostsFile == "" {
		o.HostsFile = "demo-hosts"
	}
	if o.Web == 0 {
		o.Web = defaultWeb
	}
	if o.DB == 0 {
		o.DB = defaultDB
	}
	if o.Web < 2 || o.Web > 1000 {
		return fmt.Errorf("web fleet size %d: want 2 to 1000 (the story frees two web names)", o.Web)
	}
	if o.DB < 2 || o.DB > 1000 {
		return fmt.Errorf("db fleet size %d: want 2 to 1000 (the story promotes a db slave)", o.DB)
	}
	if o.StepDelay < 0 {
		return fmt.Errorf("step delay %v: must not be negative", o.StepDelay)
	}
	if o.ChurnEvery <= 0 {
		o.ChurnEvery = defaultChurn
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	return nil
}

// build wires the demo's world on the store at uri: the ledger, read-only
// connections for the feed and the tables, the feed on a loopback port,
// the simulated fleet, the standalone controller and the node agents. The
// returned func closes what it opened; on error nothing is left open.
func build(ctx context.Context, opts Options, uri, dataDir string) (_ *world, _ func(), err error) {
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	store, err := ledger.Open(ctx, uri, ledger.Options{Logger: opts.Logger})
	if err != nil {
		return nil, nil, fmt.Errorf("opening demo ledger: %w", err)
	}
	closers = append(closers, func() { _ = store.Close(context.Background()) })

	// The feed and the tables read through read-only connections.
	feedStore, err := ledger.Open(ctx, uri, ledger.Options{ReadOnly: true, Logger: opts.Logger})
	if err != nil {
		return nil, nil, fmt.Errorf("opening demo ledger read-only: %w", err)
	}
	closers = append(closers, func() { _ = feedStore.Close(context.Background()) })
	reader, err := client.New(ctx, uri, client.Options{Logger: opts.Logger})
	if err != nil {
		return nil, nil, err
	}
	closers = append(closers, func() { _ = reader.Close(context.Background()) })

	w := &world{opts: opts, out: opts.Out, uri: uri, steps: 6, report: Report{Names: map[string][]client.Name{}}}
	// The controller's feed, as `aerostat controller --feed-bind-address` serves
	// it, on a loopback port; the controller's writes wake it.
	w.feed = feed.NewHandler(feedStore, feed.Options{Logger: opts.Logger})
	if w.feedLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, nil, fmt.Errorf("listening for the demo feed: %w", err)
	}
	closers = append(closers, func() { _ = w.feedLn.Close() })

	fleet := fake.NewFleet(&fake.LaunchClock{})
	syncer := controllers.NewSyncer(controllers.SyncerOptions{Cloud: fleet, Store: store, OnApplied: w.written})
	interval := max(opts.StepDelay, 500*time.Millisecond)
	// The story refills gaps within seconds of a termination: no hold-back
	// (a real fleet keeps the default of a few minutes). It also frees a
	// whole service at once, which the ten-minute release budget would
	// spread over twenty minutes; the per-pass cap still shows (converge).
	reap := controllers.DefaultReap()
	reap.HoldBack = 0
	reap.ReleaseWindow = 0
	ctrl := controllers.NewStandalone(controllers.StandaloneOptions{Syncer: syncer, Cloud: fleet, Store: store, Interval: interval, Reap: reap})

	w.fleet, w.store, w.reader, w.ctrl = fleet, store, reader, ctrl
	if err := w.addNodes(dataDir); err != nil {
		return nil, nil, fmt.Errorf("making the demo's node agents: %w", err)
	}
	return w, closeAll, nil
}

// addNodes makes the node agents, each following the feed into its own
// hosts file: the first writes opts.HostsFile (the one the story shows),
// the others files of their own in dataDir.
func (w *world) addNodes(dataDir string) error {
	feedURL := "http://" + w.feedLn.Addr().String()
	for i := range agents {
		n := node{name: fmt.Sprintf("demo-node-%d", i+1), path: w.opts.HostsFile}
		backup := filepath.Join(dataDir, "hosts.bak")
		if i > 0 {
			n.path = filepath.Join(dataDir, "hosts-"+n.name)
			backup = n.path + ".bak"
			// This demo's own file: a previous run's block would be stale.
			if err := os.Remove(n.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		c, err := feed.NewClient(feedURL, &http.Client{Timeout: feedWait + 30*time.Second}, feedWait)
		if err != nil {
			return err
		}
		c.SetNode(n.name)
		writer := &hostsfile.Writer{Path: n.path, BackupPath: backup}
		if i == 0 {
			w.writer = writer
		}
		// Interval 0: long-poll again as soon as a sync is done; that
		// request also tells the feed what the file now holds.
		if n.agent, err = agent.New(agent.Options{Source: c, Writer: writer, Metrics: prometheus.NewRegistry(), Logger: w.opts.Logger}); err != nil {
			return err
		}
		w.nodes = append(w.nodes, n)
	}
	return nil
}

// start serves the feed and runs the agents until the returned stop.
func (w *world) start(ctx context.Context) (stop func(), err error) {
	// Synced before the agents ask, so their first request gets names,
	// not a 503 and a backoff.
	if err := w.feed.SyncOnce(ctx); err != nil {
		return nil, fmt.Errorf("first feed sync: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	srv := feed.NewServer("", w.feed, 0)
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(w.feedLn) })
	wg.Go(func() { _ = w.feed.Start(ctx) })
	for _, n := range w.nodes {
		wg.Go(func() { _ = n.agent.Run(ctx) })
	}
	return func() {
		cancel()
		_ = srv.Close()
		wg.Wait()
	}, nil
}

// written is called when the controller (or a promotion) committed
// ledger changes: it wakes the feed and notes the time, from which the
// next convergence is measured.
func (w *world) written() {
	w.mu.Lock()
	w.wrote = time.Now()
	w.mu.Unlock()
	w.feed.Notify()
}

func (w *world) say(format string, args ...any) {
	fmt.Fprintf(w.out, format+"\n", args...)
}

// begin prints a step's narration.
func (w *world) begin(format string, args ...any) {
	w.step++
	w.say("")
	w.say("[%d/%d] "+format, append([]any{w.step, w.steps}, args...)...)
}

func (w *world) pause(ctx context.Context) {
	if w.opts.StepDelay <= 0 {
		return
	}
	t := time.NewTimer(w.opts.StepDelay)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// launch starts n instances of a service one by one.
func (w *world) launch(service string, scheme naming.Scheme, n int) []string {
	tags := map[string]string{controllers.TagService: service, controllers.TagServiceType: strings.ToLower(string(scheme))}
	var ids []string
	for range n {
		ids = append(ids, w.fleet.Launch(1, tags)...)
	}
	return ids
}

// maxPasses bounds converge: the reap cap releases at most half of a
// service's names per pass, so freeing all of a small fleet takes a few.
const maxPasses = 8

// converge runs controller passes until nothing is held back, prints what
// the controller changed, then waits until every agent has it.
func (w *world) converge(ctx context.Context) error {
	for range maxPasses {
		sum, err := w.ctrl.Pass(ctx)
		if err != nil {
			return fmt.Errorf("controller pass: %w", err)
		}
		deferred := 0
		for _, svc := range sum.Services {
			for _, c := range sum.Passes[svc].AppliedChanges() {
				w.say("      controller: %s", naming.Describe(c))
			}
			deferred += len(sum.Passes[svc].Plan.Deferred)
		}
		if deferred == 0 {
			break
		}
		w.say("      controller: %d release(s) held back by the reap cap (at most half a service per pass); passing again", deferred)
	}
	return w.awaitHosts(ctx)
}

// awaitHosts waits until the feed's node table shows every agent at the
// ledger's current rev and prints how long that took after the last
// write. It fails after convergeTimeout.
func (w *world) awaitHosts(ctx context.Context) error {
	rev, err := w.store.Rev(ctx)
	if err != nil {
		return fmt.Errorf("reading ledger rev: %w", err)
	}
	c, at, err := w.waitConverged(ctx, rev)
	if err != nil {
		return err
	}
	w.mu.Lock()
	wrote := w.wrote
	w.wrote = time.Time{}
	w.mu.Unlock()
	if wrote.IsZero() {
		w.say("      convergence: %d of %d hosts at rev %d (nothing written)", c.AtLeast(rev), c.Total, rev)
		return nil
	}
	w.say("      convergence: %d of %d hosts at rev %d, %d ms after the change", c.AtLeast(rev), c.Total, rev, at.Sub(wrote).Milliseconds())
	return nil
}

// waitConverged polls the feed's node table (in-process, as GET
// /v1/nodes serves it) until every agent holds at least rev; at is when
// it first did.
func (w *world) waitConverged(ctx context.Context, rev int64) (c feed.Convergence, at time.Time, err error) {
	ctx, cancel := context.WithTimeout(ctx, convergeTimeout)
	defer cancel()
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		c = w.feed.Convergence()
		if converged(c, rev, w.nodeNames()).OK {
			return c, time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return c, time.Time{}, fmt.Errorf("waiting for every host to reach rev %d: %s: %w", rev, converged(c, rev, w.nodeNames()).Detail, ctx.Err())
		case <-t.C:
		}
	}
}

func (w *world) nodeNames() []string {
	names := make([]string, len(w.nodes))
	for i, n := range w.nodes {
		names[i] = n.name
	}
	return names
}

// converged checks that the node table has every one of nodes, live, with
// its hosts file at rev or later.
func converged(c feed.Convergence, rev int64, nodes []string) Check {
	ck := Check{Name: fmt.Sprintf("every agent reached the final rev %d (feed: %d of %d hosts)", rev, c.AtLeast(rev), c.Total), OK: true}
	var bad []string
	for _, name := range nodes {
		i := slices.IndexFunc(c.Nodes, func(s feed.NodeState) bool { return s.Name == name })
		switch {
		case i < 0:
			bad = append(bad, name+" is not in the feed's node table")
		case c.Nodes[i].Rev < rev:
			bad = append(bad, fmt.Sprintf("%s is at rev %d", name, c.Nodes[i].Rev))
		}
	}
	if len(bad) > 0 {
		ck.OK, ck.Detail = false, strings.Join(bad, "; ")
	}
	return ck
}

// show prints the names table and keeps it in the report.
func (w *world) show(ctx context.Context, key string) error {
	names, err := w.reader.Names(ctx, client.Selector{})
	if err != nil {
		return err
	}
	w.report.Names[key] = names
	w.say("")
	var b strings.Builder
	if err := table.Names(&b, names, table.Table, false, time.Now()); err != nil {
		return err
	}
	for _, line := range strings.SplitAfter(strings.TrimSuffix(b.String(), "\n"), "\n") {
		fmt.Fprint(w.out, "    "+line)
	}
	w.say("")
	return nil
}

// holder returns the instance holding hostname ("" if none).
func holder(names []client.Name, hostname string) string {
	for _, n := range names {
		if n.Hostname == hostname && n.State == client.Bound {
			return n.InstanceID
		}
	}
	return ""
}

func (w *world) fact(name string, ok bool, detail string) {
	w.report.Facts = append(w.report.Facts, Check{Name: name, OK: ok, Detail: detail})
}
