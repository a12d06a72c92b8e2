package feed

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/promreg"
)

// Agents say who they are and what their hosts file holds in request
// headers, not query parameters: a feed that predates them ignores headers
// but refuses unknown parameters.
const (
	// NodeHeader names the node a feed request comes from.
	NodeHeader = "Aerostat-Node"
	// AppliedHeader is the ETag (`"<epoch>-<rev>"`) of the last response
	// whose names the node has written to its hosts file.
	AppliedHeader = "Aerostat-Applied"
	// NodesPath serves the convergence table (GET).
	NodesPath = "/v1/nodes"
)

// Defaults of the node table.
const (
	// DefaultNodeTTL is how long a node that stopped asking counts as live.
	// Agents long-poll for 30 s, so a live agent asks at least that often.
	DefaultNodeTTL = 5 * time.Minute
	// DefaultMaxNodes bounds the table; past it the longest-silent node goes.
	DefaultMaxNodes = 20000
	// maxHistory bounds the remembered feed revs; a node further behind
	// is shown with the oldest remembered one's times (a lower bound).
	maxHistory  = 4096
	maxNodeName = 253
)

// NodeState is one node in the convergence table.
type NodeState struct {
	Name string `json:"name"`
	// Rev is the ledger rev of the names in the node's hosts file; -1 when
	// unknown (the node has not written a file from this feed yet).
	Rev int64 `json:"rev"`
	// Behind is how many ledger revs the node is behind the feed (0: current).
	Behind int64 `json:"behind"`
	// StaleSince is when the feed first served something the node has not
	// applied; nil when the node is current.
	StaleSince *time.Time `json:"staleSince,omitempty"`
	LastSeen   time.Time  `json:"lastSeen"`
}

// Current reports whether the node holds the feed's latest names.
func (n NodeState) Current() bool { return n.StaleSince == nil }

// Convergence is the body of GET /v1/nodes: which live nodes hold which rev.
type Convergence struct {
	// Rev is the ledger rev the feed serves.
	Rev int64 `json:"rev"`
	// Total live nodes and how many of them are AtRev.
	Total int `json:"total"`
	AtRev int `json:"atRev"`
	// OldestAppliedAgeSeconds is how long the oldest names still in a live
	// node's hosts file have been out of date; 0 when every node is current.
	OldestAppliedAgeSeconds float64 `json:"oldestAppliedAgeSeconds"`
	// Nodes: laggards first (longest stale first), then current ones by name.
	Nodes []NodeState `json:"nodes"`
	Time  time.Time   `json:"time"`
}

// Laggards returns the nodes that are not current.
func (c Convergence) Laggards() []NodeState {
	var out []NodeState
	for _, n := range c.Nodes {
		if !n.Current() {
			out = append(out, n)
		}
	}
	return out
}

// AtLeast counts the live nodes whose hosts file holds at least rev.
func (c Convergence) AtLeast(rev int64) int {
	n := 0
	for _, s := range c.Nodes {
		if s.Rev >= rev {
			n++
		}
	}
	return n
}

// Summary is the one-line view, e.g. "2 of 3 hosts at rev 17".
func (c Convergence) Summary() string {
	return fmt.Sprintf("%d of %d hosts at rev %d", c.AtRev, c.Total, c.Rev)
}

// published is one feed rev: the ledger rev it stood for while it was the
// latest (the follower's settled rev: every write at or below it is in the
// names), and when it was served first.
type published struct {
	seq, storeRev int64
	at            time.Time
}

// nodeEntry is what the table keeps per node.
type nodeEntry struct {
	epoch    string
	seq      int64 // feed rev applied; -1 unknown
	lastSeen time.Time
}

// nodeTable is the bounded in-memory table of agents. It is filled from
// request headers and read for /v1/nodes, status and metrics.
type nodeTable struct {
	ttl time.Duration
	max int

	mu      sync.Mutex
	nodes   map[string]nodeEntry
	history []published // ascending seq, at most maxHistory
}

