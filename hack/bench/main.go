// Command bench is Aerostat's scale harness (`make bench`). For each fleet
// size it runs, in one process, the embedded store, the fake EC2 server
// behind the real EC2 adapter, the standalone controller's pass, the
// controller's HTTP feed and N in-process agents writing real hosts files
// in a temp dir; it changes the fleet and measures how long each change
// takes to reach the ledger and every hosts file, and what each pass
// costs. Beside it, a model of Aerostat 1.x's query pattern runs against
// the same store. It prints one table and writes bench/results.json.
//
// Each fleet size runs in a child process (this binary, -child=scenario)
// so its peak RSS is its own; one more child (-child=agent) is a real
// agent whose CPU and RSS are measured alone.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/agent"
	"github.com/aerostat-io/aerostat/internal/feed"
	"github.com/aerostat-io/aerostat/internal/hostsfile"
)

type config struct {
	sizes, plannerSizes []int
	agents, events      int
	largeEvents         int
	churnRate           float64
	poll, feedPoll      time.Duration
	feedWait            time.Duration
	ec2Rate             float64
	steadyPasses        int
	initialMax          int
	legacyServerPoll    time.Duration
	legacyClientPoll    time.Duration
	timeout             time.Duration
	out                 string
	seed                uint64
	noRegister          bool
	child               string
	print               string
	size                int
	feedURL, hostsFile  string
	eventsSizes         []int
	eventsChurn         int
	eventsWindow        time.Duration
	eventsPoll          time.Duration
	eventsTrace         bool
	mode                string
	bootstrapSizes      []int
	scaleSizes          []int
	cpuProfile          string
	memProfile          string
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	sizes := fs.String("n", "100,1000,10000", "fleet sizes (instances) for the system scenario")
	plannerSizes := fs.String("planner-n", "100,1000,10000,50000", "input sizes for the planner alone")
	fs.IntVar(&c.agents, "agents", 20, "in-process agents following the feed (each writes its own hosts file)")
	fs.IntVar(&c.events, "events", 12, "fleet changes per size: replacements (terminate+launch, tagged) alternating with registrations")
	fs.IntVar(&c.largeEvents, "large-events", 6, "fleet changes for sizes of 10,000 and more (each store operation scans the collection there)")
	fs.Float64Var(&c.churnRate, "churn", 2, "fleet changes per second")
	fs.DurationVar(&c.poll, "poll", controllers.DefaultPollInterval, "controller EC2 poll interval (aerostat controller --poll-interval)")
	fs.DurationVar(&c.feedPoll, "feed-poll", time.Second, "feed's ledger poll interval (it is also woken by the controller's writes)")
	fs.DurationVar(&c.feedWait, "feed-wait", 30*time.Second, "agents' long-poll (aerostat agent --feed-wait)")
	fs.Float64Var(&c.ec2Rate, "ec2-rate", 5, "EC2 calls per second budget (the adapter's default)")
	fs.IntVar(&c.steadyPasses, "steady-passes", 3, "idle controller passes measured per size")
	fs.IntVar(&c.initialMax, "initial-max", 20, "instances of the initial fleet named by the controller; older ones are inserted in bulk")
	fs.DurationVar(&c.legacyServerPoll, "legacy-server-poll", time.Minute, "model of 1.x: aerostatd EC2 poll")
	fs.DurationVar(&c.legacyClientPoll, "legacy-client-poll", time.Minute, "model of 1.x: updater poll on each node")
	fs.DurationVar(&c.timeout, "timeout", 3*time.Minute, "per size: longest wait for agents to sync or changes to converge")
	fs.StringVar(&c.out, "out", "bench/results.json", "results file")
	fs.StringVar(&c.print, "print", "", "print the table of an earlier results file and exit")
	fs.Uint64Var(&c.seed, "seed", 1, "random seed (which instances churn)")
	fs.BoolVar(&c.noRegister, "no-register", false, "churn only through the controller (no registrations)")
	eventsSizes := fs.String("events-n", "1000,10000", "fleet sizes for the EC2-events comparison (polling vs SQS events); empty: none")
	fs.IntVar(&c.eventsChurn, "events-churn", 10, "events comparison: replacements (terminate + launch) spread over -events-window")
	fs.DurationVar(&c.eventsWindow, "events-window", time.Minute, "events comparison: how long the churn runs and EC2 calls are counted")
	fs.DurationVar(&c.eventsPoll, "events-poll", controllers.DefaultEventsPollInterval, "events comparison: the safety-net poll interval with events on (aerostat controller --events-poll-interval)")
	fs.BoolVar(&c.eventsTrace, "events-trace", false, "events comparison: log every pass (trigger, EC2 calls so far) and every change that took over a second, to stderr")
	fs.StringVar(&c.mode, "mode", "", "internal: poll|events mode of an events child")
	quick := fs.Bool("quick", false, "small run (about a minute): sizes 100,1000; planner to 10,000; 5 agents; 6 changes; 2s polls")
	bootstrapSizes := fs.String("bootstrap-n", "1000,10000", "fleet sizes named from an empty ledger by the controller alone (empty: none)")
	scaleSizes := fs.String("scale-n", "1000,10000,50000", "ledger sizes for the controller's memory, idle pass and per-change cost alone, store and EC2 in another process (empty: none)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of each child to this path (suffixed with the child's kind and size)")
	fs.StringVar(&c.memProfile, "memprofile", "", "write heap profiles of each scale child to this path (suffixed like -cpuprofile): after its idle passes, and (.peak) at its highest live heap")
	fs.StringVar(&c.child, "child", "", "internal: scenario|events|bootstrap|scale|infra|agent")
	fs.IntVar(&c.size, "size", 0, "internal: fleet size of a scenario child")
	fs.StringVar(&c.feedURL, "feed-url", "", "internal: feed of an agent child")
	fs.StringVar(&c.hostsFile, "hosts-file", "", "internal: hosts file of an agent child")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		def := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		def("n", func() { *sizes = "100,1000" })
		def("planner-n", func() { *plannerSizes = "100,1000,10000" })
		def("agents", func() { c.agents = 5 })
		def("events", func() { c.events = 6 })
		def("poll", func() { c.poll = 2 * time.Second })
		def("steady-passes", func() { c.steadyPasses = 2 })
		def("initial-max", func() { c.initialMax = 10 })
		def("events-n", func() { *eventsSizes = "100" })
		def("events-churn", func() { c.eventsChurn = 6 })
		def("events-window", func() { c.eventsWindow = 15 * time.Second })
		def("bootstrap-n", func() { *bootstrapSizes = "1000" })
		def("scale-n", func() { *scaleSizes = "" })
	}
	var err error
	if c.sizes, err = intList("n", *sizes); err != nil {
		return c, err
	}
	if c.plannerSizes, err = intList("planner-n", *plannerSizes); err != nil {
		return c, err
	}
	if c.bootstrapSizes, err = intList("bootstrap-n", *bootstrapSizes); err != nil {
		return c, err
	}
	if c.scaleSizes, err = intList("scale-n", *scaleSizes); err != nil {
		return c, err
	}
	if c.eventsSizes, err = intList("events-n", *eventsSizes); err != nil {
		return c, err
	}
	switch {
	case c.agents < 1:
		return c, fmt.Errorf("-agents %d: want at least 1", c.agents)
	case c.events < 0 || c.largeEvents < 0:
		return c, fmt.Errorf("-events %d, -large-events %d: must not be negative", c.events, c.largeEvents)
	case c.churnRate <= 0:
		return c, fmt.Errorf("-churn %v: want more than 0 changes a second", c.churnRate)
	case c.poll <= 0 || c.feedPoll <= 0 || c.feedWait <= 0:
		return c, errors.New("-poll, -feed-poll and -feed-wait must be positive")
	case c.legacyServerPoll <= 0 || c.legacyClientPoll <= 0:
		return c, errors.New("-legacy-server-poll and -legacy-client-poll must be positive")
	case c.steadyPasses < 1:
		return c, fmt.Errorf("-steady-passes %d: want at least 1", c.steadyPasses)
	case c.eventsChurn < 1 || c.eventsWindow <= 0:
		return c, fmt.Errorf("-events-churn %d, -events-window %v: want at least 1 replacement over a positive window", c.eventsChurn, c.eventsWindow)
	}
	return c, nil
}

