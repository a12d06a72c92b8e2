package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/agent"
	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/cloud/fake"
	"github.com/aerostat-io/aerostat/internal/feed"
	"github.com/aerostat-io/aerostat/internal/hostsfile"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
	"github.com/aerostat-io/aerostat/internal/store/embedded"
)

const service = "web"

// scenarioResult is what one fleet size measured (one child process).
type scenarioResult struct {
	N      int `json:"n"`
	Agents int `json:"agents"`

	// The oldest SeedBulk records are inserted in bulk; the controller
	// names the rest (SeedWrites writes in SeedSeconds).
	SeedBulk        int     `json:"seed_bulk_records"`
	SeedBulkSeconds float64 `json:"seed_bulk_s"`
	SeedSeconds     float64 `json:"seed_controller_s"`
	SeedWrites      int     `json:"seed_controller_writes"`

	Steady passStats `json:"steady"`
	Churn  passStats `json:"churn"`

	ChurnEvents      int     `json:"churn_events"`
	ControllerBinds  int     `json:"controller_binds"`
	ControllerFrees  int     `json:"controller_releases"`
	ControllerWrites int     `json:"controller_writes"`
	WritesPerBind    float64 `json:"writes_per_bind"`
	ClaimWrites      int     `json:"claim_writes"`
	Claims           int     `json:"claims"`
	ClaimConflicts   int     `json:"claim_conflicts"`
	ClaimTime        dist    `json:"claim_time"`
	// ClaimQuiet are registrations after the churn, alone on the store.
	ClaimQuiet []float64 `json:"claim_quiet_s"`

	LaunchToBound     dist `json:"launch_to_bound"`
	LaunchToFiles     dist `json:"launch_to_every_file"`
	RegisterToBound   dist `json:"register_to_bound"`
	RegisterToFiles   dist `json:"register_to_every_file"`
	BoundToFiles      dist `json:"bound_to_every_file"`
	TerminateToFiles  dist `json:"terminate_to_gone_from_every_file"`
	UnfinishedChanges int  `json:"unfinished_changes"`

	// StoreOps is the mean time of one store operation over the whole
	// scenario (controller, feed and registrations; queueing included).
	StoreOps           opTimes     `json:"store_ops"`
	FeedChurn          storeCounts `json:"feed_store_ops_churn"`
	FeedSteady         storeCounts `json:"feed_store_ops_steady"`
	LedgerChanges      int         `json:"ledger_changes"`
	DeltaBytesPerAgent float64     `json:"agent_delta_bytes_per_change"`
	IdleBytesPerMinute float64     `json:"agent_idle_bytes_per_min"`
	FullSnapshotBytes  int64       `json:"full_snapshot_bytes"`
	AgentRender        dist        `json:"agent_render_write"`
	FilesChecked       int         `json:"files_checked_ok"`

	AgentProcPeakRSS    int64   `json:"agent_process_peak_rss_bytes"`
	AgentProcIdleCPUms  float64 `json:"agent_process_idle_cpu_ms_per_min"`
	IdleWindowS         float64 `json:"idle_window_s"`
	AgentProcChurnCPUms float64 `json:"agent_process_churn_cpu_ms_per_change"`
	ControllerPeakRSS   int64   `json:"controller_process_peak_rss_bytes"`
	ScenarioPeakRSS     int64   `json:"scenario_process_peak_rss_bytes"`
	// CPU of the scenario process: per idle controller pass (agents idle),
	// and per ledger change during churn (controller, store, feed, claims
	// and every in-process agent's render and write).
	IdleCPUPerPassMs    float64 `json:"scenario_cpu_ms_per_idle_pass"`
	ChurnCPUPerChangeMs float64 `json:"scenario_cpu_ms_per_change"`

	Legacy legacyResult `json:"model_of_1x"`

	Seconds float64  `json:"wall_s"`
	Notes   []string `json:"notes,omitempty"`
}

