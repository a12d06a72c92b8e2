// Package kube reads names from the NamingService objects of a cluster, as
// package client reads them from the ledger: the same Name, Service and
// Event values, so `aerostat get` prints either. The cluster sees bound
// names only (status.members); gaps live in the ledger.
package kube

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/aerostat-io/aerostat/api/v1alpha1"
	"github.com/aerostat-io/aerostat/client"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// policySource is controllers.SourceNamingService: the policy of a
// service read from the cluster is its NamingService's (a test keeps the
// two equal without importing the controller here).
const policySource = "NamingService "

// Source reads NamingService objects. It is safe for concurrent use.
type Source struct {
	c crclient.WithWatch
}

// New returns a Source reading through c, whose scheme must hold v1alpha1.
func New(c crclient.WithWatch) *Source { return &Source{c: c} }

// Close implements the CLI's source; a Source holds no connection.
func (*Source) Close(context.Context) error { return nil }

func (s *Source) list(ctx context.Context) (*v1alpha1.NamingServiceList, error) {
	var l v1alpha1.NamingServiceList
	if err := s.c.List(ctx, &l); err != nil {
		return nil, fmt.Errorf("listing namingservices: %w", err)
	}
	slices.SortFunc(l.Items, func(a, b v1alpha1.NamingService) int { return strings.Compare(a.Spec.Service, b.Spec.Service) })
	return &l, nil
}

// Services summarises every NamingService, by service name.
func (s *Source) Services(ctx context.Context) ([]client.Service, error) {
	l, err := s.list(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]client.Service, 0, len(l.Items))
	for _, ns := range l.Items {
		out = append(out, ServiceOf(ns))
	}
	return out, nil
}

// Names lists the bound names sel picks, in client.SortNames order.
func (s *Source) Names(ctx context.Context, sel client.Selector) ([]client.Name, error) {
	l, err := s.list(ctx)
	if err != nil {
		return nil, err
	}
	var out []client.Name
	for _, ns := range l.Items {
		for _, n := range NamesOf(ns) {
			if sel.Matches(n) {
				out = append(out, n)
			}
		}
	}
	client.SortNames(out)
	return out, nil
}

// ServiceOf summarises one NamingService: counts and master from its
// status, hold-back from its spec (the ledger's default when unset).
func ServiceOf(ns v1alpha1.NamingService) client.Service {
	svc := client.Service{
		Service:      ns.Spec.Service,
		ServiceType:  strings.ToLower(ns.Spec.Scheme),
		Bound:        int(ns.Status.Bound),
		Gaps:         int(ns.Status.Gaps),
		Master:       ns.Status.Master,
		Ready:        "Unknown",
		HoldBack:     &client.Duration{Duration: ledger.DefaultHoldBack},
		PolicySource: policySource + ns.Name,
	}
	if hb := ns.Spec.ReapPolicy.HoldBack; hb != nil {
		svc.HoldBack.Duration = hb.Duration
	}
	if svc.ServiceType == "" {
		svc.ServiceType = strings.ToLower(string(naming.Iterative))
	}
	if c := meta.FindStatusCondition(ns.Status.Conditions, v1alpha1.ConditionReady); c != nil {
		svc.Ready = string(c.Status)
	}
	if !ns.CreationTimestamp.IsZero() {
		t := ns.CreationTimestamp.UTC()
		svc.Since = &t
	}
	return svc
}

// NamesOf returns the bound names in a NamingService's status; role and
// ordinal are read back from each hostname.
func NamesOf(ns v1alpha1.NamingService) []client.Name {
	scheme, err := naming.ParseScheme(ns.Spec.Scheme)
	if err != nil {
		scheme = naming.Iterative
	}
	out := make([]client.Name, 0, len(ns.Status.Members))
	for _, m := range ns.Status.Members {
		role, ord, _ := naming.ParseHostname(ns.Spec.Service, scheme, m.Hostname)
		n := client.Name{
			Hostname: m.Hostname, IP: m.IP, Service: ns.Spec.Service, ServiceType: strings.ToLower(string(scheme)),
			InstanceID: m.InstanceID, Aliases: []string{}, State: client.Bound, Ordinal: ord, Role: string(role),
			Rev: ns.Status.Rev,
		}
		if m.Since != nil {
			t := m.Since.UTC()
			n.ClaimedAt, n.UpdatedAt = &t, &t
		}
		out = append(out, n)
	}
	return out
}
