package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"

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
