package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"time"

	"github.com/aerostat-io/aerostat/internal/feed"
)

// bootstrapResult is naming a whole fleet from an empty ledger: the
// controller's passes alone (no agents), as on the first start of
// `aerostat controller --standalone` beside N running, tagged instances.
type bootstrapResult struct {
	N int `json:"n"`
	// Seconds from the first pass's start until every instance is bound.
	Seconds float64 `json:"bootstrap_s"`
	Passes  int     `json:"passes"`
	Writes  int     `json:"writes"`
	// CPUms is the process's CPU (controller and its in-process store).
	CPUms   float64  `json:"cpu_ms"`
	PeakRSS int64    `json:"process_peak_rss_bytes"`
	Notes   []string `json:"notes,omitempty"`
}

// runBootstrap measures naming n instances from nothing. It runs in its
// own process (-child=bootstrap).
func runBootstrap(ctx context.Context, cfg config, n int) (bootstrapResult, error) {
	res := bootstrapResult{N: n}
	w := &world{cfg: cfg, n: n, tr: newTracker(1), rng: rand.New(rand.NewPCG(cfg.seed, uint64(n))),
		held: map[string][2]string{}, binds: map[string]int{}}
	defer w.close()
	if err := w.start(ctx); err != nil {
		return res, err
	}
	w.launchTagged(n)
	cpu0, t0 := procCPU("self"), time.Now()
	deadline := t0.Add(cfg.timeout)
	for {
		sum, err := w.sa.Pass(ctx)
		res.Passes++
		if err != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("pass %d: %v", res.Passes, err))
		}
		bound, rerr := w.bound(ctx)
		if rerr != nil {
			return res, rerr
		}
		if bound == n {
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("bootstrap: %d of %d bound after %v", bound, n, cfg.timeout)
		}
		if err == nil && sum.Changes == 0 {
			return res, fmt.Errorf("bootstrap: a pass changed nothing with %d of %d bound", bound, n)
		}
	}
	res.Seconds = time.Since(t0).Seconds()
	res.CPUms = float64((procCPU("self") - cpu0).Milliseconds())
	res.Writes = w.ctrl.counts().Writes
	res.PeakRSS = procStatus("self").PeakRSS
	fmt.Fprintf(os.Stderr, "bench[bootstrap n=%d] every instance named in %.1fs, %d passes, %d writes\n", n, res.Seconds, res.Passes, res.Writes)
	return res, nil
}

// bound counts the bound names in the ledger (one full read).
func (w *world) bound(ctx context.Context) (int, error) {
	recs, err := w.ctrlDB.Records(ctx, service)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range recs {
		if !r.Free() {
			n++
		}
	}
	return n, nil
}

// scaleResult is the controller at a large fleet with nothing changing:
// its memory and the cost of its idle passes. The names are inserted in
// bulk; the controller's first pass reads them whole, later ones read
// deltas. The process holds the controller, its feed (with no agents)
// and the embedded store, as `aerostat controller --standalone` with the
// embedded store does.
type scaleResult struct {
	N           int     `json:"n"`
	SeedS       float64 `json:"seed_bulk_s"`
	FirstPassS  float64 `json:"first_pass_s"`
	FeedSyncS   float64 `json:"feed_first_sync_s"`
	IdlePasses  int     `json:"idle_passes"`
	IdlePassS   float64 `json:"idle_pass_s"`
	IdlePassCPU float64 `json:"idle_pass_cpu_ms"`
	PeakRSS     int64   `json:"process_peak_rss_bytes"`
	RSS         int64   `json:"process_rss_bytes"`
	// RSSAnon and RSSFile are RSS's two parts after the idle passes: the
	// heap, stacks and runtime; the binary's pages (shared with the page
	// cache, reclaimable).
	RSSAnon      int64  `json:"process_rss_anon_bytes"`
	RSSFile      int64  `json:"process_rss_file_bytes"`
	GoHeapInuse  uint64 `json:"go_heap_inuse_bytes"`
	IdleChanges  int    `json:"idle_pass_changes"`
	IdleFullRead int    `json:"idle_full_reads"`
	// ChurnChanges names were bound by the churn passes;
	// ChurnCPUPerChangeMs is the median round's CPU of this process per
	// bind above an idle pass (see churnAlone).
	ChurnChanges        int     `json:"churn_changes"`
	ChurnCPUPerChangeMs float64 `json:"churn_cpu_per_change_ms"`
	// GoMemLimit is the runtime's soft memory limit the child ran with
	// (GOMEMLIMIT in the bench's environment; 0: none).
	GoMemLimit int64 `json:"go_mem_limit_bytes,omitempty"`
}

