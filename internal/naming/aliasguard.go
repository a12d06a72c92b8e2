package naming

import (
	"fmt"
	"slices"
	"strings"
)

// DefaultClusterDomain is the Kubernetes cluster domain unless told.
const DefaultClusterDomain = "cluster.local"

// fixedReserved are names every resolver already answers: an alias equal to
// one would redirect it on every node.
func fixedReserved() []string {
	return []string{
		"localhost", "localhost.localdomain", "localdomain", "broadcasthost",
		"ip6-localhost", "ip6-loopback", "ip6-localnet", "ip6-mcastprefix", "ip6-allnodes", "ip6-allrouters",
		"kubernetes", "kubernetes.default",
	}
}

// AliasGuardOptions configure the names no alias of any service may take.
type AliasGuardOptions struct {
	// ClusterDomain is refused with every name under it; empty means
	// DefaultClusterDomain.
	ClusterDomain string
	// Reserved are more exact names refused, e.g. the feed's own Service
	// name ("aerostat-feed", "aerostat-feed.aerostat").
	Reserved []string
	// AllowedSuffixes, when set, are the only domains aliases may be in.
	AllowedSuffixes []string
}

// AliasGuard builds the planner's AliasRules: fixed names (localhost, the
// cluster domain, "svc", the feed's Service) plus every service's names
// read from the whole ledger, so an alias never shadows a name of another
// service.
type AliasGuard struct {
	names   map[string]bool
	domains []string
	allowed []string
}

// NewAliasGuard validates o; an error names the field and value.
func NewAliasGuard(o AliasGuardOptions) (*AliasGuard, error) {
	if o.ClusterDomain == "" {
		o.ClusterDomain = DefaultClusterDomain
	}
	d := strings.Trim(strings.ToLower(o.ClusterDomain), ".")
	if err := ValidateHostname("cluster domain", d); err != nil {
		return nil, err
	}
	g := &AliasGuard{names: map[string]bool{}, domains: []string{d, "svc"}}
	for _, n := range fixedReserved() {
		g.names[n] = true
	}
	for _, n := range o.Reserved {
		n = strings.Trim(strings.ToLower(n), ".")
		if err := ValidateHostname("reserved name", n); err != nil {
			return nil, err
		}
		g.names[n] = true
	}
	for _, s := range o.AllowedSuffixes {
		s = strings.Trim(strings.ToLower(s), ".")
		if err := ValidateHostname("allowed alias suffix", s); err != nil {
			return nil, err
		}
		g.allowed = append(g.allowed, s)
	}
	return g, nil
}

// Rules are the alias rules for one service, given every record of every
// service and the service's own allowed suffixes (which may only narrow
// the guard's).
func (g *AliasGuard) Rules(all []Record, serviceSuffixes []string) AliasRules {
	r := AliasRules{
		Names:    make(map[string]bool, len(g.names)+len(all)),
		Services: map[string]Scheme{},
		Domains:  g.domains,
	}
	for n := range g.names {
		r.Names[n] = true
	}
	for _, rec := range all {
		r.Names[strings.ToLower(rec.Hostname)] = true
		if rec.Scheme != "" && r.Services[rec.Service] == "" {
			r.Services[rec.Service] = rec.Scheme
		}
	}
	r.AllowedSuffixes = narrow(g.allowed, serviceSuffixes)
	return r
}

// narrow intersects two suffix lists (empty means any name).
func narrow(global, service []string) []string {
	switch {
	case len(service) == 0:
		return global
	case len(global) == 0:
		return service
	}
	within := func(s string, in []string) bool {
		return slices.ContainsFunc(in, func(d string) bool { return s == d || strings.HasSuffix(s, "."+d) })
	}
	var out []string
	for _, s := range service {
		if within(s, global) {
			out = append(out, s)
		}
	}
	for _, s := range global {
		if within(s, service) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		// No name is in both: refuse every alias, saying why.
		return []string{fmt.Sprintf("(none: %s do not overlap %s)", strings.Join(service, ","), strings.Join(global, ","))}
	}
	return out
}