// passStats averages controller passes of one phase.
type passStats struct {
	Passes        int     `json:"passes"`
	Seconds       float64 `json:"pass_s_mean"`
	Writes        float64 `json:"ledger_writes_per_pass"`
	Reads         float64 `json:"ledger_reads_per_pass"`
	DocsRead      float64 `json:"ledger_docs_read_per_pass"`
	RevReads      float64 `json:"ledger_rev_reads_per_pass"`
	EC2Calls      float64 `json:"ec2_calls_per_pass"`
	StoreSeconds  float64 `json:"-"`
	Errors        int     `json:"errors"`
	TotalWrites   int     `json:"ledger_writes"`
	TotalEC2Calls int     `json:"ec2_calls"`
	ChangedPasses int     `json:"passes_with_writes"`
}

type passRec struct {
	phase string
	dur   time.Duration
	ops   storeCounts
	ec2   int
	err   error
}

func statsOf(recs []passRec, phase string) passStats {
	var s passStats
	for _, r := range recs {
		if r.phase != phase {
			continue
		}
		s.Passes++
		s.Seconds += r.dur.Seconds()
		s.TotalWrites += r.ops.Writes
		s.Reads += float64(r.ops.Reads)
		s.DocsRead += float64(r.ops.DocsRead)
		s.RevReads += float64(r.ops.RevReads)
		s.TotalEC2Calls += r.ec2
		if r.ops.Writes > 0 {
			s.ChangedPasses++
		}
		if r.err != nil {
			s.Errors++
		}
	}
	if s.Passes > 0 {
		n := float64(s.Passes)
		s.Seconds /= n
		s.Writes = float64(s.TotalWrites) / n
		s.Reads /= n
		s.DocsRead /= n
		s.RevReads /= n
		s.EC2Calls = float64(s.TotalEC2Calls) / n
	}
	return s
}

// world is one fleet size's running system.
type world struct {
	cfg    config
	n      int
	dir    string
	srv    *embedded.Server
	ctrlDB *ledger.Mongo
	nodeDB *ledger.Mongo
	ctrl   *countingStore
	node   *countingStore
	feedDB *countingStore
	// registrar is the copy registrations plan from (over node).
	registrar *ledger.Cache
	fleet     *fake.Fleet
	ec2srv    *fake.Server
	ec2       *cloud.EC2
	syncer    *controllers.Syncer
	sa        *controllers.Standalone
	plan      *ledger.Cache // the controller's copy of the ledger, as `aerostat controller` keeps one
	fh        *feed.Handler
	feedURL   string
	tr        *tracker
	sources   []*watchSource
	rng       *rand.Rand
	phase     atomic.Value // string
	mu        sync.Mutex
	passes    []passRec
	held      map[string][2]string // instance id → hostname, ip (seeded names still held)
	binds     map[string]int       // controller commits by change type during churn
	res       scenarioResult
	closers   []func()
	claimDur  []time.Duration
}

func (w *world) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench[n=%d] "+format+"\n", append([]any{w.n}, args...)...)
}

func (w *world) close() {
	for i := len(w.closers) - 1; i >= 0; i-- {
		w.closers[i]()
	}
}

// runScenario measures one fleet size. It runs in its own process so that
// peak RSS is this size's alone.
func runScenario(ctx context.Context, cfg config, n int) (scenarioResult, error) {
	start := time.Now()
	w := &world{cfg: cfg, n: n, tr: newTracker(cfg.agents), rng: rand.New(rand.NewPCG(cfg.seed, uint64(n))),
		held: map[string][2]string{}, binds: map[string]int{}}
	w.res = scenarioResult{N: n, Agents: cfg.agents}
	w.phase.Store("seed")
	defer w.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	if err := w.start(ctx); err != nil {
		return w.res, err
	}
	if err := w.seed(ctx); err != nil {
		return w.res, err
	}
	if err := w.startFeed(ctx); err != nil {
		return w.res, err
	}
	go w.controllerLoop(ctx)
	w.waitPasses(ctx, "seed", 1)
	w.res.ControllerPeakRSS = procStatus("self").PeakRSS

	child, err := w.startAgentProcess(ctx)
	if err != nil {
		w.res.Notes = append(w.res.Notes, "agent subprocess: "+err.Error())
	}
	if err := w.startAgents(ctx); err != nil {
		return w.res, err
	}
	w.logf("controller + store + feed peak RSS %d MiB before agents; %d agents synced", w.res.ControllerPeakRSS>>20, cfg.agents)

	childCPU := w.measureIdle(ctx, child)
	if err := w.measureChurn(ctx, child, childCPU); err != nil {
		return w.res, err
	}
	w.collect()
	if err := w.checkFiles(ctx); err != nil {
		w.res.Notes = append(w.res.Notes, err.Error())
	}
	if child != nil {
		w.res.AgentProcPeakRSS = procStatus(child.pid()).PeakRSS
		stopChild(child)
	}
	cancel()

	w.measureQuiet()
	w.res.ScenarioPeakRSS = procStatus("self").PeakRSS
	w.res.Seconds = time.Since(start).Seconds()
	return w.res, nil
}

