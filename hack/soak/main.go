// Command soak runs Aerostat under random load and faults for a while and
// checks its invariants the whole time (`make soak`; not in CI).
//
// One process holds everything real: the embedded store (stopped and
// restarted on the same port as a fault), the standalone controller
// (Syncer + Standalone loop) over the fake EC2 Query API through the real
// SDK adapter, nodes registering and promoting themselves through the
// compare-and-set claim, and agents writing real hosts files (most follow
// the ledger read-only, some the controller's HTTP feed). Simulated time
// (grace periods, hold-back, the followers' overlap) runs on fake clocks
// stepped every round.
//
// Faults: EC2 throttling (single and storms), 5xx, a page failing mid
// listing, InvalidInstanceID.NotFound, empty listings (wrong region);
// the store stopped, slow, and losing the replies of writes and of agents'
// delta reads.
//
// Invariants, checked continuously: no hostname held by two documents;
// every agent file keeps the user's lines, parses, lists no name twice,
// and is untouched by a failed sync. At each checkpoint (faults off, a few
// passes): every live instance holds exactly one name, no dead instance
// holds one, and every agent's block equals the ledger's.
//
// It prints the counts of events, faults and violations, and exits 1 if
// any invariant was violated.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	clocktesting "k8s.io/utils/clock/testing"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/agent"
	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/cloud/fake"
	"github.com/aerostat-io/aerostat/internal/feed"
	"github.com/aerostat-io/aerostat/internal/hostsfile"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
	"github.com/aerostat-io/aerostat/internal/reliability"
	"github.com/aerostat-io/aerostat/internal/store/embedded"
)

const userHead = "127.0.0.1 localhost\n# soak: lines the user owns\n10.255.0.1 printer\n"

type services struct {
	name   string
	scheme naming.Scheme
	share  float64
}

var fleetMix = []services{
	{"web", naming.Iterative, 0.5},
	{"api", naming.Iterative, 0.3},
	{"db", naming.Masterful, 0.1},
	{"cache", naming.Masterful, 0.1},
}

type soak struct {
	rnd   *rand.Rand
	rndMu sync.Mutex

	clock  *clocktesting.FakeClock
	fleet  *fake.Fleet
	ec2srv *fake.Server
	ec2    *cloud.EC2

	dataDir, storeAddr string
	storeMu            sync.Mutex // held while the store is down or restarting
	store              *embedded.Server
	ctlProxy, agtProxy *reliability.Proxy
	ctl                *ledger.Mongo // the controller's and nodes' ledger (writes)
	check              *ledger.Mongo // direct, for the invariant checks
	sa                 *controllers.Standalone

	feedH     *feed.Handler
	feedClock *clocktesting.FakeClock
	nodes     []*node

	pause sync.RWMutex // checkpoints hold it exclusively

	verbose    bool
	passTime   atomic.Int64
	count      map[string]*atomic.Int64
	violations atomic.Int64
	firstViol  sync.Map
}

type node struct {
	name  string
	agent *agent.Agent
	clock *clocktesting.FakeClock
	path  string
	mu    sync.Mutex
}

func main() {
	duration := flag.Duration("duration", 10*time.Minute, "how long to run")
	instances := flag.Int("instances", 1000, "simulated instances kept in the fleet")
	agents := flag.Int("agents", 20, "in-process agents (a quarter follow the HTTP feed)")
	seed := flag.Uint64("seed", uint64(time.Now().UnixNano()), "random seed")
	checkEvery := flag.Duration("checkpoint", 30*time.Second, "time between checkpoints")
	verbose := flag.Bool("v", false, "print every failed pass")
	flag.Parse()
	logf.SetLogger(logr.Discard())
	os.Exit(run(*duration, *instances, *agents, *seed, *checkEvery, *verbose))
}

