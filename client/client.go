// Package client reads Aerostat's names for other admin tools: the Go
// counterpart of the 1.x library functions hostname_exists, get_hostname,
// get_master and check_master, plus listing and watching. It talks to the
// ledger (MongoDB, database "aerostat", collection "servers") and never
// writes to it.
package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// ErrNotFound is returned (wrapped) when no record matches a lookup.
var ErrNotFound = errors.New("not found")

// DefaultPollInterval is how often Watch asks the ledger for changes.
const DefaultPollInterval = time.Second

// Options configure a Client. The zero value is ready to use.
type Options struct {
	// Database is the ledger's database; default "aerostat".
	Database string
	// PollInterval is how often Watch polls; default DefaultPollInterval.
	PollInterval time.Duration
	// Clock drives Watch and ages; default the real clock.
	Clock  clock.WithTicker
	Logger logr.Logger
}

// Client reads the ledger. It is safe for concurrent use.
type Client struct {
	store ledger.Store
	opts  Options
	close func(context.Context) error
	// where names the ledger in errors (" at admin-master").
	where string
}

// New connects to the ledger at server: a mongodb:// URI, or a bare host
// name ("admin-master", port 27017) or host:port as 1.x's --server took.
// The connection is read-only. Close it when done.
func New(ctx context.Context, server string, opts Options) (*Client, error) {
	uri, err := ServerURI(server)
	if err != nil {
		return nil, err
	}
	m, err := ledger.Open(ctx, uri, ledger.Options{Database: opts.Database, ReadOnly: true, Logger: opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("opening ledger at %s: %w", ledger.RedactURI(server), err)
	}
	c := newClient(m, opts)
	c.close = m.Close
	c.where = " at " + ledger.RedactURI(server)
	return c, nil
}

// newClient wraps an open store (tests, the demo's in-process ledger).
func newClient(store ledger.Store, opts Options) *Client {
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	return &Client{store: store, opts: opts, close: func(context.Context) error { return nil }}
}

// Close releases the connection.
func (c *Client) Close(ctx context.Context) error { return c.close(ctx) }

// ServerURI turns a --server value into a MongoDB URI: URIs pass through,
// a bare host gets the MongoDB port 27017, host:port is kept.
func ServerURI(server string) (string, error) {
	switch {
	case server == "":
		return "", errors.New("server: empty, want a hostname or a mongodb:// URI")
	case strings.HasPrefix(server, "mongodb://"), strings.HasPrefix(server, "mongodb+srv://"):
		return server, nil
	case strings.Contains(server, "://"):
		return "", fmt.Errorf("server %q: want a hostname or a mongodb:// URI", ledger.RedactURI(server))
	}
	if _, _, err := net.SplitHostPort(server); err == nil {
		return "mongodb://" + server + "/", nil
	}
	if strings.ContainsAny(server, "/?@ ") {
		return "", fmt.Errorf("server %q: want a hostname or a mongodb:// URI", ledger.RedactURI(server))
	}
	return "mongodb://" + net.JoinHostPort(server, "27017") + "/", nil
}

// HostnameExists reports whether the ledger has a record called hostname,
// bound or free: as in 1.x, a free name (a gap) still exists, since it is
// kept to be handed out again. Aliases are not hostnames.
func (c *Client) HostnameExists(ctx context.Context, hostname string) (bool, error) {
	_, err := c.Name(ctx, hostname)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Name returns the record called hostname, or an error wrapping ErrNotFound.
func (c *Client) Name(ctx context.Context, hostname string) (Name, error) {
	recs, err := c.store.Records(ctx, "")
	if err != nil {
		return Name{}, fmt.Errorf("reading ledger%s: %w", c.where, err)
	}
	var found []naming.Record
	for _, r := range recs {
		if r.Hostname == hostname {
			found = append(found, r)
		}
	}
	if len(found) == 0 {
		return Name{}, fmt.Errorf("hostname %q: %w", hostname, ErrNotFound)
	}
	// A 1.x race can leave two documents for one name; the bound one is
	// the one machines resolve.
	slices.SortStableFunc(found, func(a, b naming.Record) int { return boolCmp(b.Free(), a.Free()) })
	return fromRecord(found[0]), nil
}

// Hostname returns the name bound to instanceID, or an error wrapping
// ErrNotFound.
func (c *Client) Hostname(ctx context.Context, instanceID string) (string, error) {
	if instanceID == "" {
		// An empty id is how the ledger marks a gap; it names nothing.
		return "", fmt.Errorf("instance id %q: %w", instanceID, ErrNotFound)
	}
	recs, err := c.store.Records(ctx, "")
	if err != nil {
		return "", fmt.Errorf("reading ledger%s: %w", c.where, err)
	}
	for _, n := range selectNames(recs, Selector{}) {
		if n.InstanceID == instanceID {
			return n.Hostname, nil
		}
	}
	return "", fmt.Errorf("instance id %q: %w", instanceID, ErrNotFound)
}

// Master returns the bound master name of a masterful service, or an error
// wrapping ErrNotFound when the service has no bound master. Two bound
// masters (left by a 1.x race) are an error, as they were in 1.x.
func (c *Client) Master(ctx context.Context, service string) (Name, error) {
	recs, err := c.store.Records(ctx, service)
	if err != nil {
		return Name{}, fmt.Errorf("reading ledger%s, service %q: %w", c.where, service, err)
	}
	want := naming.Hostname(service, naming.Masterful, naming.RoleMaster, 0)
	var masters []naming.Record
	for _, r := range recs {
		if r.Hostname == want && !r.Free() {
			masters = append(masters, r)
		}
	}
	switch len(masters) {
	case 0:
		return Name{}, fmt.Errorf("master of service %q: %w", service, ErrNotFound)
	case 1:
		return fromRecord(masters[0]), nil
	}
	return Name{}, fmt.Errorf("master of service %q: %d instances hold %s", service, len(masters), want)
}

// IsMaster reports whether instanceID holds the master name of service.
func (c *Client) IsMaster(ctx context.Context, service, instanceID string) (bool, error) {
	m, err := c.Master(ctx, service)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return instanceID != "" && m.InstanceID == instanceID, nil
}

// Names lists the records matching sel, sorted by service, then masters
// before slaves, then by number (web-2 before web-10).
func (c *Client) Names(ctx context.Context, sel Selector) ([]Name, error) {
	recs, err := c.store.Records(ctx, sel.Service)
	if err != nil {
		if sel.Service != "" {
			return nil, fmt.Errorf("reading ledger%s, service %q: %w", c.where, sel.Service, err)
		}
		return nil, fmt.Errorf("reading ledger%s: %w", c.where, err)
	}
	return selectNames(recs, sel), nil
}

// Services summarises the ledger by service, sorted by service name.
func (c *Client) Services(ctx context.Context) ([]Service, error) {
	names, err := c.Names(ctx, Selector{})
	if err != nil {
		return nil, err
	}
	svcs := Summarize(names)
	ps, ok := c.store.(interface {
		Policies(ctx context.Context) ([]ledger.Policy, error)
	})
	if !ok {
		return svcs, nil
	}
	policies, err := ps.Policies(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading ledger%s: %w", c.where, err)
	}
	for i := range svcs {
		svcs[i].HoldBack, svcs[i].PolicySource = &Duration{ledger.DefaultHoldBack}, "default"
		for _, p := range policies {
			if p.Service == svcs[i].Service {
				svcs[i].HoldBack, svcs[i].PolicySource = &Duration{p.HoldBack}, p.Source
			}
		}
	}
	return svcs, nil
}

func selectNames(recs []naming.Record, sel Selector) []Name {
	out := make([]Name, 0, len(recs))
	for _, r := range recs {
		if n := fromRecord(r); sel.Matches(n) {
			out = append(out, n)
		}
	}
	SortNames(out)
	return out
}

// SortNames orders names as naming.CompareNames does (by service, masters
// first, then by number: web-2 before web-10), a gap after a bound name
// of the same hostname.
func SortNames(names []Name) {
	slices.SortStableFunc(names, func(a, b Name) int {
		ka := naming.Record{Service: a.Service, Role: naming.Role(a.Role), Ordinal: a.Ordinal, Hostname: a.Hostname}
		kb := naming.Record{Service: b.Service, Role: naming.Role(b.Role), Ordinal: b.Ordinal, Hostname: b.Hostname}
		if c := naming.CompareNames(&ka, &kb); c != 0 {
			return c
		}
		return boolCmp(a.State == Free, b.State == Free)
	})
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}
