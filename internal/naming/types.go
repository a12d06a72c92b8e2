// Package naming is Aerostat's pure planner: given the ledger's records for a
// service, the instances observed in the cloud and the service's policy, it
// computes the ordered changes that make the ledger true. It does no I/O and
// is deterministic, so Plan(apply(Plan(x))) yields no changes.
package naming

import "time"

// Scheme is how a service's names are formed.
type Scheme string

const (
	// Iterative names are <service>-N, N from 0.
	Iterative Scheme = "Iterative"
	// Masterful names are <service>-master, then <service>-slave-N, N from 1.
	Masterful Scheme = "Masterful"
)

// Role of a record in a masterful service. Iterative records have RoleNone.
type Role string

const (
	RoleNone   Role = ""
	RoleMaster Role = "master"
	RoleSlave  Role = "slave"
)

// InstanceState mirrors the EC2 instance state names.
type InstanceState string

const (
	StatePending      InstanceState = "pending"
	StateRunning      InstanceState = "running"
	StateStopping     InstanceState = "stopping"
	StateStopped      InstanceState = "stopped"
	StateShuttingDown InstanceState = "shutting-down"
	StateTerminated   InstanceState = "terminated"
)

// Record is one name in the ledger: the 1.x document plus the fields 1.x
// clients ignore. A record with an empty InstanceID is a gap (a free name
// that is refilled before a new number is taken).
type Record struct {
	Hostname   string
	Service    string
	Scheme     Scheme
	Role       Role
	Ordinal    int // N in <svc>-N or <svc>-slave-N; 0 for a master
	InstanceID string
	IP         string
	Aliases    []string
	Rev        int64     // ledger revision of the last write; 0 for untouched 1.x documents
	UpdatedAt  time.Time // time of the last write
	ClaimedAt  time.Time // when the current instance was bound; zero for a gap
	// ReleasedAt is when a gap was released and LastInstanceID who held it
	// then; zero and "" for a bound name and for gaps 1.x released. They
	// drive hold-back (ReapPolicy.HoldBack).
	ReleasedAt     time.Time
	LastInstanceID string
}

// Free reports whether the record is a gap.
func (r Record) Free() bool { return r.InstanceID == "" }

// Instance is one machine as the cloud reports it.
type Instance struct {
	ID         string
	PrivateIP  string
	State      InstanceState
	LaunchTime time.Time
	// Tags are read-only: instances of one listing may share one map
	// (cloud.EC2.List gives instances with identical tags the same map).
	Tags map[string]string
}

// Observation is what one listing of the cloud returned for a service.
// Complete is false when the listing failed, was throttled, stopped
// mid-pagination, or (for a node registering itself) only covers some
// instances: then an instance missing from Instances is unknown, not gone.
type Observation struct {
	Instances []Instance
	Complete  bool
}

// ReapPolicy bounds how names are released and handed out again.
type ReapPolicy struct {
	// GracePeriod an instance must be absent from complete listings before
	// its name is released. Instances seen shutting-down or terminated are
	// released without waiting; stopped ones after StoppedGracePeriod.
	GracePeriod time.Duration
	// HoldBack is how long a released name is withheld from any instance
	// but the one that last held it, so caches and connections that still
	// point at the old address drain first. Zero hands names out again at
	// once (1.x). The master name is never held back.
	HoldBack time.Duration
	// StoppedGracePeriod is how long a stopped instance keeps its name (it
	// may start again with the same id), counted in MissingSince from the
	// first pass that saw it stopped. Zero releases stopped instances at
	// once, like terminated ones (1.x).
	StoppedGracePeriod time.Duration
	// MaxReleaseFraction caps the releases in one pass, as a fraction of the
	// service's bound names (at least one release is always allowed).
	// Zero means the default, 0.5.
	MaxReleaseFraction float64
	// ReleaseWindow extends the reap cap over time: within any window of
	// this length, releases stop at max(1, ⌊MaxReleaseFraction × names
	// bound at the window's start⌋), however many passes run. The caller
	// counts the window from the ledger (Input.ReleaseBudget); zero
	// leaves only the per-pass cap.
	ReleaseWindow time.Duration
}

