// Package feed serves the ledger read-only over HTTP (GET /v1/hosts), so
// that node agents need no database credentials, and holds the agent-side
// client of that feed.
package feed

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// Path is where the feed is served.
const Path = "/v1/hosts"

// Entry is one name in the feed. Released entries tell the client to drop
// a name: in a delta, the names freed since; in a full response, every
// gap the replica knows of.
type Entry struct {
	Hostname string   `json:"hostname"`
	IP       string   `json:"ip,omitempty"`
	Aliases  []string `json:"aliases,omitempty"`
	Service  string   `json:"service,omitempty"`
	Released bool     `json:"released,omitempty"`
}

// Response is the body of GET /v1/hosts.
//
// Rev is the feed's own sequence number, not a store rev: the feed applies
// store changes one at a time (after the overlap rule), so a client that
// asks for ?since=Rev gets exactly what changed after it. Epoch changes when
// the feed restarts; a client whose epoch differs gets a full response.
// StoreRev is the follower's settled rev: every ledger write at or below it
// is in the entries. Writes above it may be too, but one below them may
// still be in flight, so a node that applied this response holds StoreRev,
// not the ledger's counter.
type Response struct {
	Epoch    string  `json:"epoch"`
	Rev      int64   `json:"rev"`
	Full     bool    `json:"full"`
	StoreRev int64   `json:"store_rev"`
	Entries  []Entry `json:"entries"`
}

// Follow is how the feed follows the ledger: a ledger.Follower of its own
// (the default), or a view of a copy it shares (ledger.Cache.Feed, so the
// controller keeps one copy of the records, not two).
//
// Error contract: Poll returns the hostnames whose record changed,
// appeared or disappeared since the previous Poll; on error it changes
// nothing and the next Poll still returns them. Record, Rev and Settled
// answer as of the last successful Poll. Settled is the rev at or below
// which every ledger write is known committed and was returned by Poll so
// far: the rev a node that applied the feed holds (Rev may be higher while
// a write below it is in flight).
type Follow interface {
	Poll(ctx context.Context) (changed []string, err error)
	Record(hostname string) (naming.Record, bool)
	Rev() int64
	Settled() int64
}

// Options tune a Handler.
type Options struct {
	// Source, when set, is followed instead of a Follower of the store
	// given to NewHandler (then Follower is unused).
	Source       Follow
	Follower     ledger.FollowerOptions
	PollInterval time.Duration // how often Start polls the store; default 1s
	MaxWait      time.Duration // cap on ?wait=; default 60s
	MaxInFlight  int           // concurrent requests; default 4096 (one long-poll per node)
	// NodeTTL and MaxNodes bound the table of agents (see Convergence);
	// defaults DefaultNodeTTL and DefaultMaxNodes.
	NodeTTL  time.Duration
	MaxNodes int
	// Share, when set, exchanges node tables with the other replicas
	// serving the same ledger every ShareEvery (default 10 s), under the
	// name Replica (unique per replica, e.g. the pod name), so each one
	// reports every agent and not only those whose requests it served.
	Share      NodeShare
	Replica    string
	ShareEvery time.Duration
	Logger     logr.Logger
	Clock      clock.WithTicker
}

// NodeShare stores each replica's node table (ledger.Mongo does).
//
// Error contract: a failed call changes nothing the caller keeps; the
// handler reports its own agents only until the next exchange works.
type NodeShare interface {
	PutNodeReport(ctx context.Context, r ledger.NodeReport) error
	// NodeReports returns the reports written since notBefore.
	NodeReports(ctx context.Context, notBefore time.Time) ([]ledger.NodeReport, error)
}

// Handler serves the feed. Start (a controller-runtime Runnable) follows
// the store; SyncOnce does one step of it; Notify asks for a prompt poll.
type Handler struct {
	follower Follow // owned by the polling goroutine (syncMu)
	syncMu   sync.Mutex
	opts     Options
	slots    chan struct{}
	notify   chan struct{}
	nodes    *nodeTable

	mu     sync.Mutex
	epoch  string
	seq    int64
	synced bool
	// names holds every hostname the feed has seen change: the seq of
	// its last change and, while bound, its entry. One map entry a name
	// (about 130 bytes with the map's spare slots), where a map of last
	// changes beside one of bound entries took about 180: 2.5 MB less at
	// 50,000 names.
	names   map[string]name
	storeRv int64
	wake    chan struct{} // closed and replaced on every change
	others  []ledger.NodeReport
}