func run(duration time.Duration, instances, agents int, seed uint64, checkEvery time.Duration, verbose bool) int {
	fmt.Printf("soak: %s, %d instances, %d agents, seed %d\n", duration, instances, agents, seed)
	began := time.Now()
	s, err := setup(instances, agents, seed)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		return 2
	}
	defer s.close()
	s.verbose = verbose
	fmt.Printf("soak: fleet named in %s\n", time.Since(began).Round(time.Second))

	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var wg sync.WaitGroup
	loop := func(every time.Duration, fn func(context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				s.pause.RLock()
				fn(ctx)
				s.pause.RUnlock()
				sleep(ctx, every)
			}
		}()
	}
	loop(150*time.Millisecond, s.controllerPass)
	loop(200*time.Millisecond, s.churn)
	loop(300*time.Millisecond, s.selfRegister)
	loop(time.Second, s.inject)
	loop(250*time.Millisecond, s.syncAgents)
	loop(time.Second, s.checkRaw)

	start := time.Now()
	next := time.Now().Add(checkEvery)
	for ctx.Err() == nil {
		sleep(ctx, time.Until(next))
		next = time.Now().Add(checkEvery)
		s.checkpoint(context.Background())
		fmt.Printf("soak: %4.0fs: %s\n", time.Since(start).Seconds(), s.summary(false))
	}
	wg.Wait()
	s.checkpoint(context.Background())
	fmt.Println("soak: done:", s.summary(true))
	if n := s.violations.Load(); n > 0 {
		s.firstViol.Range(func(k, v any) bool { fmt.Println("  violation:", k); return true })
		return 1
	}
	return 0
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func setup(instances, agents int, seed uint64) (*soak, error) {
	ctx := context.Background()
	s := &soak{rnd: rand.New(rand.NewPCG(seed, seed^0x5eed)), count: map[string]*atomic.Int64{}}
	for _, k := range counterNames {
		s.count[k] = new(atomic.Int64)
	}
	s.clock = clocktesting.NewFakeClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	s.fleet = fake.NewFleet(s.clock)
	s.ec2srv = fake.NewServer(s.fleet)
	var err error
	s.ec2, err = cloud.NewEC2(ctx, cloud.EC2Options{Region: "us-east-1", Endpoint: s.ec2srv.URL,
		MaxAttempts: 2, MaxBackoff: 20 * time.Millisecond, CallsPerSecond: -1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDSOAK", "soak-secret", "")})
	if err != nil {
		return nil, err
	}
	if s.dataDir, err = os.MkdirTemp("", "aerostat-soak-"); err != nil {
		return nil, err
	}
	if s.store, err = embedded.Start(ctx, embedded.Options{DataDir: filepath.Join(s.dataDir, "store")}); err != nil {
		return nil, err
	}
	u, _ := url.Parse(s.store.URI())
	s.storeAddr = u.Host
	if s.ctlProxy, err = reliability.NewProxy(s.storeAddr); err != nil {
		return nil, err
	}
	if s.agtProxy, err = reliability.NewProxy(s.storeAddr); err != nil {
		return nil, err
	}
	short := "/?serverSelectionTimeoutMS=1000&connectTimeoutMS=1000&directConnection=true"
	if s.ctl, err = ledger.Open(ctx, "mongodb://"+s.ctlProxy.Addr()+short, ledger.Options{Clock: s.clock}); err != nil {
		return nil, err
	}
	if s.check, err = ledger.Open(ctx, "mongodb://"+s.storeAddr+short, ledger.Options{ReadOnly: true}); err != nil {
		return nil, err
	}
	syncer := controllers.NewSyncer(controllers.SyncerOptions{Cloud: s.ec2, Store: s.ctl, Clock: s.clock})
	s.sa = controllers.NewStandalone(controllers.StandaloneOptions{Syncer: syncer, Cloud: s.ec2, Store: s.ctl, Clock: s.clock})

	// The fleet, named once before the faults start.
	for _, m := range fleetMix {
		s.launch(m, int(float64(instances)*m.share))
	}
	for i := 0; i < 20; i++ {
		if sum, err := s.sa.Pass(ctx); err == nil && sum.Changes == 0 {
			break
		}
		s.clock.Step(15 * time.Second)
	}

	ro, err := ledger.Open(ctx, "mongodb://"+s.agtProxy.Addr()+short, ledger.Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	s.feedClock = clocktesting.NewFakeClock(s.clock.Now())
	follow := func(fc *clocktesting.FakeClock) ledger.FollowerOptions {
		// Simulated time runs several times faster than real time here,
		// and the overlap must cover a writer's real rev-to-commit time on
		// a slowed, overloaded store: be generous.
		return ledger.FollowerOptions{Clock: fc, Overlap: 2 * time.Minute, ResyncEvery: 10 * time.Minute}
	}
	s.feedH = feed.NewHandler(ro, feed.Options{Clock: s.feedClock, Follower: follow(s.feedClock)})
	feedSrv := httptest.NewServer(s.feedH)
	for i := range agents {
		n := &node{name: fmt.Sprintf("node-%02d", i), clock: clocktesting.NewFakeClock(s.clock.Now()),
			path: filepath.Join(s.dataDir, fmt.Sprintf("hosts-%02d", i))}
		if err := os.WriteFile(n.path, []byte(userHead), 0o644); err != nil {
			return nil, err
		}
		var src agent.Source
		if i%4 == 3 {
			c, err := feed.NewClient(feedSrv.URL, &http.Client{Timeout: 5 * time.Second}, 0)
			if err != nil {
				return nil, err
			}
			src = c
		} else {
			// Agents share a few connection pools, as nodes share a store.
			src = agent.NewLedgerSource(ro, follow(n.clock))
		}
		n.agent, err = agent.New(agent.Options{Source: src, Writer: &hostsfile.Writer{Path: n.path, MaxShrink: 1},
			Clock: n.clock, Metrics: prometheus.NewRegistry()})
		if err != nil {
			return nil, err
		}
		s.nodes = append(s.nodes, n)
	}
	return s, nil
}

func (s *soak) close() {
	s.ctlProxy.Close()
	s.agtProxy.Close()
	s.storeMu.Lock()
	if s.store != nil {
		_ = s.store.Close()
	}
	s.storeMu.Unlock()
	s.ec2srv.Close()
	_ = os.RemoveAll(s.dataDir)
}

var counterNames = []string{
	"launched", "terminated", "stopped", "started", "registered", "promoted",
	"passes", "passes_failed", "agent_syncs", "agent_syncs_failed", "checkpoints",
	"fault_ec2_throttle", "fault_ec2_storm", "fault_ec2_5xx", "fault_ec2_page", "fault_ec2_notfound", "fault_ec2_empty",
	"fault_store_stop", "fault_store_slow", "fault_write_reply_lost", "fault_read_reply_lost",
}

func (s *soak) inc(k string, n int) { s.count[k].Add(int64(n)) }

func (s *soak) intn(n int) int {
	s.rndMu.Lock()
	defer s.rndMu.Unlock()
	return s.rnd.IntN(n)
}

func (s *soak) violate(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.violations.Add(1)
	if _, loaded := s.firstViol.LoadOrStore(msg, true); !loaded {
		fmt.Println("soak: VIOLATION:", msg)
	}
}

func (s *soak) launch(m services, n int) []string {
	tags := map[string]string{controllers.TagService: m.name}
	if m.scheme == naming.Masterful {
		tags[controllers.TagServiceType] = "masterful"
	}
	s.inc("launched", n)
	return s.fleet.Launch(n, tags)
}

func (s *soak) controllerPass(ctx context.Context) {
	s.clock.Step(5 * time.Second)
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s.inc("passes", 1)
	start := time.Now()
	_, err := s.sa.Pass(c)
	s.passTime.Add(int64(time.Since(start)))
	if err != nil {
		s.inc("passes_failed", 1)
		if s.verbose {
			fmt.Println("soak: pass:", err)
		}
	}
	s.ctlNotify()
}

func (s *soak) ctlNotify() { s.feedH.Notify() }

// live returns the live instances by service and the dead ones.
func (s *soak) live() (map[string]string, map[string]bool, map[string][]string) {
	live, dead, by := map[string]string{}, map[string]bool{}, map[string][]string{}
	for _, in := range s.fleet.Instances() {
		switch in.State {
		case naming.StateRunning, naming.StatePending:
			svc := in.Tags[controllers.TagService]
			live[in.ID] = svc
			by[svc] = append(by[svc], in.ID)
		case naming.StateShuttingDown, naming.StateTerminated:
			dead[in.ID] = true
		}
	}
	for _, ids := range by {
		slices.Sort(ids)
	}
	return live, dead, by
}

// churn launches, terminates, stops and starts instances around the
// target size; terminated instances leave the listings after a while.
func (s *soak) churn(context.Context) {
	_, _, by := s.live()
	m := fleetMix[s.intn(len(fleetMix))]
	ids := by[m.name]
	switch r := s.intn(100); {
	case r < 35:
		s.launch(m, 1+s.intn(3))
	case r < 70 && len(ids) > 2:
		k := 1 + s.intn(3)
		for range k {
			_ = s.fleet.Terminate(ids[s.intn(len(ids))])
		}
		s.inc("terminated", k)
	case r < 80 && len(ids) > 2:
		_ = s.fleet.Stop(ids[s.intn(len(ids))])
		s.inc("stopped", 1)
	case r < 90:
		for _, in := range s.fleet.Instances() {
			if in.State == naming.StateStopped {
				_ = s.fleet.Start(in.ID)
				s.inc("started", 1)
				break
			}
		}
	default:
		// Terminated instances drop out of listings (EC2: about an hour).
		var gone []string
		for _, in := range s.fleet.Instances() {
			if in.State == naming.StateTerminated && s.intn(3) == 0 {
				gone = append(gone, in.ID)
			}
		}
		s.fleet.Remove(gone...)
	}
}

// selfRegister: a node registers itself (as `aerostat register` at boot)
// or a slave asks to be master (`aerostat promote`), racing the controller.
func (s *soak) selfRegister(ctx context.Context) {
	live, _, by := s.live()
	m := fleetMix[s.intn(len(fleetMix))]
	ids := by[m.name]
	if len(ids) == 0 {
		return
	}
	id := ids[s.intn(len(ids))]
	in, _ := s.fleet.Instance(id)
	desired := ""
	if m.scheme == naming.Masterful && s.intn(3) == 0 {
		desired = id
	}
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	name, err := reliability.Register(c, s.ctl, m.name, m.scheme, id, in.PrivateIP, desired, s.clock.Now())
	if err != nil && !reliability.NoName(err) {
		return // store faults; the node retries at its next boot
	}
	if _, ok := live[id]; ok && name == "" {
		// The instance may have died between the listing and the claim.
		if cur, ok := s.fleet.Instance(id); ok && cur.State == naming.StateRunning {
			s.violate("register of running %s returned no name", id)
		}
	}
	if desired != "" {
		s.inc("promoted", 1)
	} else {
		s.inc("registered", 1)
	}
}

// inject turns one random fault on (EC2 faults last until the next
// injection; store faults are undone here after a short outage).
func (s *soak) inject(ctx context.Context) {
	s.ec2srv.Reset()
	switch r := s.intn(100); {
	case r < 45:
		// no fault this round
	case r < 52:
		s.ec2srv.ThrottleNext(1 + s.intn(3))
		s.inc("fault_ec2_throttle", 1)
	case r < 55:
		s.ec2srv.ThrottleFraction(0.9, uint64(s.intn(1<<30)))
		s.inc("fault_ec2_storm", 1)
	case r < 60:
		status := []int{http.StatusInternalServerError, http.StatusServiceUnavailable}[s.intn(2)]
		s.ec2srv.FailNext(1+s.intn(2), status)
		s.inc("fault_ec2_5xx", 1)
	case r < 65:
		s.ec2srv.FailOnPage(1 + s.intn(2))
		s.inc("fault_ec2_page", 1)
	case r < 69:
		s.ec2srv.NotFoundNext(1)
		s.inc("fault_ec2_notfound", 1)
	case r < 73:
		s.ec2srv.EmptyListing(true)
		s.inc("fault_ec2_empty", 1)
	case r < 79:
		s.stopStore(ctx, time.Duration(500+s.intn(2500))*time.Millisecond)
		s.inc("fault_store_stop", 1)
	case r < 84:
		s.ctlProxy.SetLatency(time.Duration(50+s.intn(300)) * time.Millisecond)
		s.agtProxy.SetLatency(time.Duration(50+s.intn(300)) * time.Millisecond)
		sleep(ctx, time.Duration(500+s.intn(1500))*time.Millisecond)
		s.ctlProxy.SetLatency(0)
		s.agtProxy.SetLatency(0)
		s.inc("fault_store_slow", 1)
	case r < 92:
		s.ctlProxy.DropReplyAfter(s.intn(4), 1)
		s.inc("fault_write_reply_lost", 1)
	default:
		s.agtProxy.DropReplyAfter(s.intn(4), 1)
		s.inc("fault_read_reply_lost", 1)
	}
}

// stopStore stops the embedded store and starts it again on the same
// address and data after d.
func (s *soak) stopStore(ctx context.Context, d time.Duration) {
	s.storeMu.Lock()
	defer s.storeMu.Unlock()
	_ = s.store.Close()
	s.store = nil
	sleep(ctx, d)
	for i := 0; ; i++ {
		srv, err := embedded.Start(context.Background(), embedded.Options{DataDir: filepath.Join(s.dataDir, "store"), Listen: s.storeAddr})
		if err == nil {
			s.store = srv
			return
		}
		if i == 50 {
			s.violate("store did not restart on %s: %v", s.storeAddr, err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// syncAgents syncs every agent once; a failed sync must leave the file
// untouched, and every file must stay sane.
func (s *soak) syncAgents(ctx context.Context) {
	s.feedClock.Step(2 * time.Second)
	fc, cancel := context.WithTimeout(ctx, 5*time.Second)
	_ = s.feedH.SyncOnce(fc)
	cancel()
	var wg sync.WaitGroup
	for _, n := range s.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.syncNode(ctx, n, 2*time.Second)
		}()
	}
	wg.Wait()
}

func (s *soak) syncNode(ctx context.Context, n *node, step time.Duration) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	before, _ := os.ReadFile(n.path)
	n.clock.Step(step)
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := n.agent.SyncOnce(c)
	s.inc("agent_syncs", 1)
	if err != nil {
		s.inc("agent_syncs_failed", 1)
		if after, _ := os.ReadFile(n.path); string(after) != string(before) {
			s.violate("%s changed its hosts file on a failed sync (%v)", n.name, err)
		}
	}
	for _, v := range reliability.CheckHostsFile(n.path, userHead, nil) {
		s.violate("%s", v)
	}
	return err
}

func (s *soak) checkRaw(ctx context.Context) {
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	docs, err := reliability.ReadDocs(c, s.check.Client().Database(ledger.DefaultDatabase))
	if err != nil {
		return // the store is down
	}
	for _, v := range reliability.CheckUnique(docs) {
		s.violate("%s", v)
	}
}

// checkpoint stops the load and the faults, lets the controller converge,
// and checks that every live instance is named once and every agent
// holds the ledger's names.
func (s *soak) checkpoint(ctx context.Context) {
	s.pause.Lock()
	defer s.pause.Unlock()
	s.inc("checkpoints", 1)
	s.ec2srv.Reset()
	s.ctlProxy.DropReplies(0)
	s.agtProxy.DropReplies(0)
	converged := false
	for i := 0; i < 30 && !converged; i++ {
		s.clock.Step(5 * time.Second)
		c, cancel := context.WithTimeout(ctx, 20*time.Second)
		sum, err := s.sa.Pass(c)
		cancel()
		converged = err == nil && sum.Changes == 0
	}
	if !converged {
		s.violate("controller did not converge within 30 fault-free passes")
		return
	}
	recs, err := s.ctl.Records(ctx, "")
	if err != nil {
		s.violate("reading the ledger at a checkpoint: %v", err)
		return
	}
	live, dead, _ := s.live()
	for _, v := range reliability.CheckSettled(recs, live, dead) {
		s.violate("%s", v)
	}
	want := reliability.Want(recs)
	s.feedH.Notify()
	for range 6 { // past the followers' overlap
		s.feedClock.Step(30 * time.Second)
		_ = s.feedH.SyncOnce(ctx)
		for _, n := range s.nodes {
			_ = s.syncNode(ctx, n, 30*time.Second)
		}
	}
	for _, n := range s.nodes {
		got, err := reliability.BlockOf(n.path)
		if err != nil || !slices.Equal(got, want) {
			s.violate("%s holds %d entries, the ledger %d (%v); first difference: %s", n.name, len(got), len(want), err, firstDiff(got, want))
		}
	}
}

func firstDiff(got, want []string) string {
	g, w := map[string]bool{}, map[string]bool{}
	for _, x := range got {
		g[x] = true
	}
	for _, x := range want {
		w[x] = true
	}
	for _, x := range want {
		if !g[x] {
			return "missing " + x
		}
	}
	for _, x := range got {
		if !w[x] {
			return "extra " + x
		}
	}
	return "none"
}

func (s *soak) summary(final bool) string {
	var parts []string
	keys := slices.Clone(counterNames)
	if !final {
		keys = []string{"passes", "passes_failed", "agent_syncs_failed", "checkpoints"}
	}
	faults := int64(0)
	for _, k := range counterNames {
		if strings.HasPrefix(k, "fault_") {
			faults += s.count[k].Load()
		}
	}
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, s.count[k].Load()))
	}
	if final {
		sort.Strings(parts)
		live, _, _ := s.live()
		return fmt.Sprintf("\n  %s\n  faults_total=%d instances_live=%d violations=%d",
			strings.Join(parts, "\n  "), faults, len(live), s.violations.Load())
	}
	avg := time.Duration(0)
	if n := s.count["passes"].Load(); n > 0 {
		avg = time.Duration(s.passTime.Load() / n).Round(time.Millisecond)
	}
	return fmt.Sprintf("%s faults=%d violations=%d avg_pass=%s", strings.Join(parts, " "), faults, s.violations.Load(), avg)
}
