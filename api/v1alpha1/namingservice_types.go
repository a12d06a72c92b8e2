package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NamingServiceSpec is the naming policy for one service.
type NamingServiceSpec struct {
	// Service is the name prefix (web → web-0, web-1…; db → db-master,
	// db-slave-1…) and the ledger's service field. It cannot change: the
	// names already handed out belong to it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="service is immutable"
	Service string `json:"service"`

	// Scheme is how names are formed: Iterative (<service>-N, N from 0) or
	// Masterful (<service>-master, <service>-slave-N, N from 1).
	// +optional
	// +kubebuilder:default=Iterative
	// +kubebuilder:validation:Enum=Iterative;Masterful
	Scheme string `json:"scheme,omitempty"`

	// Selector picks the service's EC2 instances. Empty means instances
	// tagged aerostat:service=<service>.
	// +optional
	Selector InstanceSelector `json:"selector,omitempty"`

	// Aliases are extra names put next to a host's name in /etc/hosts.
	// +optional
	Aliases AliasPolicy `json:"aliases,omitempty"`

	// DesiredMaster is the instance id (i-…) or hostname that should hold
	// the master name of a Masterful service; the old master takes the
	// lowest free slave number. Empty keeps the current master.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	DesiredMaster string `json:"desiredMaster,omitempty"`

	// ReapPolicy bounds how names of vanished instances are released.
	// +optional
	// +kubebuilder:default={}
	ReapPolicy ReapPolicy `json:"reapPolicy,omitempty"`
}

// InstanceSelector is a set of EC2 DescribeInstances filters; an instance
// must match all of them.
type InstanceSelector struct {
	// Filters as in DescribeInstances Filter.N, e.g.
	// {name: "tag:aerostat:service", values: ["web"]}.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=50
	Filters []EC2Filter `json:"filters,omitempty"`
}

// EC2Filter is one DescribeInstances filter.
type EC2Filter struct {
	// Name of the filter, e.g. "tag:aerostat:service", "tag-key", "vpc-id".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	Name string `json:"name"`
	// Values, any of which matches.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=200
	Values []string `json:"values"`
}

// AliasPolicy says where a host's extra names come from.
type AliasPolicy struct {
	// ByHostname maps a name of this service (e.g. "db-master", "web-0")
	// to extra names for whichever instance holds it.
	// +optional
	ByHostname map[string][]string `json:"byHostname,omitempty"`
	// InstanceTag is an instance tag whose value lists extra names the
	// instance asks for, separated by spaces or commas (as the aliases in
	// 1.x /etc/aerostat_info). Empty means "aerostat:aliases".
	// +optional
	// +kubebuilder:validation:MaxLength=127
	InstanceTag string `json:"instanceTag,omitempty"`
	// AllowedSuffixes, when set, are the only domains this service's
	// aliases may be in: an alias must equal one or end in "."+suffix
	// (e.g. "db.corp.example"). It can only narrow the controller's
	// --alias-allowed-suffixes. Refused aliases are never written; they
	// show in the AliasesRefused condition and an Event.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MaxLength=253
	AllowedSuffixes []string `json:"allowedSuffixes,omitempty"`
}

// ReapPolicy bounds how names are released.
type ReapPolicy struct {
	// GracePeriod an instance must be absent from complete listings before
	// its name is released. Instances seen shutting-down or terminated are
	// released without waiting; stopped ones after StoppedGracePeriod.
	// +optional
	// +kubebuilder:default="5m"
	GracePeriod *metav1.Duration `json:"gracePeriod,omitempty"`
	// HoldBack is how long a released name is withheld from a different
	// instance, so that caches and open connections still pointing at the
	// old address drain before the name points somewhere else. The
	// instance that last held the name may take it back at any time. 0
	// hands names out again at once, as 1.x did.
	// +optional
	// +kubebuilder:default="3m"
	HoldBack *metav1.Duration `json:"holdBack,omitempty"`
	// StoppedGracePeriod is how long a stopped instance keeps its name:
	// it may start again with the same id. After it the name is released
	// (and then held back for HoldBack like any other).
	// +optional
	// +kubebuilder:default="1h"
	StoppedGracePeriod *metav1.Duration `json:"stoppedGracePeriod,omitempty"`
	// MaxReleasePercent caps the names released in one pass, as a percent
	// of the service's bound names (at least one is always allowed), and
	// within any ReleaseWindow, as a percent of the names bound when it
	// began (counted in the ledger, across passes, restarts and leader
	// changes). Above it the service is Degraded until the fleet recovers,
	// the window moves on or the cap is raised.
	// +optional
	// +kubebuilder:default=50
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MaxReleasePercent *int32 `json:"maxReleasePercent,omitempty"`
	// ReleaseWindow is the span over which MaxReleasePercent also holds:
	// a listing that looks complete but misses most of the fleet, pass
	// after pass, frees at most that share of the names per window. 0
	// leaves only the per-pass cap.
	// +optional
	// +kubebuilder:default="10m"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="must not be negative"
	ReleaseWindow *metav1.Duration `json:"releaseWindow,omitempty"`
}