func intList(name, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(strings.ReplaceAll(f, "_", ""))
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-%s: %q is not a positive number", name, f)
		}
		out = append(out, n)
	}
	return out, nil
}

// results is bench/results.json.
type results struct {
	Machine   machine             `json:"machine"`
	Config    map[string]string   `json:"config"`
	Planner   []plannerResult     `json:"planner"`
	Render    renderResult        `json:"agent_render_write_bench"`
	Scenarios []scenarioResult    `json:"scenarios"`
	Legacy1x  []legacyConvergence `json:"model_of_1x_convergence"`
	Events    []eventsResult      `json:"events"`
	Bootstrap []bootstrapResult   `json:"bootstrap"`
	Scale     []scaleResult       `json:"scale"`
	Seconds   float64             `json:"wall_s"`
}

type machine struct {
	When      string `json:"when"`
	NumCPU    int    `json:"nproc"`
	CPU       string `json:"cpu_model"`
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end"`
	Go        string `json:"go"`
	Commit    string `json:"commit,omitempty"`
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.child != "" && cfg.cpuProfile != "" {
		f, perr := os.Create(fmt.Sprintf("%s.%s-%d", cfg.cpuProfile, cfg.child, cfg.size))
		if perr == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	switch cfg.child {
	case "":
		if cfg.print != "" {
			err = reprint(cfg)
			break
		}
		err = run(ctx, cfg)
	case "scenario":
		ctrllog.SetLogger(logr.Discard()) // pass errors are counted, not logged
		var res scenarioResult
		res, err = runScenario(ctx, cfg, cfg.size)
		if err == nil {
			err = json.NewEncoder(os.Stdout).Encode(res)
		}
	case "events":
		ctrllog.SetLogger(logr.Discard())
		var res eventsResult
		res, err = runEventsScenario(ctx, cfg, cfg.size, cfg.mode)
		if err == nil {
			err = json.NewEncoder(os.Stdout).Encode(res)
		}
	case "bootstrap":
		ctrllog.SetLogger(logr.Discard())
		err = childJSON(runBootstrap(ctx, cfg, cfg.size))
	case "scale":
		ctrllog.SetLogger(logr.Discard())
		err = childJSON(runScale(ctx, cfg, cfg.size))
	case "infra":
		ctrllog.SetLogger(logr.Discard())
		err = runInfra(ctx, cfg, cfg.size)
	case "agent":
		err = runAgentChild(ctx, cfg)
	default:
		err = fmt.Errorf("-child %q: want scenario, events, bootstrap, scale, infra or agent", cfg.child)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config) error {
	start := time.Now()
	res := results{Machine: machineInfo(), Config: map[string]string{
		"agents": strconv.Itoa(cfg.agents), "events": strconv.Itoa(cfg.events), "large_events": strconv.Itoa(cfg.largeEvents),
		"churn_per_s": fmt.Sprint(cfg.churnRate), "controller_poll": cfg.poll.String(),
		"feed_poll": cfg.feedPoll.String(), "feed_wait": cfg.feedWait.String(),
		"ec2_calls_per_s": fmt.Sprint(cfg.ec2Rate), "initial_max": strconv.Itoa(cfg.initialMax),
		"legacy_server_poll": cfg.legacyServerPoll.String(), "legacy_client_poll": cfg.legacyClientPoll.String(),
		"events_churn": strconv.Itoa(cfg.eventsChurn), "events_window": cfg.eventsWindow.String(),
	}}
	fmt.Fprintf(os.Stderr, "bench: %d CPUs (%s), load %s\n", res.Machine.NumCPU, res.Machine.CPU, res.Machine.LoadStart)

	var err error
	if res.Planner, err = runPlanner(cfg.plannerSizes); err != nil {
		return err
	}
	if res.Render, err = runRender(10000); err != nil {
		return err
	}
	for _, n := range cfg.bootstrapSizes {
		var br bootstrapResult
		if err := runChildJSON(ctx, &br, "-child=bootstrap", "-size="+strconv.Itoa(n)); err != nil {
			return fmt.Errorf("bootstrap %d: %w", n, err)
		}
		res.Bootstrap = append(res.Bootstrap, br)
	}
	for _, n := range cfg.scaleSizes {
		var sr scaleResult
		if err := runChildJSON(ctx, &sr, "-child=scale", "-size="+strconv.Itoa(n)); err != nil {
			return fmt.Errorf("scale %d: %w", n, err)
		}
		res.Scale = append(res.Scale, sr)
	}
	for _, n := range cfg.sizes {
		sr, err := runChild(ctx, n)
		if err != nil {
			return fmt.Errorf("size %d: %w", n, err)
		}
		res.Scenarios = append(res.Scenarios, sr)
		l := sr.Legacy
		res.Legacy1x = append(res.Legacy1x, modelLegacyConvergence(cfg.agents, cfg.legacyServerPoll, cfg.legacyClientPoll,
			ms(l.RegisterGapMs), ms(l.ServerPassMs), ms(l.UpdaterReadMs), cfg.seed))
	}
	for _, n := range cfg.eventsSizes {
		for _, mode := range []string{modePoll, modeEvents} {
			var er eventsResult
			if err := runChildJSON(ctx, &er, "-child=events", "-size="+strconv.Itoa(n), "-mode="+mode); err != nil {
				return fmt.Errorf("events, size %d, %s: %w", n, mode, err)
			}
			res.Events = append(res.Events, er)
		}
	}
	res.Machine.LoadEnd = loadavg()
	res.Seconds = time.Since(start).Seconds()

	printTable(os.Stdout, cfg, res)
	printEventsTable(os.Stdout, cfg, res.Events)
	if err := os.MkdirAll(filepath.Dir(cfg.out), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(cfg.out, append(data, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: wrote %s (%.0fs)\n", cfg.out, res.Seconds)
	return nil
}

// reprint prints the table of a results file with the settings it was
// measured with.
func reprint(cfg config) error {
	data, err := os.ReadFile(cfg.print)
	if err != nil {
		return err
	}
	var res results
	if err := json.Unmarshal(data, &res); err != nil {
		return fmt.Errorf("reading %s: %w", cfg.print, err)
	}
	c := res.Config
	cfg.agents, _ = strconv.Atoi(c["agents"])
	cfg.initialMax, _ = strconv.Atoi(c["initial_max"])
	cfg.eventsChurn, _ = strconv.Atoi(c["events_churn"])
	for name, d := range map[string]*time.Duration{"controller_poll": &cfg.poll, "feed_wait": &cfg.feedWait,
		"legacy_server_poll": &cfg.legacyServerPoll, "legacy_client_poll": &cfg.legacyClientPoll, "events_window": &cfg.eventsWindow} {
		if v, err := time.ParseDuration(c[name]); err == nil {
			*d = v
		}
	}
	printTable(os.Stdout, cfg, res)
	printEventsTable(os.Stdout, cfg, res.Events)
	return nil
}

func ms(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

// runChild runs one size in a child process with the same flags.
func runChild(ctx context.Context, n int) (scenarioResult, error) {
	var sr scenarioResult
	err := runChildJSON(ctx, &sr, "-child=scenario", "-size="+strconv.Itoa(n))
	return sr, err
}

// runChildJSON runs this binary with the same flags and extra, and decodes
// the JSON result it prints into v.
func runChildJSON(ctx context.Context, v any, extra ...string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := append(append([]string{}, os.Args[1:]...), extra...)
	cmd := exec.CommandContext(ctx, self, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return err
	}
	if err := json.Unmarshal(out.Bytes(), v); err != nil {
		return fmt.Errorf("reading child result: %w", err)
	}
	return nil
}

// writeHeapProfile writes the live heap (after a GC) to -memprofile, if
// set, while the child's world still holds everything it measures.
func writeHeapProfile(cfg config) {
	if cfg.memProfile == "" {
		return
	}
	f, err := os.Create(fmt.Sprintf("%s.%s-%d", cfg.memProfile, cfg.child, cfg.size))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: memprofile:", err)
		return
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "bench: memprofile:", err)
	}
}

// childJSON prints a child's result for runChildJSON.
func childJSON[T any](res T, err error) error {
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// runAgentChild is one agent as `aerostat agent --feed-url` runs it. It
// prints "synced" after its first write and exits when stdin closes.
func runAgentChild(ctx context.Context, cfg config) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	c, err := feed.NewClient(cfg.feedURL, &http.Client{Timeout: cfg.feedWait + 30*time.Second}, cfg.feedWait)
	if err != nil {
		return err
	}
	if err := os.WriteFile(cfg.hostsFile, []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
		return err
	}
	a, err := agent.New(agent.Options{
		Source:  c,
		Writer:  &hostsfile.Writer{Path: cfg.hostsFile, BackupPath: cfg.hostsFile + ".bak"},
		Metrics: prometheus.NewRegistry(),
		Logger:  logr.Discard(),
	})
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	for {
		if synced, _ := a.Status(); synced {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(10 * time.Millisecond):
		}
	}
	fmt.Println("synced")
	<-done
	return nil
}

func machineInfo() machine {
	m := machine{When: time.Now().UTC().Format(time.RFC3339), NumCPU: runtime.NumCPU(), Go: runtime.Version(), LoadStart: loadavg()}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	return m
}

func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
