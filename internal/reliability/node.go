package reliability

import (
	"context"
	"time"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// RegisterPlan plans a node's own registration (desiredMaster empty) or
// promotion (desiredMaster = id) the way `aerostat register` and `aerostat
// promote` do (cmd/aerostat claimInput, which cannot be imported from
// package main): a partial observation holding the node and the instances
// already bound in the service, so nothing is reaped.
func RegisterPlan(service string, scheme naming.Scheme, id, ip, desiredMaster string, now time.Time) func([]naming.Record) (naming.Result, error) {
	return func(recs []naming.Record) (naming.Result, error) {
		in := naming.Input{
			Policy: naming.Policy{Service: service, Scheme: scheme, InstanceAliases: map[string][]string{id: {}},
				DesiredMaster: desiredMaster},
			Records: recs,
			Now:     now,
		}
		in.Observed.Instances = append(in.Observed.Instances, naming.Instance{ID: id, PrivateIP: ip, State: naming.StateRunning, LaunchTime: now})
		seen := map[string]bool{id: true}
		for _, r := range recs {
			if r.Free() || seen[r.InstanceID] || r.Service != service {
				continue
			}
			seen[r.InstanceID] = true
			in.Observed.Instances = append(in.Observed.Instances, naming.Instance{ID: r.InstanceID, PrivateIP: r.IP, State: naming.StateRunning, LaunchTime: r.ClaimedAt})
		}
		return naming.Plan(in)
	}
}

// Register claims a name for id through ledger.Claim and reads back the
// name it holds, as the register command prints it.
func Register(ctx context.Context, store ledger.Store, service string, scheme naming.Scheme, id, ip, desiredMaster string, now time.Time) (string, error) {
	// As the register command does: a 1.x client writing without
	// compare-and-set may take the name between the claim and the
	// read-back, and claiming again gets the next free one.
	for range 3 {
		if _, err := ledger.Claim(ctx, store, service, RegisterPlan(service, scheme, id, ip, desiredMaster, now)); err != nil {
			return "", err
		}
		recs, err := store.Records(ctx, service)
		if err != nil {
			return "", err
		}
		if name := Holding(recs, id); name != "" {
			return name, nil
		}
	}
	return "", nil
}

// Holding is the name id holds (the master first, then the lowest
// ordinal), "" for none.
func Holding(recs []naming.Record, id string) string {
	var best *naming.Record
	for i, r := range recs {
		if r.InstanceID != id {
			continue
		}
		if best == nil || before(r, *best) {
			best = &recs[i]
		}
	}
	if best == nil {
		return ""
	}
	return best.Hostname
}

func before(a, b naming.Record) bool {
	if am, bm := a.Role == naming.RoleMaster, b.Role == naming.RoleMaster; am != bm {
		return am
	}
	return a.Ordinal < b.Ordinal
}
