package main

import (
	"github.com/spf13/pflag"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// aliasFlags are the names no alias of any service may take: the
// controller's rules, and register/promote's when they write the ledger
// directly (both builds, so the guard lives in internal/naming).
type aliasFlags struct {
	clusterDomain     string
	reserved, allowed []string
}

func (f *aliasFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.clusterDomain, "cluster-domain", naming.DefaultClusterDomain,
		"Kubernetes cluster domain: no alias may be it or a name under it (nor localhost, a name under svc, or a name of any service)")
	fl.StringSliceVar(&f.reserved, "alias-reserved-names", nil, "more names no alias may take, comma separated (e.g. the feed's Service name)")
	fl.StringSliceVar(&f.allowed, "alias-allowed-suffixes", nil,
		"when set, aliases must be in one of these domains, comma separated; a NamingService's spec.aliases.allowedSuffixes can only narrow it")
}

func (f *aliasFlags) guard() (*naming.AliasGuard, error) {
	return naming.NewAliasGuard(naming.AliasGuardOptions{ClusterDomain: f.clusterDomain, Reserved: f.reserved, AllowedSuffixes: f.allowed})
}