func newNodeTable(ttl time.Duration, maxNodes int) *nodeTable {
	if ttl <= 0 {
		ttl = DefaultNodeTTL
	}
	if maxNodes <= 0 {
		maxNodes = DefaultMaxNodes
	}
	return &nodeTable{ttl: ttl, max: maxNodes, nodes: map[string]nodeEntry{}}
}

// publish records that feed rev seq (standing for storeRev) is the latest.
// Called on every store poll, so the latest seq's storeRev follows the
// ledger even when the names did not change: a write that commits late
// with a record the feed already served settles the rev of the nodes that
// applied it.
func (t *nodeTable) publish(seq, storeRev int64, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := len(t.history); n > 0 && t.history[n-1].seq == seq {
		t.history[n-1].storeRev = storeRev
		return
	}
	t.history = append(t.history, published{seq: seq, storeRev: storeRev, at: at})
	if len(t.history) > maxHistory {
		t.history = slices.Delete(t.history, 0, len(t.history)-maxHistory)
	}
}

// seen records a request from node saying it applied the feed state in
// applied (an ETag, possibly empty).
func (t *nodeTable) seen(node, applied string, now time.Time) {
	e := nodeEntry{seq: -1, lastSeen: now}
	if epoch, seq, ok := parseETag(applied); ok {
		e.epoch, e.seq = epoch, seq
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.nodes[node]; !ok && len(t.nodes) >= t.max {
		t.evictLocked(now)
	}
	t.nodes[node] = e
}

// evictLocked drops expired nodes, or else the longest-silent one.
func (t *nodeTable) evictLocked(now time.Time) {
	oldest, oldestAt := "", now
	for name, e := range t.nodes {
		if now.Sub(e.lastSeen) > t.ttl {
			delete(t.nodes, name)
			continue
		}
		if e.lastSeen.Before(oldestAt) || oldest == "" {
			oldest, oldestAt = name, e.lastSeen
		}
	}
	if len(t.nodes) >= t.max {
		delete(t.nodes, oldest)
	}
}

// snapshot computes the convergence of the live nodes for a feed at
// epoch. Nodes silent for longer than the TTL are gone: dropped.
func (t *nodeTable) snapshot(epoch string, now time.Time) Convergence {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := Convergence{Time: now, Nodes: []NodeState{}}
	if len(t.history) == 0 {
		return c
	}
	latest := t.history[len(t.history)-1]
	c.Rev = latest.storeRev
	for name, e := range t.nodes {
		if now.Sub(e.lastSeen) > t.ttl {
			delete(t.nodes, name)
			continue
		}
		s := NodeState{Name: name, Rev: -1, LastSeen: e.lastSeen}
		switch {
		case e.epoch == epoch && e.seq >= latest.seq:
			s.Rev = latest.storeRev
		case e.epoch == epoch && e.seq >= 0:
			i, found := slices.BinarySearchFunc(t.history, e.seq, func(p published, seq int64) int { return cmp.Compare(p.seq, seq) })
			if found {
				s.Rev = t.history[i].storeRev
				i++
			}
			// The first feed rev the node lacks (when that one is forgotten,
			// the oldest remembered: a lower bound of the staleness).
			at := t.history[min(i, len(t.history)-1)].at
			s.StaleSince = &at
		default:
			// Unknown: nothing applied yet, or applied from another feed
			// (a restarted or different controller replica).
			at := t.history[0].at
			s.StaleSince = &at
		}
		c.Nodes = append(c.Nodes, s)
	}
	finish(&c)
	return c
}

// finish fills the counts and order of c from its nodes.
func finish(c *Convergence) {
	c.Total, c.AtRev, c.OldestAppliedAgeSeconds = len(c.Nodes), 0, 0
	for i := range c.Nodes {
		s := &c.Nodes[i]
		if s.Current() {
			s.Behind = 0
			c.AtRev++
			continue
		}
		s.Behind = c.Rev - max(s.Rev, 0)
		c.OldestAppliedAgeSeconds = max(c.OldestAppliedAgeSeconds, c.Time.Sub(*s.StaleSince).Seconds())
	}
	slices.SortFunc(c.Nodes, func(a, b NodeState) int {
		switch {
		case a.Current() != b.Current():
			return boolInt(a.Current()) - boolInt(b.Current())
		case !a.Current() && !a.StaleSince.Equal(*b.StaleSince):
			return a.StaleSince.Compare(*b.StaleSince)
		}
		return strings.Compare(a.Name, b.Name)
	})
}

// merge adds other replicas' reports to c (a node another replica heard
// from more recently is taken from there) and recomputes it.
func merge(c Convergence, reports []ledger.NodeReport, self string, ttl time.Duration) Convergence {
	byName := make(map[string]int, len(c.Nodes))
	for i, n := range c.Nodes {
		byName[n.Name] = i
	}
	for _, r := range reports {
		if r.Replica == self || c.Time.Sub(r.At) > ttl {
			continue
		}
		c.Rev = max(c.Rev, r.Rev)
		for _, row := range r.Nodes {
			if c.Time.Sub(row.LastSeen) > ttl {
				continue
			}
			s := NodeState{Name: row.Name, Rev: row.Rev, StaleSince: row.StaleSince, LastSeen: row.LastSeen}
			if i, ok := byName[row.Name]; !ok {
				byName[row.Name] = len(c.Nodes)
				c.Nodes = append(c.Nodes, s)
			} else if row.LastSeen.After(c.Nodes[i].LastSeen) {
				c.Nodes[i] = s
			}
		}
	}
	finish(&c)
	return c
}

func parseETag(s string) (epoch string, seq int64, ok bool) {
	s = strings.TrimPrefix(s, "W/")
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", 0, false
	}
	s = s[1 : len(s)-1]
	i := strings.LastIndexByte(s, '-')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.ParseInt(s[i+1:], 10, 64)
	if err != nil || n < 0 {
		return "", 0, false
	}
	return s[:i], n, true
}