// measureIdle is the steady state: nothing changes in EC2 for
// steadyPasses passes. It returns the agent process's CPU time at its end
// (0 without one).
func (w *world) measureIdle(ctx context.Context, child *childProc) time.Duration {
	cfg := w.cfg
	feed0, bytes0, t0 := w.feedDB.counts(), w.agentBytes(), time.Now()
	var cpu0 time.Duration
	if child != nil {
		cpu0 = procCPU(child.pid())
	}
	self0 := procCPU("self")
	w.phase.Store("steady")
	w.waitPasses(ctx, "steady", cfg.steadyPasses)
	w.phase.Store("wait")
	idle := time.Since(t0)
	w.res.IdleWindowS = idle.Seconds()
	// Idle agents hold a long-poll and use no CPU: this is the
	// controller's (and its in-process store's) CPU.
	w.res.IdleCPUPerPassMs = float64((procCPU("self") - self0).Milliseconds()) / float64(cfg.steadyPasses)
	w.res.FeedSteady = w.feedDB.counts().sub(feed0)
	w.res.IdleBytesPerMinute = float64(w.agentBytes()-bytes0) / float64(cfg.agents) / idle.Minutes()
	if child == nil {
		return 0
	}
	cpu1 := procCPU(child.pid())
	w.res.AgentProcIdleCPUms = float64((cpu1 - cpu0).Milliseconds()) / idle.Minutes()
	return cpu1
}

// measureChurn runs the churn (launches, replacements and registrations)
// and what it cost per ledger change; childCPU is the agent process's CPU
// time before it.
func (w *world) measureChurn(ctx context.Context, child *childProc, childCPU time.Duration) error {
	feed1, bytes1 := w.feedDB.counts(), w.agentBytes()
	rev1, _ := w.ctrlDB.Rev(ctx)
	self1 := procCPU("self")
	w.phase.Store("churn")
	if err := w.churn(ctx); err != nil {
		return err
	}
	w.phase.Store("done")
	rev2, _ := w.ctrlDB.Rev(ctx)
	w.res.LedgerChanges = int(rev2 - rev1)
	w.res.FeedChurn = w.feedDB.counts().sub(feed1)
	if w.res.LedgerChanges == 0 {
		return nil
	}
	changes := float64(w.res.LedgerChanges)
	w.res.ChurnCPUPerChangeMs = float64((procCPU("self") - self1).Milliseconds()) / changes
	w.res.DeltaBytesPerAgent = float64(w.agentBytes()-bytes1) / float64(w.cfg.agents) / changes
	if child != nil {
		w.res.AgentProcChurnCPUms = float64((procCPU(child.pid()) - childCPU).Milliseconds()) / changes
	}
	return nil
}

// measureQuiet times Aerostat 2's registration on the same, now quiet,
// store, and the model of 1.x replaying its queries against it: the
// like-for-like comparison.
func (w *world) measureQuiet() {
	ctx := context.Background()
	repeats := 3
	if w.n >= 10000 {
		repeats = 1 // each query scans 10,000 documents
	}
	for range repeats {
		in, _ := w.fleet.Instance(w.fleet.Launch(1, nil)[0])
		t0 := time.Now()
		w.register(ctx, in)
		w.res.ClaimQuiet = append(w.res.ClaimQuiet, time.Since(t0).Seconds())
	}
	var err error
	if w.res.Legacy, err = runLegacyModel(ctx, w.ctrlDB, w.ec2, w.rng, repeats); err != nil {
		w.res.Notes = append(w.res.Notes, "model of 1.x: "+err.Error())
	}
}

