package naming

import (
	"fmt"
	"slices"
	"strings"
)

// AliasRules are the names outside the planned service that no alias may
// take. The planner knows only the service it plans, so the caller, who
// can read every service, passes them in: an alias that shadows another
// service's name, localhost or a cluster name would redirect that name on
// every node (and, through the hosts ConfigMap, in every pod).
type AliasRules struct {
	// Names are exact names refused: every hostname in the ledger, of
	// every service, and fixed names such as localhost or the feed's own
	// Service name.
	Names map[string]bool
	// Services are the known services and their schemes: any name of
	// their scheme is refused, held yet or not (db-slave-9 before it
	// exists).
	Services map[string]Scheme
	// Domains are refused together with every name under them
	// (cluster.local refuses a.svc.cluster.local).
	Domains []string
	// AllowedSuffixes, when not empty, are the only domains aliases may be
	// in: an alias must equal one of them or end in "."+suffix.
	AllowedSuffixes []string
}

// AliasRefusal is one alias the planner would not write.
type AliasRefusal struct {
	Alias    string
	Hostname string // the record that asked for it
	Reason   string
}

func (r AliasRefusal) String() string {
	return fmt.Sprintf("alias %q refused for %s: %s", r.Alias, r.Hostname, r.Reason)
}

// Check returns why alias may not be used, or "" when it may. Names are
// compared case-insensitively, as resolvers do.
func (r AliasRules) Check(alias string) string {
	a := strings.TrimSuffix(strings.ToLower(alias), ".")
	if r.Names[a] {
		return "it is a reserved or existing host name"
	}
	for svc, scheme := range r.Services {
		if _, _, ok := ParseHostname(svc, scheme, a); ok {
			return "it is a name of service " + svc
		}
	}
	for _, d := range r.Domains {
		if under(a, d) {
			return "it is in the reserved domain " + strings.Trim(strings.ToLower(d), ".")
		}
	}
	if len(r.AllowedSuffixes) > 0 && !slices.ContainsFunc(r.AllowedSuffixes, func(s string) bool { return under(a, s) }) {
		return "it is outside the allowed suffixes " + strings.Join(r.AllowedSuffixes, ", ")
	}
	return ""
}

// under reports whether name equals domain or lies below it.
func under(name, domain string) bool {
	d := strings.Trim(strings.ToLower(domain), ".")
	return d != "" && (name == d || strings.HasSuffix(name, "."+d))
}
