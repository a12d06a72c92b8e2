package controllers

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/aerostat-io/aerostat/internal/ledger"
)

// Sources of a published policy, as `aerostat get services` shows them.
const (
	SourceStandalone    = "controller --standalone"
	SourceNamingService = "NamingService "
)

// publishPolicy stores the service's reap policy in the ledger, next to
// its records, when it differs from the one this syncer stored last: nodes
// registering or promoting themselves, adopt and the demo read it there,
// so a controller run with --hold-back 0 (or a NamingService's holdBack)
// governs them too. A failed write is logged and tried again next pass;
// the pass itself goes on.
func (s *Syncer) publishPolicy(ctx context.Context, svc Service) {
	ps, ok := ledger.PolicyStoreOf(s.store)
	if !ok || s.dryRun {
		return
	}
	p := ledger.PolicyOf(svc.Policy.Service, svc.Policy.Reap, svc.PolicySource)
	s.mu.Lock()
	last, done := s.published[p.Service]
	s.mu.Unlock()
	if done && last.Same(p) && last.Source == p.Source {
		return
	}
	if err := ps.PutPolicy(ctx, p); err != nil {
		log.FromContext(ctx).WithValues("service", p.Service).Error(err, "policy not published; nodes keep the one stored before")
		return
	}
	s.mu.Lock()
	s.published[p.Service] = p
	s.mu.Unlock()
}