func (w *world) start(ctx context.Context) error {
	if err := w.startInfra(ctx); err != nil {
		return err
	}
	return w.connect(ctx, w.srv.URI(), w.ec2srv.URL)
}

// startInfra starts what is not ours in a deployment: the store (MongoDB
// there) and EC2 (a fake fleet behind the wire-level fake server).
func (w *world) startInfra(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "aerostat-bench-")
	if err != nil {
		return err
	}
	w.dir = dir
	w.closers = append(w.closers, func() { _ = os.RemoveAll(dir) })
	w.srv, err = embedded.Start(ctx, embedded.Options{DataDir: filepath.Join(dir, "store")})
	if err != nil {
		return err
	}
	w.closers = append(w.closers, func() { _ = w.srv.Close() })
	w.fleet = fake.NewFleet(&fake.LaunchClock{})
	w.ec2srv = fake.NewServer(w.fleet)
	w.closers = append(w.closers, w.ec2srv.Close)
	return nil
}

// connect wires the controller, its ledger connections and its EC2 client
// to a store and an EC2 endpoint, in this process or another (the scale
// child's infra process).
func (w *world) connect(ctx context.Context, storeURI, ec2URL string) error {
	var err error
	if w.ctrlDB, err = ledger.Open(ctx, storeURI, ledger.Options{}); err != nil {
		return err
	}
	w.closers = append(w.closers, func() { _ = w.ctrlDB.Close(context.Background()) })
	// The registrar's commits wake the feed, as the controller's store
	// does for its attested registrations (ledger.Options.OnCommit).
	if w.nodeDB, err = ledger.Open(ctx, storeURI, ledger.Options{OnCommit: func() {
		if w.fh != nil {
			w.fh.Notify()
		}
	}}); err != nil {
		return err
	}
	w.closers = append(w.closers, func() { _ = w.nodeDB.Close(context.Background()) })
	w.ctrl = counting(w.ctrlDB, w.committed)
	w.node = counting(w.nodeDB, nil)
	w.feedDB = counting(w.ctrlDB, nil)
	w.ec2, err = cloud.NewEC2(ctx, cloud.EC2Options{
		Region:         "us-east-1",
		Endpoint:       ec2URL,
		Credentials:    credentials.NewStaticCredentialsProvider("AKIDBENCH", "bench", ""),
		CallsPerSecond: w.cfg.ec2Rate,
	})
	if err != nil {
		return err
	}
	// As `aerostat controller` wires it: passes plan from a copy of the
	// ledger kept by change log deltas; the counters below it see what
	// reaches the store.
	plan := ledger.NewCache(w.ctrl, ledger.FollowerOptions{})
	w.plan = plan
	// Unnamed as `aerostat controller` wires it: read from the store on
	// the resync schedule.
	syncer := controllers.NewSyncer(controllers.SyncerOptions{Cloud: w.ec2, Store: plan, OnApplied: func() {
		if w.fh != nil {
			w.fh.Notify()
		}
	}, Unnamed: w.ctrlDB, UnnamedEvery: ledger.DefaultResyncEvery})
	w.syncer = syncer
	w.sa = controllers.NewStandalone(controllers.StandaloneOptions{Syncer: syncer, Cloud: w.ec2, Store: plan, Interval: w.cfg.poll})
	// Registrations claim through one registrar's copy (the controller's
	// register endpoint keeps one), re-read by deltas after a lost write.
	w.registrar = ledger.NewCache(w.node, ledger.FollowerOptions{})
	return nil
}