// ValidNodeName reports whether s may be sent as NodeHeader: what
// Kubernetes node names and hostnames look like, at most 253 characters.
func ValidNodeName(s string) bool {
	if s == "" || len(s) > maxNodeName {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return false
		}
	}
	return true
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// convergenceCollector exports the node table. No node names as labels:
// `aerostat get nodes` names the laggards.
type convergenceCollector struct {
	h                   *Handler
	oldest, live, atRev *prometheus.Desc
}

func newConvergenceCollector(h *Handler) *convergenceCollector {
	return &convergenceCollector{h: h,
		oldest: prometheus.NewDesc("aerostat_oldest_applied_rev_age_seconds",
			"Seconds since the feed first served a change that some live host has not applied yet; 0 when every live host is current.", nil, nil),
		live: prometheus.NewDesc("aerostat_hosts_live",
			"Hosts whose agent asked the feed within the node TTL.", nil, nil),
		atRev: prometheus.NewDesc("aerostat_hosts_at_rev",
			"Live hosts whose hosts file holds the feed's latest names.", nil, nil),
	}
}

// RegisterMetrics exports the convergence of h's agents on reg:
// aerostat_oldest_applied_rev_age_seconds (how long the oldest names on a
// live host have been out of date; 0 when all are current),
// aerostat_hosts_live and aerostat_hosts_at_rev. A handler registered
// earlier on reg (a controller built twice in one process, as a test
// run with -count does on controller-runtime's global registry) is
// replaced: the metrics describe the newest handler, not a stopped one.
func RegisterMetrics(reg prometheus.Registerer, h *Handler) error {
	if err := promreg.Replace(reg, newConvergenceCollector(h)); err != nil {
		return fmt.Errorf("registering convergence metrics: %w", err)
	}
	return nil
}

func (c *convergenceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.oldest
	ch <- c.live
	ch <- c.atRev
}

func (c *convergenceCollector) Collect(ch chan<- prometheus.Metric) {
	conv := c.h.Convergence()
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, conv.OldestAppliedAgeSeconds)
	ch <- prometheus.MustNewConstMetric(c.live, prometheus.GaugeValue, float64(conv.Total))
	ch <- prometheus.MustNewConstMetric(c.atRev, prometheus.GaugeValue, float64(conv.AtRev))
}