// NewHandler returns a feed over store. Only GET and HEAD of /v1/hosts and
// /v1/nodes are served.
func NewHandler(store ledger.Store, opts Options) *Handler {
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = 60 * time.Second
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 4096
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Follower.Clock == nil {
		opts.Follower.Clock = opts.Clock
	}
	if opts.ShareEvery <= 0 {
		opts.ShareEvery = 10 * time.Second
	}
	if opts.NodeTTL <= 0 {
		opts.NodeTTL = DefaultNodeTTL
	}
	var follower Follow = opts.Source
	if follower == nil {
		follower = ledger.NewFollower(store, opts.Follower)
	}
	return &Handler{
		follower: follower,
		opts:     opts,
		slots:    make(chan struct{}, opts.MaxInFlight),
		notify:   make(chan struct{}, 1),
		nodes:    newNodeTable(opts.NodeTTL, opts.MaxNodes),
		epoch:    strconv.FormatInt(opts.Clock.Now().UnixNano(), 36),
		names:    map[string]name{},
		wake:     make(chan struct{}),
	}
}

// Notify makes Start poll the store now (the controller calls it after it
// applied changes). It never blocks.
func (h *Handler) Notify() {
	select {
	case h.notify <- struct{}{}:
	default:
	}
}

// NeedLeaderElection tells a controller-runtime manager to run Start on
// every replica: each one serves the feed, leader or not.
func (h *Handler) NeedLeaderElection() bool { return false }

// Start polls the store until ctx ends. Store errors are logged and retried
// at the next tick; clients keep getting the last good state.
func (h *Handler) Start(ctx context.Context) error {
	if h.opts.Share != nil {
		go h.shareLoop(ctx)
	}
	t := h.opts.Clock.NewTicker(h.opts.PollInterval)
	defer t.Stop()
	for {
		if err := h.SyncOnce(ctx); err != nil && ctx.Err() == nil {
			h.opts.Logger.Error(err, "feed: reading ledger")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		case <-h.notify:
		}
	}
}

// SyncOnce polls the store once and publishes what changed.
func (h *Handler) SyncOnce(ctx context.Context) error {
	h.syncMu.Lock()
	defer h.syncMu.Unlock()
	changed, err := h.follower.Poll(ctx)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.storeRv = h.follower.Settled()
	first := !h.synced
	h.synced = true
	now := h.opts.Clock.Now()
	if len(changed) == 0 && !first {
		h.nodes.publish(h.seq, h.storeRv, now)
		return nil
	}
	h.seq++
	h.nodes.publish(h.seq, h.storeRv, now)
	for _, host := range changed {
		n := name{seq: h.seq}
		if r, ok := h.follower.Record(host); ok && !r.Free() {
			n.bound, n.ip, n.service, n.aliases = true, r.IP, r.Service, slices.Clone(r.Aliases)
		}
		h.names[host] = n
	}
	close(h.wake)
	h.wake = make(chan struct{})
	return nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		w.Header().Set("Retry-After", "5")
		http.Error(w, "too many requests", http.StatusServiceUnavailable)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if len(r.URL.RawQuery) > 256 || len(r.URL.Path) > 64 {
		http.Error(w, "request URI too long", http.StatusRequestURITooLong)
		return
	}
	if r.URL.Path == NodesPath {
		h.serveNodes(w, r)
		return
	}
	if r.URL.Path != Path {
		http.NotFound(w, r)
		return
	}
	if node := r.Header.Get(NodeHeader); node != "" {
		if !ValidNodeName(node) {
			http.Error(w, fmt.Sprintf("%s %.64q: not a node name", NodeHeader, node), http.StatusBadRequest)
			return
		}
		h.nodes.seen(node, r.Header.Get(AppliedHeader), h.opts.Clock.Now())
	}
	q, err := parseQuery(r, h.opts.MaxWait)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp, notModified, ok := h.respond(r.Context(), q)
	if !ok {
		if r.Context().Err() == nil {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "feed not synced with the ledger yet", http.StatusServiceUnavailable)
		}
		return
	}
	w.Header().Set("ETag", etag(resp.Epoch, resp.Rev))
	w.Header().Set("Cache-Control", "no-cache")
	if notModified {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodHead {
		return
	}
	_ = json.NewEncoder(w).Encode(resp)
}

// Convergence reports which live agents hold which names (from the
// headers of their requests).
func (h *Handler) Convergence() Convergence {
	h.mu.Lock()
	epoch, others := h.epoch, h.others
	h.mu.Unlock()
	own := h.nodes.snapshot(epoch, h.opts.Clock.Now())
	if len(others) == 0 {
		return own
	}
	return merge(own, others, h.opts.Replica, h.opts.NodeTTL)
}