// startFeed serves the feed following the controller's store, as
// `aerostat controller --feed-bind-address` does, through its own counters.
func (w *world) startFeed(ctx context.Context) error {
	w.fh = feed.NewHandler(w.feedDB, feed.Options{PollInterval: w.cfg.feedPoll})
	if err := w.fh.SyncOnce(ctx); err != nil {
		return fmt.Errorf("first feed sync: %w", err)
	}
	hs := httptest.NewServer(w.fh)
	w.closers = append(w.closers, hs.Close)
	w.feedURL = hs.URL
	go func() { _ = w.fh.Start(ctx) }()
	return nil
}

func tags() map[string]string {
	return map[string]string{controllers.TagService: service, controllers.TagServiceType: "iterative"}
}

// launchTagged launches k instances of the service, each in a reservation
// of its own, as an Auto Scaling group launches them one at a time.
func (w *world) launchTagged(k int) {
	for range k {
		w.fleet.Launch(1, tags())
	}
}

// seed names the initial fleet. FerretDB's SQLite backend scans the
// collection on every keyed write, so naming a whole large fleet one
// compare-and-set at a time is quadratic (about an hour at 10,000). The
// records the controller would write for all but the newest
// cfg.initialMax instances are therefore inserted in bulk, and the
// controller's own passes name the rest: that gives the per-bind cost at
// this fleet size, and the passes after it must change nothing, which
// checks the bulk records.
func (w *world) seed(ctx context.Context) error {
	w.launchTagged(w.n)
	bulk := max(0, w.n-w.cfg.initialMax)
	t0 := time.Now()
	if bulk > 0 {
		if err := w.bulkSeed(ctx, bulk); err != nil {
			return err
		}
	}
	w.res.SeedBulk, w.res.SeedBulkSeconds = bulk, time.Since(t0).Seconds()
	t1 := time.Now()
	before := w.ctrl.counts()
	for range 5 {
		sum, err := w.sa.Pass(ctx)
		if err != nil {
			return fmt.Errorf("initial naming pass: %w", err)
		}
		if sum.Changes == 0 {
			break
		}
	}
	w.res.SeedSeconds = time.Since(t1).Seconds()
	w.res.SeedWrites = w.ctrl.counts().sub(before).Writes
	recs, err := w.ctrlDB.Records(ctx, service)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if !r.Free() {
			w.held[r.InstanceID] = [2]string{r.Hostname, r.IP}
		}
	}
	if len(w.held) != w.n {
		return fmt.Errorf("seed: %d names bound, want %d", len(w.held), w.n)
	}
	// The registrar's copy is read once here, as a running registrar's is.
	if _, err := w.registrar.Records(ctx, service); err != nil {
		return fmt.Errorf("seed: registrar's first read: %w", err)
	}
	if w.res.SeedWrites != w.n-bulk {
		w.res.Notes = append(w.res.Notes, fmt.Sprintf("seed: controller wrote %d records, want %d (bulk records not as the controller writes them?)", w.res.SeedWrites, w.n-bulk))
	}
	w.logf("seeded %d names in bulk (%.1fs), controller named %d (%.1fs)", bulk, w.res.SeedBulkSeconds, w.n-bulk, w.res.SeedSeconds)
	return nil
}

// bulkSeed inserts the records of the n oldest instances as the
// controller names them (web-0 the oldest) and moves the rev counter past
// them.
func (w *world) bulkSeed(ctx context.Context, n int) error {
	now := time.Now().UTC().Truncate(time.Millisecond)
	docs := make([]any, 0, n)
	for i, in := range w.fleet.Instances()[:n] {
		docs = append(docs, bson.D{
			{Key: "_id", Value: bson.NewObjectID()}, {Key: "hostname", Value: fmt.Sprintf("%s-%d", service, i)},
			{Key: "service", Value: service}, {Key: "service_type", Value: "iterative"}, {Key: "role", Value: ""},
			{Key: "ordinal", Value: int64(i)}, {Key: "instance_id", Value: in.ID}, {Key: "ip", Value: in.PrivateIP},
			{Key: "aliases", Value: bson.A{}}, {Key: "rev", Value: int64(i + 1)},
			{Key: "updated_at", Value: now}, {Key: "claimed_at", Value: now},
		})
	}
	db := w.ctrlDB.Client().Database(w.ctrlDB.Database())
	for chunk := range slices.Chunk(docs, 5000) {
		if _, err := db.Collection("servers").InsertMany(ctx, chunk); err != nil {
			return fmt.Errorf("bulk seed: %w", err)
		}
	}
	if _, err := db.Collection("meta").UpdateOne(ctx, bson.D{{Key: "_id", Value: "rev"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: int64(n)}}}}); err != nil {
		return fmt.Errorf("bulk seed: rev counter: %w", err)
	}
	return nil
}

