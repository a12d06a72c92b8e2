// Package feedtest holds an in-memory ledger.Store whose writers can take a
// rev and commit later, to test readers against out-of-order commits.
package feedtest

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// ErrDown is returned by every method while the store is down.
var ErrDown = errors.New("memstore: down")

// MemStore is a ledger.Store in memory. Safe for concurrent use.
type MemStore struct {
	mu      sync.Mutex
	rev     int64
	pending map[int64]bool // revs taken, not committed
	records map[string]naming.Record
	down    bool
	// Calls counts reads by kind: "Rev", "Records", "Changes".
	calls map[string]int
}

// New returns an empty store.
func New() *MemStore {
	return &MemStore{records: map[string]naming.Record{}, calls: map[string]int{}, pending: map[int64]bool{}}
}

// SetDown makes every call fail with ErrDown until SetDown(false).
func (m *MemStore) SetDown(down bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down = down
}

// Calls returns how many times a method was called.
func (m *MemStore) Calls(method string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls[method]
}

// TakeRev hands out the next rev without committing anything, as a writer
// does before its write lands.
func (m *MemStore) TakeRev() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rev++
	m.pending[m.rev] = true
	return m.rev
}

// Commit stores r with the given rev (from TakeRev).
func (m *MemStore) Commit(r naming.Record, rev int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r.Rev = rev
	delete(m.pending, rev)
	r.Aliases = slices.Clone(r.Aliases)
	m.records[r.Hostname] = r
}

// Put takes a rev and commits r with it at once.
func (m *MemStore) Put(r naming.Record) int64 {
	rev := m.TakeRev()
	m.Commit(r, rev)
	return rev
}

// Bind puts a bound record; Release turns it into a gap.
func (m *MemStore) Bind(hostname, service, instanceID, ip string, aliases ...string) int64 {
	return m.Put(naming.Record{Hostname: hostname, Service: service, InstanceID: instanceID, IP: ip, Aliases: aliases})
}

// Release makes hostname a gap.
func (m *MemStore) Release(hostname string) int64 {
	m.mu.Lock()
	r := m.records[hostname]
	m.mu.Unlock()
	r.InstanceID, r.IP, r.Aliases = "", "", nil
	return m.Put(r)
}

// Delete removes a record without a rev (as a hand edit would).
func (m *MemStore) Delete(hostname string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.records, hostname)
}

func (m *MemStore) enter(method string) error {
	m.calls[method]++
	if m.down {
		return ErrDown
	}
	return nil
}

// Records implements ledger.Store.
func (m *MemStore) Records(_ context.Context, service string) ([]naming.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.enter("Records"); err != nil {
		return nil, err
	}
	var out []naming.Record
	for _, r := range m.records {
		if service == "" || r.Service == service {
			r.Aliases = slices.Clone(r.Aliases)
			out = append(out, r)
		}
	}
	return out, nil
}

// Apply implements ledger.Store (without compare-and-set checks: tests of
// readers do not need them).
func (m *MemStore) Apply(_ context.Context, changes []naming.Change) (int, error) {
	for i, c := range changes {
		m.mu.Lock()
		err := m.enter("Apply")
		m.mu.Unlock()
		if err != nil {
			return i, err
		}
		r := naming.Record{Hostname: c.Hostname, Service: c.Service, Scheme: c.Scheme, Role: c.Role, Ordinal: c.Ordinal}
		switch c.Type {
		case naming.Bind:
			r.InstanceID, r.IP, r.Aliases = c.InstanceID, c.IP, c.Aliases
		case naming.Release:
		default:
			m.mu.Lock()
			r = m.records[c.Hostname]
			m.mu.Unlock()
			if c.Type == naming.SetIP {
				r.IP = c.IP
			} else {
				r.Aliases = c.Aliases
			}
		}
		m.Put(r)
	}
	return len(changes), nil
}

// Changes implements ledger.Store.
func (m *MemStore) Changes(ctx context.Context, since int64) ([]naming.Record, int64, error) {
	recs, rev, _, err := m.ChangesSettled(ctx, since)
	return recs, rev, err
}

// ChangesSettled implements ledger.SettledStore: settled stops below the
// lowest rev taken and not committed.
func (m *MemStore) ChangesSettled(_ context.Context, since int64) ([]naming.Record, int64, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.enter("Changes"); err != nil {
		return nil, 0, 0, err
	}
	var out []naming.Record
	for _, r := range m.records {
		if r.Rev > since {
			r.Aliases = slices.Clone(r.Aliases)
			out = append(out, r)
		}
	}
	settled := m.rev
	for rev := range m.pending {
		settled = min(settled, rev-1)
	}
	return out, m.rev, max(settled, since), nil
}

// Rev implements ledger.Store.
func (m *MemStore) Rev(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.enter("Rev"); err != nil {
		return 0, err
	}
	return m.rev, nil
}