func (h *Handler) shareLoop(ctx context.Context) {
	t := h.opts.Clock.NewTicker(h.opts.ShareEvery)
	defer t.Stop()
	for {
		if err := h.ShareOnce(ctx); err != nil && ctx.Err() == nil {
			h.opts.Logger.Error(err, "feed: exchanging node tables with the other replicas")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

// ShareOnce writes this replica's node table and reads the others'.
func (h *Handler) ShareOnce(ctx context.Context) error {
	h.mu.Lock()
	epoch := h.epoch
	h.mu.Unlock()
	now := h.opts.Clock.Now()
	own := h.nodes.snapshot(epoch, now)
	r := ledger.NodeReport{Replica: h.opts.Replica, At: now, Rev: own.Rev, Nodes: make([]ledger.NodeRow, 0, len(own.Nodes))}
	for _, n := range own.Nodes {
		r.Nodes = append(r.Nodes, ledger.NodeRow{Name: n.Name, Rev: n.Rev, StaleSince: n.StaleSince, LastSeen: n.LastSeen})
	}
	if err := h.opts.Share.PutNodeReport(ctx, r); err != nil {
		return err
	}
	reports, err := h.opts.Share.NodeReports(ctx, now.Add(-2*h.opts.NodeTTL))
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.others = reports
	h.mu.Unlock()
	return nil
}

func (h *Handler) serveNodes(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawQuery != "" {
		http.Error(w, "GET /v1/nodes takes no parameters", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	if r.Method == http.MethodHead {
		return
	}
	_ = json.NewEncoder(w).Encode(h.Convergence())
}

type query struct {
	epoch       string
	since       int64
	hasSince    bool
	wait        time.Duration
	ifNoneMatch string
}

func parseQuery(r *http.Request, maxWait time.Duration) (query, error) {
	var q query
	v := r.URL.Query()
	for k := range v {
		switch k {
		case "since", "wait", "epoch":
		default:
			return q, fmt.Errorf("unknown parameter %q", k)
		}
	}
	if s := v.Get("since"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return q, fmt.Errorf("since %q: not a rev", s)
		}
		q.since, q.hasSince = n, true
	}
	q.epoch = v.Get("epoch")
	if s := v.Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return q, fmt.Errorf("wait %q: not a duration", s)
		}
		q.wait = min(d, maxWait)
	}
	q.ifNoneMatch = r.Header.Get("If-None-Match")
	if len(q.ifNoneMatch) > 64 {
		return q, fmt.Errorf("If-None-Match too long")
	}
	return q, nil
}

func etag(epoch string, rev int64) string {
	return fmt.Sprintf("%q", epoch+"-"+strconv.FormatInt(rev, 10))
}

// respond builds the response, waiting up to q.wait for a change when the
// client is already current. ok is false when the feed has no data yet.
func (h *Handler) respond(ctx context.Context, q query) (resp Response, notModified, ok bool) {
	var timeout <-chan time.Time
	if q.wait > 0 {
		timer := h.opts.Clock.NewTimer(q.wait)
		defer timer.Stop()
		timeout = timer.C()
	}
	for {
		h.mu.Lock()
		synced, epoch, seq, wake := h.synced, h.epoch, h.seq, h.wake
		current := (q.hasSince && q.epoch == epoch && q.since == seq) || q.ifNoneMatch == etag(epoch, seq)
		if synced && (!current || q.wait == 0) {
			resp = h.build(q)
			h.mu.Unlock()
			return resp, current && q.ifNoneMatch != "", true
		}
		h.mu.Unlock()
		if !synced && q.wait == 0 {
			return resp, false, false
		}
		select {
		case <-wake:
		case <-timeout:
			q.wait = 0 // answer with what we have
		case <-ctx.Done():
			return resp, false, false
		}
	}
}

// name is what the feed keeps of one hostname (Handler.names).
type name struct {
	seq         int64 // of its last change
	bound       bool
	ip, service string
	aliases     []string
}

// entry is the name's entry in a response: a released one when it is not
// bound.
func (n name) entry(host string) Entry {
	if !n.bound {
		return Entry{Hostname: host, Released: true}
	}
	return Entry{Hostname: host, IP: n.ip, Aliases: n.aliases, Service: n.service}
}

// build must be called with h.mu held.
func (h *Handler) build(q query) Response {
	resp := Response{Epoch: h.epoch, Rev: h.seq, StoreRev: h.storeRv, Entries: []Entry{}}
	if q.hasSince && q.epoch == h.epoch && q.since <= h.seq {
		for host, n := range h.names {
			if n.seq > q.since {
				resp.Entries = append(resp.Entries, n.entry(host))
			}
		}
	} else {
		// Released names (gaps in the ledger, or freed since this replica
		// started) go in too: an agent that was away while most of its
		// names were freed can then drop them as authoritative releases
		// instead of tripping its shrink guard forever.
		resp.Full = true
		resp.Entries = make([]Entry, 0, len(h.names))
		for host, n := range h.names {
			resp.Entries = append(resp.Entries, n.entry(host))
		}
	}
	slices.SortFunc(resp.Entries, func(a, b Entry) int { return naming.CompareHostnames(a.Hostname, b.Hostname) })
	return resp
}

// NewServer wraps a feed handler in an http.Server with the limits a
// read-only, internet-facing-by-accident endpoint needs.
func NewServer(addr string, h http.Handler, maxWait time.Duration) *http.Server {
	if maxWait <= 0 {
		maxWait = 60 * time.Second
	}
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      maxWait + 15*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    8 << 10,
	}
}
