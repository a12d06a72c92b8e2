package controllers

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/aerostat-io/aerostat/api/v1alpha1"
	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// Defaults of a reap policy left empty (the CRD applies the same ones).
const (
	DefaultGracePeriod        = 5 * time.Minute
	DefaultMaxReleasePercent  = 50
	DefaultHoldBack           = ledger.DefaultHoldBack
	DefaultStoppedGracePeriod = time.Hour
)

// ServiceFromSpec turns a NamingService into the Service a pass needs. Bad
// values give an error naming the field and the value; the CRD schema
// rejects most of them before they get here.
func ServiceFromSpec(ns *v1alpha1.NamingService) (Service, error) {
	spec := ns.Spec
	if err := naming.ValidateLabel("spec.service", spec.Service); err != nil {
		return Service{}, err
	}
	scheme := naming.Iterative
	if spec.Scheme != "" {
		s, err := naming.ParseScheme(spec.Scheme)
		if err != nil {
			return Service{}, fmt.Errorf("spec.scheme: %w", err)
		}
		scheme = s
	}
	p := naming.Policy{
		Service:       spec.Service,
		Scheme:        scheme,
		DesiredMaster: spec.DesiredMaster,
		Reap:          DefaultReap(),
	}
	if g := spec.ReapPolicy.GracePeriod; g != nil {
		if g.Duration < 0 {
			return Service{}, fmt.Errorf("spec.reapPolicy.gracePeriod %q: must not be negative", g.Duration)
		}
		p.Reap.GracePeriod = g.Duration
	}
	for _, d := range []struct {
		field string
		v     *metav1.Duration
		to    *time.Duration
	}{
		{"holdBack", spec.ReapPolicy.HoldBack, &p.Reap.HoldBack},
		{"stoppedGracePeriod", spec.ReapPolicy.StoppedGracePeriod, &p.Reap.StoppedGracePeriod},
		{"releaseWindow", spec.ReapPolicy.ReleaseWindow, &p.Reap.ReleaseWindow},
	} {
		if d.v == nil {
			continue
		}
		if d.v.Duration < 0 {
			return Service{}, fmt.Errorf("spec.reapPolicy.%s %q: must not be negative", d.field, d.v.Duration)
		}
		*d.to = d.v.Duration
	}
	if m := spec.ReapPolicy.MaxReleasePercent; m != nil {
		if *m < 1 || *m > 100 {
			return Service{}, fmt.Errorf("spec.reapPolicy.maxReleasePercent %d: must be 1 to 100", *m)
		}
		p.Reap.MaxReleaseFraction = float64(*m) / 100
	}
	for host, aliases := range spec.Aliases.ByHostname {
		if err := naming.ValidateHostname("spec.aliases.byHostname key", host); err != nil {
			return Service{}, err
		}
		for _, a := range aliases {
			if err := naming.ValidateHostname(fmt.Sprintf("spec.aliases.byHostname[%s]", host), a); err != nil {
				return Service{}, err
			}
		}
	}
	if len(spec.Aliases.ByHostname) > 0 {
		p.Aliases = spec.Aliases.ByHostname
	}
	for i, suf := range spec.Aliases.AllowedSuffixes {
		if err := naming.ValidateHostname(fmt.Sprintf("spec.aliases.allowedSuffixes[%d]", i), strings.Trim(suf, ".")); err != nil {
			return Service{}, err
		}
	}
	svc := Service{Policy: p, AliasTag: spec.Aliases.InstanceTag, AllowedSuffixes: spec.Aliases.AllowedSuffixes, PolicySource: SourceNamingService + ns.Name}
	if svc.AliasTag == "" {
		svc.AliasTag = TagAliases
	}
	for i, f := range spec.Selector.Filters {
		if f.Name == "" || len(f.Values) == 0 {
			return Service{}, fmt.Errorf("spec.selector.filters[%d] %q: needs a name and at least one value", i, f.Name)
		}
		svc.Filters = append(svc.Filters, cloud.Filter{Name: f.Name, Values: f.Values})
	}
	return svc, nil
}

// DefaultReap is the reap policy of a service that sets none.
func DefaultReap() naming.ReapPolicy {
	return naming.ReapPolicy{
		GracePeriod: DefaultGracePeriod, MaxReleaseFraction: DefaultMaxReleasePercent / 100.0,
		HoldBack: DefaultHoldBack, StoppedGracePeriod: DefaultStoppedGracePeriod,
		ReleaseWindow: DefaultReleaseWindow,
	}
}