// runScale measures the controller at n names (-child=scale). The store
// and EC2 run in another process (-child=infra), as MongoDB and EC2 do in
// a deployment, so this process's CPU and RSS are the controller's and
// its feed's alone.
func runScale(ctx context.Context, cfg config, n int) (scaleResult, error) {
	res := scaleResult{N: n, IdlePasses: cfg.steadyPasses}
	if cfg.memProfile != "" {
		peak := watchPeak(fmt.Sprintf("%s.%s-%d.peak", cfg.memProfile, cfg.child, n))
		defer peak.finish()
	}
	w := &world{cfg: cfg, n: n, tr: newTracker(1), rng: rand.New(rand.NewPCG(cfg.seed, uint64(n))),
		held: map[string][2]string{}, binds: map[string]int{}}
	defer w.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t0 := time.Now()
	infra, line, err := startChildProc(ctx, 10*time.Minute, "-child=infra", "-size="+strconv.Itoa(n))
	if err != nil {
		return res, fmt.Errorf("infra process: %w", err)
	}
	w.closers = append(w.closers, func() { stopChild(infra) })
	var addr infraAddrs
	if err := json.Unmarshal([]byte(line), &addr); err != nil {
		return res, fmt.Errorf("infra process said %q: %w", line, err)
	}
	res.SeedS = time.Since(t0).Seconds()
	if err := w.connect(ctx, addr.Store, addr.EC2); err != nil {
		return res, err
	}
	t1 := time.Now()
	sum, err := w.sa.Pass(ctx)
	if err != nil {
		return res, fmt.Errorf("first pass: %w", err)
	}
	if sum.Changes != 0 {
		return res, fmt.Errorf("first pass over %d bulk names made %d changes, want none", n, sum.Changes)
	}
	res.FirstPassS = time.Since(t1).Seconds()
	// As `aerostat controller` wires it: the feed follows the passes' copy.
	w.fh = feed.NewHandler(w.feedDB, feed.Options{PollInterval: cfg.feedPoll, Source: w.plan.Feed()})
	t2 := time.Now()
	if err := w.fh.SyncOnce(ctx); err != nil {
		return res, fmt.Errorf("first feed sync: %w", err)
	}
	res.FeedSyncS = time.Since(t2).Seconds()
	go func() { _ = w.fh.Start(ctx) }()

	full0 := w.ctrl.counts().Reads
	cpu0, t3 := procCPU("self"), time.Now()
	for range cfg.steadyPasses {
		sum, err := w.sa.Pass(ctx)
		if err != nil {
			return res, fmt.Errorf("idle pass: %w", err)
		}
		res.IdleChanges += sum.Changes
	}
	res.IdlePassS = time.Since(t3).Seconds() / float64(cfg.steadyPasses)
	res.IdlePassCPU = float64((procCPU("self") - cpu0).Milliseconds()) / float64(cfg.steadyPasses)
	res.IdleFullRead = w.ctrl.counts().Reads - full0
	mem := procStatus("self")
	res.PeakRSS, res.RSS, res.RSSAnon, res.RSSFile = mem.PeakRSS, mem.RSS, mem.Anon, mem.File
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.GoHeapInuse = ms.HeapInuse
	if lim := debug.SetMemoryLimit(-1); lim != math.MaxInt64 {
		res.GoMemLimit = lim
	}
	writeHeapProfile(cfg)
	if res.IdleChanges != 0 {
		return res, errors.New("idle passes changed the ledger")
	}
	if err := w.churnAlone(ctx, infra, &res); err != nil {
		return res, err
	}
	fmt.Fprintf(os.Stderr, "bench[scale n=%d] first pass %.1fs, idle pass %.0f ms CPU, %.2f ms CPU per change, peak RSS %d MiB (after idle passes %d MiB anon + %d MiB file), GOMEMLIMIT %d MiB (0: none)\n",
		n, res.FirstPassS, res.IdlePassCPU, res.ChurnCPUPerChangeMs, res.PeakRSS>>20, res.RSSAnon>>20, res.RSSFile>>20, res.GoMemLimit>>20)
	return res, nil
}