// Member is one bound name.
type Member struct {
	Hostname   string `json:"hostname"`
	InstanceID string `json:"instanceID"`
	// +optional
	IP string `json:"ip,omitempty"`
	// Since is when the instance was given the name.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`
}

// HostsStatus summarises which ledger rev the live hosts' files hold,
// e.g. "2 of 3 hosts at rev 17".
type HostsStatus struct {
	// Rev is the ledger rev of this service's latest change.
	Rev int64 `json:"rev"`
	// Total is the number of live hosts (agents that asked the feed lately).
	Total int32 `json:"total"`
	// AtRev is the number of live hosts whose hosts file holds Rev or later.
	AtRev int32 `json:"atRev"`
	// Laggards are hosts behind Rev, longest out of date first (at most
	// 20; Total - AtRev is the full count).
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=20
	Laggards []HostLag `json:"laggards,omitempty"`
}

// HostLag is one host behind.
type HostLag struct {
	// Name of the node (the agent's --node-name).
	Name string `json:"name"`
	// Rev its hosts file holds; -1 when unknown (nothing written yet).
	Rev int64 `json:"rev"`
	// Behind is how many ledger revs it lacks.
	Behind int64 `json:"behind"`
	// StaleSince is when the feed first served a change it has not applied.
	// +optional
	StaleSince *metav1.Time `json:"staleSince,omitempty"`
}

// NamingServiceStatus is what the controller last saw and did.
type NamingServiceStatus struct {
	// Bound is the number of names held by an instance.
	// +optional
	Bound int32 `json:"bound"`
	// Gaps is the number of free names (released, refilled first).
	// +optional
	Gaps int32 `json:"gaps"`
	// Unnamed is the number of live instances without a name yet.
	// +optional
	Unnamed int32 `json:"unnamed"`
	// Master is the instance id holding the master name (Masterful only).
	// +optional
	Master string `json:"master,omitempty"`
	// Members are the bound names, by hostname (at most 1000 are listed;
	// Bound has the full count).
	// +optional
	// +listType=map
	// +listMapKey=hostname
	// +kubebuilder:validation:MaxItems=1000
	Members []Member `json:"members,omitempty"`
	// Rev is the ledger revision of the service's newest record after the
	// last successful pass (the service's own revision: other services'
	// writes do not move it).
	// +optional
	Rev int64 `json:"rev,omitempty"`
	// ObservedGeneration is the generation of the last fully applied spec.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// LastSyncTime is when a pass that observed EC2 completely last changed
	// this status. A pass that changes nothing a user sees writes nothing,
	// so this is not a heartbeat (aerostat_reconcile_duration_seconds
	// counts every pass).
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`
	// Hosts is how far the nodes' hosts files have come: a change is done
	// only when every live host holds it. Reported by the agents that
	// follow the controller's feed; absent without a feed.
	// +optional
	Hosts *HostsStatus `json:"hosts,omitempty"`
	// Conditions: Ready, Degraded, Throttled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=nsvc,categories=aerostat
// +kubebuilder:printcolumn:name="Service",type=string,JSONPath=`.spec.service`
// +kubebuilder:printcolumn:name="Scheme",type=string,JSONPath=`.spec.scheme`
// +kubebuilder:printcolumn:name="Bound",type=integer,JSONPath=`.status.bound`
// +kubebuilder:printcolumn:name="Gaps",type=integer,JSONPath=`.status.gaps`
// +kubebuilder:printcolumn:name="Master",type=string,JSONPath=`.status.master`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Hosts",type=integer,JSONPath=`.status.hosts.total`,priority=1
// +kubebuilder:printcolumn:name="At-Rev",type=integer,JSONPath=`.status.hosts.atRev`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name == self.spec.service",message="metadata.name must equal spec.service (one NamingService per service)"

// NamingService gives the EC2 instances of one service stable names. Its
// name is its spec.service: the API server refuses any other, so two
// NamingServices can never claim one service's names with two policies.
type NamingService struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec NamingServiceSpec `json:"spec"`
	// +optional
	Status NamingServiceStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// NamingServiceList contains a list of NamingService.
type NamingServiceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NamingService `json:"items"`
}

func init() {
	SchemeBuilder.Register(&NamingService{}, &NamingServiceList{})
}
