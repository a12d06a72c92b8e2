package feed

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// maxBody bounds what the client reads from a feed (10,000 names are ~1 MB).
const maxBody = 64 << 20

// Client follows a feed and keeps the full name set. It is not safe for
// concurrent use.
type Client struct {
	base    string
	http    *http.Client
	wait    time.Duration
	epoch   string
	rev     int64
	synced  bool
	entries map[string]Entry
	// order is entries' hostnames in naming.CompareHostnames order, kept
	// up to date by each delta (a binary search per changed name) so
	// Records costs no sort: at 10,000 names sorting on every change was
	// most of an agent's CPU.
	order []string
	// released holds names the feed said were released since we started,
	// so a caller can tell a real release from a bad read.
	released map[string]bool
	// node and applied are sent as NodeHeader and AppliedHeader so the
	// feed can tell which names each node holds.
	node, applied string
	// BytesRead counts response bytes (for benchmarks).
	BytesRead int64
}

// NewClient returns a client of the feed at base (e.g. http://controller:8081).
// wait is the long-poll duration asked of the server (0: no long-poll).
func NewClient(base string, hc *http.Client, wait time.Duration) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("feed URL %q: want http(s)://host[:port]", base)
	}
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: strings.TrimSuffix(base, "/"), http: hc, wait: wait,
		entries: map[string]Entry{}, released: map[string]bool{}}, nil
}

// SetNode makes the client name itself (NodeHeader) in its requests, so
// the feed can report this node's convergence. Empty stays anonymous.
func (c *Client) SetNode(name string) { c.node = name }

// MarkApplied records that the names of the last Poll are now in the hosts
// file; the next request tells the feed (AppliedHeader).
func (c *Client) MarkApplied() {
	if c.synced {
		c.applied = etag(c.epoch, c.rev)
	}
}

// Poll fetches what changed (long-polling up to the client's wait) and
// reports whether the name set changed. On error the set is left as it was.
func (c *Client) Poll(ctx context.Context) (changed bool, err error) {
	q := url.Values{}
	if c.synced {
		q.Set("since", strconv.FormatInt(c.rev, 10))
		q.Set("epoch", c.epoch)
		if c.wait > 0 {
			q.Set("wait", c.wait.String())
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+Path+"?"+q.Encode(), nil)
	if err != nil {
		return false, err
	}
	if c.node != "" {
		req.Header.Set(NodeHeader, c.node)
		if c.applied != "" {
			req.Header.Set(AppliedHeader, c.applied)
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return false, fmt.Errorf("fetching feed: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		return false, nil
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return false, fmt.Errorf("fetching feed: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	cr := &countingReader{r: io.LimitReader(resp.Body, maxBody)}
	var body Response
	err = json.NewDecoder(cr).Decode(&body)
	c.BytesRead += cr.n
	if err != nil {
		return false, fmt.Errorf("decoding feed: %w", err)
	}
	changed = c.apply(body)
	c.epoch, c.rev, c.synced = body.Epoch, body.Rev, true
	return changed, nil
}

// apply takes in a response and reports whether the name set changed.
func (c *Client) apply(body Response) (changed bool) {
	if body.Full {
		next := make(map[string]Entry, len(body.Entries))
		freed := map[string]bool{}
		for _, e := range body.Entries {
			if e.Released {
				freed[e.Hostname] = true
			} else {
				next[e.Hostname] = e
			}
		}
		for h := range c.entries {
			if _, ok := next[h]; !ok {
				c.released[h] = freed[h] // vanished in a full read: not known as released
			}
		}
		// Also names this client never held: a restarted agent's file
		// still lists them.
		for h := range freed {
			c.released[h] = true
		}
		for h := range next {
			delete(c.released, h)
		}
		changed = !c.synced || !maps.EqualFunc(c.entries, next, sameEntry)
		c.entries = next
		c.order = slices.SortedFunc(maps.Keys(next), naming.CompareHostnames)
		return changed
	}
	for _, e := range body.Entries {
		old, had := c.entries[e.Hostname]
		if e.Released {
			if had {
				changed = true
				delete(c.entries, e.Hostname)
				i := c.at(e.Hostname)
				c.order = slices.Delete(c.order, i, i+1)
			}
			c.released[e.Hostname] = true
			continue
		}
		delete(c.released, e.Hostname)
		if !had || !sameEntry(old, e) {
			changed = true
		}
		if !had {
			c.order = slices.Insert(c.order, c.at(e.Hostname), e.Hostname)
		}
		c.entries[e.Hostname] = e
	}
	return changed
}

// at is where hostname is, or would be inserted, in order.
func (c *Client) at(hostname string) int {
	i, _ := slices.BinarySearchFunc(c.order, hostname, naming.CompareHostnames)
	return i
}

// Records returns the bound names as ledger records, sorted by hostname.
func (c *Client) Records() []naming.Record {
	out := make([]naming.Record, 0, len(c.order))
	for _, h := range c.order {
		out = append(out, c.entries[h].record())
	}
	return out
}

// Released reports whether the feed said hostname was released.
func (c *Client) Released(hostname string) bool { return c.released[hostname] }

// Rev returns the feed rev the client is at.
func (c *Client) Rev() int64 { return c.rev }

// sameEntry is naming.SameRecord on what the feed carries of a record.
func sameEntry(a, b Entry) bool { return naming.SameRecord(a.record(), b.record()) }

// record is the entry as a bound ledger record. The feed never serves
// instance ids; a placeholder marks the record bound.
func (e Entry) record() naming.Record {
	return naming.Record{Hostname: e.Hostname, IP: e.IP, Aliases: e.Aliases, Service: e.Service, InstanceID: "feed"}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// GetConvergence reads GET /v1/nodes of the feed at base.
func GetConvergence(ctx context.Context, hc *http.Client, base string) (Convergence, error) {
	var c Convergence
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, fmt.Errorf("feed URL %q: want http(s)://host[:port]", base)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+NodesPath, nil)
	if err != nil {
		return c, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return c, fmt.Errorf("fetching %s: %w", NodesPath, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return c, fmt.Errorf("fetching %s: %s: %s", NodesPath, resp.Status, strings.TrimSpace(string(b)))
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&c); err != nil {
		return c, fmt.Errorf("decoding %s: %w", NodesPath, err)
	}
	return c, nil
}