// churnRounds rounds of churnBatch launches each measure the cost of one
// change to the controller alone, after the peak RSS is taken.
const (
	churnRounds = 3
	churnBatch  = 500
)

// churnAlone measures what one change costs the controller process (its
// pass and its feed). Each round: an idle pass, then the infra child
// launches churnBatch tagged instances, one pass binds them and the feed
// syncs them; the round's cost per change is the second pass's CPU minus
// the idle pass's, divided by the binds. The median round is reported:
// CPU is read in clock ticks and an idle pass varies by tens of
// milliseconds, so the batch is large enough for the binds to outweigh
// that, and one disturbed round does not move the figure. Its ratio across
// fleet sizes shows whether a change costs more in a bigger fleet (the
// planner and the listing are per pass, in the idle pass's CPU; a write,
// a feed delta and the copy's update should not grow with N).
func (w *world) churnAlone(ctx context.Context, infra *childProc, res *scaleResult) error {
	var perChange []float64
	for range churnRounds {
		cpu0 := procCPU("self")
		if _, err := w.sa.Pass(ctx); err != nil {
			return fmt.Errorf("idle pass before churn: %w", err)
		}
		idle := procCPU("self") - cpu0
		if err := infraLaunch(ctx, infra, churnBatch); err != nil {
			return err
		}
		cpu0 = procCPU("self")
		sum, err := w.sa.Pass(ctx)
		if err != nil {
			return fmt.Errorf("churn pass: %w", err)
		}
		if err := w.fh.SyncOnce(ctx); err != nil {
			return fmt.Errorf("churn feed sync: %w", err)
		}
		churn := procCPU("self") - cpu0
		if sum.Changes != churnBatch {
			return fmt.Errorf("churn pass made %d changes, want %d binds", sum.Changes, churnBatch)
		}
		res.ChurnChanges += sum.Changes
		perChange = append(perChange, max(0, float64((churn-idle).Microseconds())/1000)/float64(sum.Changes))
	}
	slices.Sort(perChange)
	res.ChurnCPUPerChangeMs = perChange[len(perChange)/2]
	return nil
}

// infraLaunch has the infra child launch k tagged instances and waits for
// its reply.
func infraLaunch(ctx context.Context, infra *childProc, k int) error {
	if _, err := fmt.Fprintf(infra.stdin, "launch %d\n", k); err != nil {
		return fmt.Errorf("asking the infra process to launch: %w", err)
	}
	want := fmt.Sprintf("launched %d", k)
	select {
	case l := <-infra.lines:
		if l != want {
			return fmt.Errorf("infra process replied %q, want %q", l, want)
		}
		return nil
	case <-time.After(time.Minute):
		return errors.New("infra process: no reply to launch within 1m")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// infraAddrs is what an infra child prints once its store and EC2 serve.
type infraAddrs struct {
	Store string `json:"store"`
	EC2   string `json:"ec2"`
}

// runInfra serves the store and EC2 of a scale child (-child=infra): n
// tagged instances and their names inserted in bulk, until stdin closes.
func runInfra(ctx context.Context, cfg config, n int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := &world{cfg: cfg, n: n}
	defer w.close()
	if err := w.start(ctx); err != nil {
		return err
	}
	// Commands from the scale child, one a line ("launch k"), until stdin
	// closes; each is answered on stdout after the addresses.
	go func() {
		defer cancel()
		s := bufio.NewScanner(os.Stdin)
		for s.Scan() {
			var k int
			if _, err := fmt.Sscanf(s.Text(), "launch %d", &k); err != nil {
				fmt.Fprintf(os.Stderr, "bench[infra]: command %q: want launch <n>\n", s.Text())
				continue
			}
			w.launchTagged(k)
			fmt.Printf("launched %d\n", k)
		}
	}()
	w.launchTagged(n)
	if err := w.bulkSeed(ctx, n); err != nil {
		return err
	}
	if err := json.NewEncoder(os.Stdout).Encode(infraAddrs{Store: w.srv.URI(), EC2: w.ec2srv.URL}); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}
