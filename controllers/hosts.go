package controllers

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/aerostat-io/aerostat/api/v1alpha1"
	"github.com/aerostat-io/aerostat/internal/feed"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// maxLaggards bounds status.hosts.laggards; `aerostat get nodes` has all.
const maxLaggards = 20

// HostsReporter tells which ledger rev each live node's hosts file holds
// (the feed handler, from its agents' requests).
type HostsReporter interface {
	Convergence() feed.Convergence
}

// hostsStatus summarises the convergence of the nodes on the service's
// latest change: a node is at rev when its file holds a ledger rev at least
// that of the service's newest record.
func hostsStatus(c feed.Convergence, records []naming.Record) *v1alpha1.HostsStatus {
	rev := serviceRev(records)
	st := &v1alpha1.HostsStatus{Rev: rev, Total: int32(c.Total)}
	for _, n := range c.Nodes { // laggards first, longest stale first
		if n.Rev >= rev {
			st.AtRev++
			continue
		}
		if len(st.Laggards) < maxLaggards {
			lag := v1alpha1.HostLag{Name: n.Name, Rev: n.Rev, Behind: rev - max(n.Rev, 0)}
			if n.StaleSince != nil {
				t := metav1.NewTime(n.StaleSince.UTC().Truncate(1e9))
				lag.StaleSince = &t
			}
			st.Laggards = append(st.Laggards, lag)
		}
	}
	return st
}

// serviceRev is the ledger rev of a service's newest record: its own
// revision, which other services' writes leave alone.
func serviceRev(records []naming.Record) int64 {
	var rev int64
	for _, r := range records {
		rev = max(rev, r.Rev)
	}
	return rev
}