// committed is called for each change the controller committed.
func (w *world) committed(c naming.Change, at time.Time) {
	if w.phase.Load() == "churn" {
		w.mu.Lock()
		w.binds[string(c.Type)]++
		w.mu.Unlock()
	}
	switch c.Type {
	case naming.Bind:
		w.tr.bound(c.InstanceID, c.Hostname, c.IP, at)
	case naming.Release:
		w.tr.released(c.Hostname, at)
	}
}

// controllerLoop is Standalone.Run (a pass at once, then one per tick),
// with each pass measured.
func (w *world) controllerLoop(ctx context.Context) {
	t := time.NewTicker(w.cfg.poll)
	defer t.Stop()
	for {
		phase := w.phase.Load().(string)
		ops0, ec0 := w.ctrl.counts(), w.ec2srv.Calls("DescribeInstances")
		t0 := time.Now()
		_, err := w.sa.Pass(ctx)
		if ctx.Err() != nil {
			return
		}
		rec := passRec{phase: phase, dur: time.Since(t0), ops: w.ctrl.counts().sub(ops0), ec2: w.ec2srv.Calls("DescribeInstances") - ec0, err: err}
		if phase == "steady" && w.phase.Load().(string) != phase {
			rec.phase = "mixed" // churn began mid-pass: neither idle nor a churn pass
		}
		w.mu.Lock()
		w.passes = append(w.passes, rec)
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *world) waitPasses(ctx context.Context, phase string, n int) {
	for ctx.Err() == nil {
		w.mu.Lock()
		k := 0
		for _, p := range w.passes {
			if p.phase == phase {
				k++
			}
		}
		w.mu.Unlock()
		if k >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (w *world) startAgents(ctx context.Context) error {
	for i := range w.cfg.agents {
		c, err := feed.NewClient(w.feedURL, &http.Client{Timeout: w.cfg.feedWait + 30*time.Second}, w.cfg.feedWait)
		if err != nil {
			return err
		}
		src := &watchSource{Client: c, idx: i, tr: w.tr}
		w.sources = append(w.sources, src)
		dir := filepath.Join(w.dir, fmt.Sprintf("agent-%d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
			return err
		}
		a, err := agent.New(agent.Options{
			Source:  src,
			Writer:  &hostsfile.Writer{Path: filepath.Join(dir, "hosts"), BackupPath: filepath.Join(dir, "hosts.bak")},
			Metrics: prometheus.NewRegistry(),
			Logger:  logr.Discard(),
		})
		if err != nil {
			return err
		}
		go func() { _ = a.Run(ctx) }()
	}
	deadline := time.Now().Add(w.cfg.timeout)
	for w.tr.synced(w.n) < w.cfg.agents {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("agents: %d of %d synced within %v", w.tr.synced(w.n), w.cfg.agents, w.cfg.timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func (w *world) agentBytes() int64 {
	var n int64
	for _, s := range w.sources {
		n += s.bytes.Load()
	}
	return n
}

// churn makes cfg.events changes at cfg.churnRate a second, alternating a
// replacement (a tagged instance terminated, a tagged one launched: the
// controller's path) and a registration (an untagged instance launched
// that claims its own name, as `aerostat register` at boot does), then
// waits until every change is in every agent's file.
func (w *world) churn(ctx context.Context) error {
	victims := make([]string, 0, len(w.held))
	for id := range w.held {
		victims = append(victims, id)
	}
	slices.Sort(victims)
	w.rng.Shuffle(len(victims), func(i, j int) { victims[i], victims[j] = victims[j], victims[i] })
	every := time.Duration(float64(time.Second) / w.cfg.churnRate)
	events := w.cfg.events
	if w.n >= 10000 {
		events = w.cfg.largeEvents
	}
	var wg sync.WaitGroup
	for i := range events {
		if i > 0 {
			time.Sleep(every)
		}
		now := time.Now()
		if i%2 == 0 || w.cfg.noRegister {
			victim := victims[i%len(victims)]
			old := w.held[victim]
			id := w.fleet.Launch(1, tags())[0]
			w.tr.expectBind(kindLaunch, id, now)
			if err := w.fleet.Terminate(victim); err != nil {
				return err
			}
			w.tr.expectGone(old[0], old[1], now)
			continue
		}
		id := w.fleet.Launch(1, nil)[0]
		in, _ := w.fleet.Instance(id)
		w.tr.expectBind(kindRegister, id, now)
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.register(ctx, in)
		}()
	}
	w.res.ChurnEvents = events
	wg.Wait()
	deadline := time.Now().Add(w.cfg.timeout)
	for w.tr.pending() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if p := w.tr.pending(); p > 0 {
		w.res.Notes = append(w.res.Notes, fmt.Sprintf("%d changes not in every file after %v", p, w.cfg.timeout))
	}
	return nil
}

// register claims a name for in as `aerostat register` does (same planner
// input: this instance plus the service's bound records, an incomplete
// observation so nothing is reaped; ledger.Claim retries lost
// compare-and-sets).
func (w *world) register(ctx context.Context, in naming.Instance) {
	t0 := time.Now()
	res, err := ledger.Claim(ctx, w.registrar, service, func(recs []naming.Record) (naming.Result, error) {
		input := naming.Input{
			Policy:  naming.Policy{Service: service, Scheme: naming.Iterative, InstanceAliases: map[string][]string{in.ID: {}}},
			Records: recs,
			Now:     time.Now(),
		}
		input.Observed.Instances = append(input.Observed.Instances, naming.Instance{ID: in.ID, PrivateIP: in.PrivateIP, State: naming.StateRunning, LaunchTime: t0})
		seen := map[string]bool{in.ID: true}
		for _, r := range recs {
			if r.Free() || seen[r.InstanceID] {
				continue
			}
			seen[r.InstanceID] = true
			input.Observed.Instances = append(input.Observed.Instances, naming.Instance{ID: r.InstanceID, PrivateIP: r.IP, State: naming.StateRunning, LaunchTime: r.ClaimedAt})
		}
		return naming.Plan(input)
	})
	at := time.Now()
	if w.phase.Load() == "churn" {
		w.mu.Lock()
		w.claimDur = append(w.claimDur, at.Sub(t0))
		w.mu.Unlock()
	}
	if err != nil {
		w.logf("register %s: %v", in.ID, err)
		return
	}
	for _, c := range res.Changes {
		if c.Type == naming.Bind && c.InstanceID == in.ID {
			w.tr.bound(in.ID, c.Hostname, c.IP, at)
		}
	}
}

func (w *world) collect() {
	w.mu.Lock()
	w.res.Steady = statsOf(w.passes, "steady")
	w.res.Churn = statsOf(w.passes, "churn")
	w.res.ControllerBinds = w.binds[string(naming.Bind)]
	w.res.ControllerFrees = w.binds[string(naming.Release)]
	w.res.ClaimTime = summarize(w.claimDur)
	w.mu.Unlock()
	w.res.ControllerWrites = 0
	for _, k := range w.binds {
		w.res.ControllerWrites += k
	}
	if w.res.ControllerBinds > 0 {
		w.res.WritesPerBind = float64(w.res.ControllerWrites) / float64(w.res.ControllerBinds)
	}
	w.res.StoreOps = meanOps(w.ctrl, w.feedDB, w.node)
	nc := w.node.counts()
	w.res.ClaimWrites, w.res.ClaimConflicts, w.res.Claims = nc.Writes, nc.Conflicts, len(w.claimDur)

	toBound, toFiles, b2f, unfinished := w.tr.results()
	w.res.LaunchToBound = summarize(toBound[kindLaunch])
	w.res.LaunchToFiles = summarize(toFiles[kindLaunch])
	w.res.RegisterToBound = summarize(toBound[kindRegister])
	w.res.RegisterToFiles = summarize(toFiles[kindRegister])
	w.res.TerminateToFiles = summarize(toFiles[kindRelease])
	w.res.BoundToFiles = summarize(b2f)
	w.res.UnfinishedChanges = unfinished

	var renders []time.Duration
	for _, s := range w.sources {
		r := s.renderTimes()
		if len(r) > 1 {
			renders = append(renders, r[1:]...) // the first is the initial full write
		}
	}
	w.res.AgentRender = summarize(renders)
}

// checkFiles reads every agent's hosts file back and compares it with the
// ledger: the convergence times are only worth something if the files are
// right. It also measures one full snapshot of the feed.
func (w *world) checkFiles(ctx context.Context) error {
	c, err := feed.NewClient(w.feedURL, nil, 0)
	if err != nil {
		return err
	}
	if _, err := c.Poll(ctx); err != nil {
		return fmt.Errorf("full snapshot: %w", err)
	}
	w.res.FullSnapshotBytes = c.BytesRead
	recs, err := w.ctrlDB.Records(ctx, "")
	if err != nil {
		return err
	}
	want := map[string]string{}
	for _, r := range recs {
		if !r.Free() {
			want[r.Hostname] = r.IP
		}
	}
	var bad []string
	for i := range w.cfg.agents {
		data, err := os.ReadFile(filepath.Join(w.dir, fmt.Sprintf("agent-%d", i), "hosts"))
		if err != nil {
			return err
		}
		f, err := hostsfile.Parse(data)
		if err != nil {
			return fmt.Errorf("agent %d: %w", i, err)
		}
		got := map[string]string{}
		for _, e := range f.Entries {
			got[e.Hostname] = e.IP
		}
		ok := len(got) >= len(want)
		for h, ip := range want {
			if got[h] != ip {
				ok = false
			}
		}
		if ok {
			w.res.FilesChecked++
		} else {
			bad = append(bad, strconv.Itoa(i))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("hosts files of agents %v differ from the ledger at the end", bad)
	}
	return nil
}

// startAgentProcess runs one real agent (`aerostat agent --feed …` code
// path) in a child process, to measure an agent's own RSS and CPU.
type childProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	// lines are the lines the child prints after its first (a reply to a
	// command on its stdin); one not read before the next arrives is dropped.
	lines chan string
}

func (c *childProc) pid() string { return strconv.Itoa(c.cmd.Process.Pid) }

func (w *world) startAgentProcess(ctx context.Context) (*childProc, error) {
	dir := filepath.Join(w.dir, "agent-proc")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	child, line, err := startChildProc(ctx, w.cfg.timeout, "-child=agent", "-feed-url="+w.feedURL,
		"-hosts-file="+filepath.Join(dir, "hosts"), "-feed-wait="+w.cfg.feedWait.String())
	if err != nil {
		return nil, fmt.Errorf("agent process: %w", err)
	}
	if line != "synced" {
		stopChild(child)
		return nil, fmt.Errorf("agent process said %q", line)
	}
	return child, nil
}

// startChildProc runs this binary with args (not the parent's flags) and
// returns once it printed its first line, or fails after timeout. The
// child must exit when its stdin closes (stopChild).
func startChildProc(ctx context.Context, timeout time.Duration, args ...string) (*childProc, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, "", err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	child := &childProc{cmd: cmd, stdin: in, lines: make(chan string, 1)}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		s.Buffer(nil, 1<<20)
		s.Scan()
		line <- s.Text()
		for s.Scan() {
			select {
			case child.lines <- s.Text():
			default:
			}
		}
	}()
	select {
	case l := <-line:
		return child, l, nil
	case <-time.After(timeout):
		stopChild(child)
		return nil, "", fmt.Errorf("no first line within %v", timeout)
	case <-ctx.Done():
		stopChild(child)
		return nil, "", ctx.Err()
	}
}

func stopChild(c *childProc) {
	_ = c.stdin.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}