// Policy is a service's naming policy.
type Policy struct {
	Service string
	Scheme  Scheme
	// Aliases maps a hostname (e.g. "db-master", "web-0") to extra names
	// for whichever instance holds it.
	Aliases map[string][]string
	// InstanceAliases maps an instance id to extra names it asked for
	// (1.x /etc/aerostat_info aliases, or the aerostat:aliases tag).
	InstanceAliases map[string][]string
	// DesiredMaster is an instance id or hostname that should hold the
	// master name; empty keeps the current master.
	DesiredMaster string
	Reap          ReapPolicy
}

// ChangeType is what a change does to one record.
type ChangeType string

const (
	// Bind gives Hostname to InstanceID (creating the record if Rev is 0
	// and it does not exist yet).
	Bind ChangeType = "Bind"
	// Release turns Hostname into a gap.
	Release ChangeType = "Release"
	// SetAliases replaces the aliases of a record.
	SetAliases ChangeType = "SetAliases"
	// SetIP updates the IP of a bound record whose instance changed address.
	SetIP ChangeType = "SetIP"
)

// Change is one compare-and-set write on one record. Expect* hold the state
// the planner saw: the ledger applies the change only if the stored record
// still has them, and otherwise reports a conflict so the caller re-plans.
type Change struct {
	Type     ChangeType
	Hostname string
	Service  string
	Scheme   Scheme
	Role     Role
	Ordinal  int

	InstanceID string   // Bind: the new holder
	IP         string   // Bind, SetIP
	Aliases    []string // Bind, SetAliases: the full new list
	// ReleasedAt (Release of a bound name) is the planner's Now, stored as
	// the record's ReleasedAt so hold-back is measured on one clock; zero
	// lets the ledger use its own.
	ReleasedAt time.Time

	// ExpectInstanceID and ExpectRev are the record's state when planned.
	// ExpectExists false means the record must not exist yet (insert).
	ExpectExists     bool
	ExpectInstanceID string
	ExpectRev        int64

	// Cause is why the planner made the change; MovedAliases are the
	// aliases it takes from other records. Reason is rendered from them
	// (plus, for a release or a replaced holder, what freed the name).
	Cause        Cause
	MovedAliases []AliasMove
	// Freed is why the previous holder lost the name: on a release, and
	// on a bind that replaces a holder ("" otherwise).
	Freed Freed
	// Reason is a short human explanation ("new instance", "master
	// change-over", "instance terminated", "alias a moved from web-1", …).
	Reason string
}

// Cause is why the planner made a Change. Its value is the human text the
// Reason starts with.
type Cause string

const (
	CauseNewInstance        Cause = "new instance"
	CausePreviousHolderBack Cause = "previous holder back"
	CauseMasterRefilled     Cause = "master refilled"
	CauseMasterChangeOver   Cause = "master change-over"
	CauseOldMaster          Cause = "old master after change-over"
	// CauseReleased: the holder lost the name; Reason says why (instance
	// terminated, promoted, a 1.x duplicate...).
	CauseReleased Cause = "released"
	// CauseStaleGap: a gap that still carried an ip or aliases is cleared.
	CauseStaleGap       Cause = "gap still had an ip or aliases"
	CauseIPChanged      Cause = "ip changed"
	CauseAliasesChanged Cause = "aliases changed"
)

// Freed is why a name's holder lost it. Reason adds the details (how
// long stopped or absent, which name a duplicate keeps, who was promoted).
type Freed string

const (
	FreedGone       Freed = "gone"        // its instance seen terminated or shutting down
	FreedStopped    Freed = "stopped"     // stopped past the stopped grace period
	FreedAbsent     Freed = "absent"      // missing from complete listings past the grace period
	FreedDuplicate  Freed = "duplicate"   // its instance holds another name of the service
	FreedPromoted   Freed = "promoted"    // its instance was promoted to master
	FreedChangeOver Freed = "change-over" // the master, handed to the promoted instance
)

// AliasMove is an alias a change takes from another record (a newer claim
// wins, as in 1.x).
type AliasMove struct {
	Alias string `json:"alias"`
	From  string `json:"from"` // the hostname that held it
}

// String renders the move as in Change.Reason.
func (m AliasMove) String() string { return "alias " + m.Alias + " moved from " + m.From }
