package naming

import "time"

// Input is everything Plan looks at for one service.
type Input struct {
	Policy   Policy
	Records  []Record // the service's records as read from the ledger
	Observed Observation
	// MissingSince maps an instance id bound in Records to the first time
	// it was absent from a complete listing. The caller keeps it between
	// passes (Result.MissingSince is the next value); losing it only
	// restarts the grace period, which is safe.
	MissingSince map[string]time.Time
	Now          time.Time
}

// Result is the plan for one service.
type Result struct {
	// Changes in the order they must be applied: releases before the binds
	// that reuse a name, so a crash between two writes can leave an instance
	// briefly unnamed but never one name bound twice.
	Changes []Change
	// Deferred holds releases held back by the reap cap; they are retried
	// next pass. Non-empty means the service is Degraded.
	Deferred []Change
	// MissingSince is the caller's next MissingSince.
	MissingSince map[string]time.Time
	// Problems are findings that do not stop the plan: duplicate records
	// from 1.x races, aliases refused because they equal another hostname.
	Problems []string
	// DesiredMasterID is the instance id Policy.DesiredMaster resolved to
	// ("" when unset or unresolved). A hostname names whoever holds it now,
	// and after a change-over that is another instance, so callers given a
	// hostname store this id in the policy instead.
	DesiredMasterID string
}

// HasChanges reports whether applying the plan would write anything.
func (r Result) HasChanges() bool { return len(r.Changes) > 0 }
