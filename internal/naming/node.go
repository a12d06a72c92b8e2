package naming

import (
	"slices"
	"time"
)

// NodeClaim is a node claiming a name for itself (`aerostat register` and
// `aerostat promote`), without the controller's view of EC2.
type NodeClaim struct {
	Info       Info
	InstanceID string
	IP         string
	// DesiredMaster is InstanceID for a promote, else empty.
	DesiredMaster string
	// HoldBack keeps names released recently from this node (the
	// service's policy, read from the ledger).
	HoldBack time.Duration
}

// Input builds the planner input for the claim against the service's
// records. The observation is partial (Complete false): it holds this
// instance and, taken from the ledger, the instances bound in the service,
// so nothing is reaped and a change-over can move the old master (1.x
// trusted the ledger the same way). This instance is the newest, so it
// wins alias conflicts, as a 1.x registration took an alias away from any
// other record. Its own former name it may always take back, hold-back or
// not.
func (c NodeClaim) Input(records []Record, now time.Time) Input {
	aliases := slices.Clone(c.Info.Aliases)
	if aliases == nil {
		aliases = []string{}
	}
	in := Input{
		Policy: Policy{
			Service:         c.Info.Service,
			Scheme:          c.Info.Scheme,
			InstanceAliases: map[string][]string{c.InstanceID: aliases},
			DesiredMaster:   c.DesiredMaster,
			Reap:            ReapPolicy{HoldBack: c.HoldBack},
		},
		Records: records,
		Now:     now,
	}
	in.Observed.Instances = append(in.Observed.Instances, Instance{ID: c.InstanceID, PrivateIP: c.IP, State: StateRunning, LaunchTime: now})
	seen := map[string]bool{c.InstanceID: true}
	for _, r := range records {
		if r.Free() || seen[r.InstanceID] || r.Service != c.Info.Service {
			continue
		}
		seen[r.InstanceID] = true
		in.Observed.Instances = append(in.Observed.Instances, Instance{ID: r.InstanceID, PrivateIP: r.IP, State: StateRunning, LaunchTime: r.ClaimedAt})
	}
	return in
}

// HeldBy returns the name instanceID holds in records: its master name if
// it has one, else its lowest ordinal (a 1.x writer can leave an instance
// holding two).
func HeldBy(records []Record, instanceID string) (string, bool) {
	var best *Record
	for i := range records {
		r := &records[i]
		if r.InstanceID != instanceID || instanceID == "" {
			continue
		}
		if best == nil || heldFirst(*r, *best) {
			best = r
		}
	}
	if best == nil {
		return "", false
	}
	return best.Hostname, true
}

// heldFirst orders an instance's names: master first, then by ordinal.
func heldFirst(a, b Record) bool {
	if (a.Role == RoleMaster) != (b.Role == RoleMaster) {
		return a.Role == RoleMaster
	}
	return a.Ordinal < b.Ordinal
}
