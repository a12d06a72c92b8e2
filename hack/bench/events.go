package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/cloud/fake"
	"github.com/aerostat-io/aerostat/internal/events"
)

// Modes of the events scenario.
const (
	modePoll   = "poll"   // the standalone loop listing EC2 every -poll
	modeEvents = "events" // woken by SQS events; the poll is the safety net
)

// eventsResult is one fleet size in one mode: the standalone loop as
// `aerostat controller --standalone` runs it (with --sqs-queue-url in
// events mode), churned by replacements for -events-window.
type eventsResult struct {
	N                int    `json:"n"`
	Mode             string `json:"mode"`
	Replacements     int    `json:"replacements"`
	LaunchToBound    dist   `json:"launch_to_bound"`
	LaunchToFiles    dist   `json:"launch_to_every_file"`
	TerminateToFiles dist   `json:"terminate_to_gone_from_every_file"`
	// TerminateToReleased is terminate → release committed in the ledger.
	TerminateToReleased dist     `json:"terminate_to_released"`
	EC2Calls            int      `json:"ec2_calls"`
	WindowS             float64  `json:"window_s"`
	EC2CallsPerMin      float64  `json:"ec2_calls_per_min"`
	PollPasses          int      `json:"poll_passes"`
	EventPasses         int      `json:"event_passes"`
	Unfinished          int      `json:"unfinished_changes"`
	Notes               []string `json:"notes,omitempty"`
}

