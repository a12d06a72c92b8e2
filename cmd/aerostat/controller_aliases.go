//go:build !agentonly

package main

import (
	"github.com/spf13/pflag"

	"github.com/aerostat-io/aerostat/controllers"
)

// aliasFlags are the names no alias of any service may take.
type aliasFlags struct {
	clusterDomain     string
	reserved, allowed []string
}

func (f *aliasFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.clusterDomain, "cluster-domain", controllers.DefaultClusterDomain,
		"Kubernetes cluster domain: no alias may be it or a name under it (nor localhost, a name under svc, or a name of any service)")
	fl.StringSliceVar(&f.reserved, "alias-reserved-names", nil, "more names no alias may take, comma separated (e.g. the feed's Service name)")
	fl.StringSliceVar(&f.allowed, "alias-allowed-suffixes", nil,
		"when set, aliases must be in one of these domains, comma separated; a NamingService's spec.aliases.allowedSuffixes can only narrow it")
}

func (f *aliasFlags) guard() (*controllers.AliasGuard, error) {
	return controllers.NewAliasGuard(controllers.AliasGuardOptions{ClusterDomain: f.clusterDomain, Reserved: f.reserved, AllowedSuffixes: f.allowed})
}
