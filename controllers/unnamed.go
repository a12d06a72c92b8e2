package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// UnnamedStore reads and removes the ledger documents that have no
// hostname (left by a 1.x --change-master that died half-way).
//
// Error contract: Unnamed fails only when the documents could not be read
// completely; Remove deletes one document as read and returns an error
// wrapping ledger.ErrConflict when it changed since.
type UnnamedStore interface {
	Unnamed(ctx context.Context) ([]ledger.Document, error)
	Remove(ctx context.Context, d ledger.Document) error
}

// scheduledUnnamed takes the query for documents without a hostname off
// the per-pass path. That query ({hostname: {$in: ["", null]}}) has no
// index on the embedded store (a scan of every document, decoded in Go),
// and an idle pass otherwise costs only a change log read.
//
// While its last read found no document it reads again only once every
// `every`; while documents exist it reads on every call, so repairs and
// renames go at the pace of passes. A read error is not remembered.
//
// Why a bounded delay is correct: aerostat 2 never writes such a document.
// Only a 1.x --change-master that died between its writes leaves one, and
// a 1.x writer does not write the change log either, so the plan copy's
// delta reads would not show its other writes before the periodic resync
// (ledger.DefaultResyncEvery) either. Until the leftover is read, its
// instance is simply not named yet, which is how 1.x itself treats it (no
// name until it registers again); nothing is released or given away on
// its account, because a document without a hostname holds no name.
// With every = ledger.DefaultResyncEvery, a leftover is found within that
// period plus one poll interval.
type scheduledUnnamed struct {
	UnnamedStore
	clock clock.PassiveClock
	every time.Duration

	mu    sync.Mutex
	at    time.Time // of the last successful read (zero: none yet)
	found bool      // it found documents
}

// Unnamed implements UnnamedStore; see the type.
func (s *scheduledUnnamed) Unnamed(ctx context.Context) ([]ledger.Document, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.at.IsZero() && !s.found && s.clock.Since(s.at) < s.every {
		return nil, nil
	}
	docs, err := s.UnnamedStore.Unnamed(ctx)
	if err != nil {
		return nil, err
	}
	s.found, s.at = len(docs) > 0, s.clock.Now()
	return docs, nil
}

// unnamedInstances are the instance ids of documents without a hostname,
// each with the service the document names. 1.x's own code treats such an
// instance as holding no name and gives it one when it registers again;
// the standalone pass does the same: it observes the instance with the
// document's service, so the planner names it like any unnamed node.
func unnamedInstances(docs []ledger.Document) map[string]string {
	ids := map[string]string{}
	for _, d := range docs {
		if d.Record.InstanceID != "" && d.Record.Service != "" && naming.ValidateLabel("service", d.Record.Service) == nil {
			ids[d.Record.InstanceID] = d.Record.Service
		}
	}
	return ids
}

// unnamedOf reads the documents without a hostname of one service (none
// without an UnnamedStore). A NamingService's pass repairs its own
// service's; a leftover naming no service is the standalone pass's.
func (s *Syncer) unnamedOf(ctx context.Context, service string) ([]ledger.Document, error) {
	if s.unnamed == nil {
		return nil, nil
	}
	docs, err := s.unnamed.Unnamed(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(docs, func(d ledger.Document) bool { return d.Record.Service != service }), nil
}

// repairUnnamed removes the documents without a hostname that are no
// longer needed, after a complete pass (byID is its listing, named the
// instances holding a name after it): a gap (no instance), an instance
// that now holds a name, or one the listing shows not running or does not
// return. A live instance still unnamed (its pass failed or lost a
// compare-and-set) keeps its document for the next pass. It returns how
// many it removed. Callers never call it for a dry run or a failed or
// partial listing: an instance missing from those is unknown, not gone.
func (s *Syncer) repairUnnamed(ctx context.Context, docs []ledger.Document, byID map[string]naming.Instance, named map[string]bool) (int, error) {
	var (
		removed int
		errs    []error
	)
	for _, d := range docs {
		id := d.Record.InstanceID
		in, listed := byID[id]
		why := ""
		switch {
		case id == "":
			why = "no instance"
		case named[id]:
			why = "its instance holds a name"
		case !listed:
			why = "its instance is not listed"
		case in.State != naming.StateRunning && in.State != naming.StatePending:
			why = "its instance is " + string(in.State)
		default:
			continue
		}
		if err := s.unnamed.Remove(ctx, d); err != nil {
			if !errors.Is(err, ledger.ErrConflict) {
				errs = append(errs, fmt.Errorf("removing document %s without a hostname: %w", d.ID, err))
			}
			continue
		}
		removed++
		log.FromContext(ctx).Info("removed a document without a hostname (1.x change-master left it)",
			"document", d.ID, "service", d.Record.Service, "instance", id, "why", why)
	}
	return removed, errors.Join(errs...)
}

// namedAfter is the set of instances holding a name after the passes of
// sum (the records read before them for a pass that has none).
func namedAfter(sum Summary, before map[string][]naming.Record) map[string]bool {
	named := map[string]bool{}
	for _, name := range sum.Services {
		recs := sum.Passes[name].Records
		if recs == nil {
			recs = before[name]
		}
		for _, r := range recs {
			named[r.InstanceID] = !r.Free() || named[r.InstanceID]
		}
	}
	return named
}
