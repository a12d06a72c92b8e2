// Package demo plays Aerostat's story on one machine with nothing
// installed: the embedded store, a simulated EC2 fleet, the standalone
// controller and a node agent writing a local hosts file. It is what
// `make run` (aerostat demo) shows a newcomer, and its invariant checks make
// it a smoke test of the whole system.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
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
	// HostsFile is the file the agent keeps (default ./demo-hosts). Lines
	// outside Aerostat's block are kept.
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
)

// world is the running system.
type world struct {
	opts    Options
	out     io.Writer
	fleet   *fake.Fleet
	store   *ledger.Mongo // the controller's writable ledger
	reader  *client.Client
	ctrl    *controllers.Standalone
	agent   *agent.Agent
	writer  *hostsfile.Writer
	uri     string
	report  Report
	step    int
	steps   int
	agentMu sync.Mutex // SyncOnce is not concurrent-safe
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

func build(ctx context.Context, opts Options, uri, dataDir string) (*world, func(), error) {
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	store, err := ledger.Open(ctx, uri, ledger.Options{Logger: opts.Logger})
	if err != nil {
		return nil, nil, fmt.Errorf("opening demo ledger: %w", err)
	}
	closers = append(closers, func() { _ = store.Close(context.Background()) })

	// The agent and the tables read through read-only connections, as
	// nodes and admin tools do.
	agentStore, err := ledger.Open(ctx, uri, ledger.Options{ReadOnly: true, Logger: opts.Logger})
	if err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("opening demo ledger read-only: %w", err)
	}
	closers = append(closers, func() { _ = agentStore.Close(context.Background()) })
	reader, err := client.New(ctx, uri, client.Options{Logger: opts.Logger})
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	closers = append(closers, func() { _ = reader.Close(context.Background()) })

	fleet := fake.NewFleet(&launchClock{})
	syncer := controllers.NewSyncer(controllers.SyncerOptions{Cloud: fleet, Store: store})
	interval := max(opts.StepDelay, 500*time.Millisecond)
	// The story refills gaps within seconds of a termination: no hold-back
	// (a real fleet keeps the default of a few minutes).
	reap := controllers.DefaultReap()
	reap.HoldBack = 0
	ctrl := controllers.NewStandalone(controllers.StandaloneOptions{Syncer: syncer, Cloud: fleet, Store: store, Interval: interval, Reap: reap})

	writer := &hostsfile.Writer{Path: opts.HostsFile, BackupPath: filepath.Join(dataDir, "hosts.bak")}
	ag, err := agent.New(agent.Options{
		Source:   agent.NewLedgerSource(agentStore, feed.FollowerOptions{}),
		Writer:   writer,
		Interval: interval,
		Metrics:  prometheus.NewRegistry(),
		Logger:   opts.Logger,
	})
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	w := &world{opts: opts, out: opts.Out, fleet: fleet, store: store, reader: reader, ctrl: ctrl,
		agent: ag, writer: writer, uri: uri, steps: 6,
		report: Report{Names: map[string][]client.Name{}}}
	return w, closeAll, nil
}

// launchClock hands out strictly increasing times, so instances launched
// one after another have distinct launch times and are named in launch
// order (oldest first).
type launchClock struct {
	mu   sync.Mutex
	last time.Time
}

func (c *launchClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now().UTC().Truncate(time.Millisecond)
	if !now.After(c.last) {
		now = c.last.Add(time.Millisecond)
	}
	c.last = now
	return now
}

func (c *launchClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

var _ clock.PassiveClock = (*launchClock)(nil)

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

// converge runs controller passes until nothing is held back, then one
// agent sync, and prints what the controller changed.
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
	return w.syncAgent(ctx)
}

func (w *world) syncAgent(ctx context.Context) error {
	w.agentMu.Lock()
	defer w.agentMu.Unlock()
	if err := w.agent.SyncOnce(ctx); err != nil {
		return fmt.Errorf("agent sync: %w", err)
	}
	return nil
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