// runEventsScenario measures launch → bound, launch and terminate → every
// hosts file, and EC2 calls a minute, with the controller polling or
// woken by events.
func runEventsScenario(ctx context.Context, cfg config, n int, mode string) (eventsResult, error) {
	cfg.noRegister = true // events concern the controller's path only
	cfg.initialMax = 0
	w := &world{cfg: cfg, n: n, tr: newTracker(cfg.agents), rng: rand.New(rand.NewPCG(cfg.seed, uint64(n))), held: map[string][2]string{}, binds: map[string]int{}}
	w.phase.Store("seed")
	res := eventsResult{N: n, Mode: mode}
	defer w.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := w.start(ctx); err != nil {
		return res, err
	}
	if err := w.seed(ctx); err != nil {
		return res, err
	}
	if err := w.startFeed(ctx); err != nil {
		return res, err
	}
	if err := w.startAgents(ctx); err != nil {
		return res, err
	}

	opts := controllers.StandaloneOptions{Syncer: w.syncer, Cloud: w.ec2, Store: w.plan, Interval: cfg.poll}
	var mu sync.Mutex
	passes := map[string]int{}
	var failed int
	var firstErr error
	// Churn starts once the loop has run as a running controller does:
	// polling, after its first full pass; with events, after the first
	// safety-net pass too (a poll interval later), so the EC2 call budget
	// has banked the calls a controller up for a while has, and no
	// full listing (about 2 s at 10,000 under the EC2 call rate) falls in
	// the measured window.
	warm := make(chan struct{})
	warmAfter := 1
	if mode == modeEvents {
		warmAfter = 2
	}
	var churnStart atomic.Pointer[time.Time]
	opts.OnPass = func(trigger string, err error) {
		if cfg.eventsTrace {
			var since time.Duration
			if t0 := churnStart.Load(); t0 != nil {
				since = time.Since(*t0)
			}
			w.logf("trace: %s pass done at churn+%.2fs, %d DescribeInstances so far, err %v", trigger, since.Seconds(), w.ec2srv.Calls("DescribeInstances"), err)
		}
		mu.Lock()
		passes[trigger]++
		if trigger == controllers.TriggerPoll && passes[trigger] == warmAfter {
			close(warm)
		}
		if err != nil && ctx.Err() == nil {
			failed++
			firstErr = cmp.Or(firstErr, err)
		}
		mu.Unlock()
	}
	var src *events.Source
	if mode == modeEvents {
		// The queue hears of launches and terminations from now on, as an
		// EventBridge rule would.
		qs := fake.NewSQSServer(clock.RealClock{}, "aerostat-events")
		w.closers = append(w.closers, qs.Close)
		qs.Follow(w.fleet)
		q, err := events.NewSQS(ctx, events.SQSOptions{QueueURL: qs.QueueURL(), Region: fake.SQSRegion, Endpoint: qs.URL,
			Credentials: credentials.NewStaticCredentialsProvider("AKIDBENCH", "bench", "")})
		if err != nil {
			return res, err
		}
		if src, err = events.NewSource(events.SourceOptions{Queue: q, Registerer: prometheus.NewRegistry()}); err != nil {
			return res, err
		}
		opts.Events, opts.EventsInterval = src, cfg.eventsPoll
		go func() { _ = src.Run(ctx) }()
	}
	sa := controllers.NewStandalone(opts)
	go func() { _ = sa.Run(ctx) }()
	select {
	case <-warm:
	case <-ctx.Done():
		return res, ctx.Err()
	}

	calls0, t0 := w.ec2srv.Calls("DescribeInstances"), time.Now()
	churnStart.Store(&t0)
	w.phase.Store("churn")
	rate := float64(cfg.eventsChurn) / cfg.eventsWindow.Seconds()
	w.cfg.churnRate, w.cfg.events, w.cfg.largeEvents = rate, cfg.eventsChurn, cfg.eventsChurn
	if err := w.churn(ctx); err != nil {
		return res, err
	}
	// Count calls over the whole window even if the churn converged early.
	if rest := cfg.eventsWindow - time.Since(t0); rest > 0 {
		select {
		case <-time.After(rest):
		case <-ctx.Done():
		}
	}
	window := time.Since(t0)
	res.EC2Calls = w.ec2srv.Calls("DescribeInstances") - calls0
	res.WindowS = window.Seconds()
	res.EC2CallsPerMin = float64(res.EC2Calls) / window.Minutes()
	mu.Lock()
	res.PollPasses, res.EventPasses = passes[controllers.TriggerPoll], passes[controllers.TriggerEvent]
	if failed > 0 {
		// A pass that fails changes nothing: say why rather than print
		// latencies without samples.
		w.res.Notes = append(w.res.Notes, fmt.Sprintf("%d passes failed, the first: %v", failed, firstErr))
	}
	mu.Unlock()
	if cfg.eventsTrace {
		for _, line := range w.tr.slow(t0, time.Second) {
			w.logf("trace: %s", line)
		}
	}
	toBound, toFiles, _, unfinished := w.tr.results()
	res.Replacements = cfg.eventsChurn
	res.LaunchToBound = summarize(toBound[kindLaunch])
	res.LaunchToFiles = summarize(toFiles[kindLaunch])
	res.TerminateToFiles = summarize(toFiles[kindRelease])
	res.TerminateToReleased = summarize(toBound[kindRelease])
	res.Unfinished = unfinished
	res.Notes = w.res.Notes
	if err := w.checkFiles(ctx); err != nil {
		res.Notes = append(res.Notes, err.Error())
	}
	w.logf("%s: launch → bound p99 %.2fs, terminate → released p99 %.2fs, terminate → every file p99 %.2fs, %.0f EC2 calls/min", mode,
		res.LaunchToBound.P99, res.TerminateToReleased.P99, res.TerminateToFiles.P99, res.EC2CallsPerMin)
	return res, nil
}

// printEventsTable prints the poll/events comparison.
func printEventsTable(out io.Writer, cfg config, rs []eventsResult) {
	if len(rs) == 0 {
		return
	}
	fmt.Fprintf(out, "\nEC2 events (SQS) vs polling every %v: %d replacements over %v, %d agents; p50 / p99\n", cfg.poll, cfg.eventsChurn, cfg.eventsWindow, cfg.agents)
	fmt.Fprintf(out, "  %-8s %-7s %-22s %-22s %-22s %-22s %s\n", "n", "mode", "launch → bound", "launch → every file", "terminate → released", "terminate → gone", "EC2 calls/min")
	for _, r := range rs {
		note := ""
		if r.Unfinished > 0 || len(r.Notes) > 0 {
			note = fmt.Sprintf("  (%d unfinished; %s)", r.Unfinished, strings.Join(r.Notes, "; "))
		}
		fmt.Fprintf(out, "  %-8d %-7s %-22s %-22s %-22s %-22s %.0f%s\n", r.N, r.Mode, fmtP(r.LaunchToBound), fmtP(r.LaunchToFiles),
			fmtP(r.TerminateToReleased), fmtP(r.TerminateToFiles), r.EC2CallsPerMin, note)
	}
}

func fmtP(d dist) string {
	if d.N == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2fs / %.2fs", d.P50, d.P99)
}
