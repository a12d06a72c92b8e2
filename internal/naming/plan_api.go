package naming

import "time"

// Input is everything Plan looks at for one service.
type Input struct {
	Policy   Policy
	Records  []Record // the service's records as read from the ledger
	Observed Observation
	// MissingSince maps an instance id bound in Records to the first time
	// it was absent from a complete listing or seen stopped. The caller
	// keeps it between passes (Result.MissingSince is the next value);
	// losing it only restarts the grace periods, which is safe.
	MissingSince map[string]time.Time
	Now          time.Time
	// AliasRules are names outside this service that aliases may not take
	// (other services' names, localhost, cluster domains); zero refuses
	// only this service's own names and the hostnames in Records.
	AliasRules AliasRules
	// ReleaseBudget, when not nil, is how many names the reap may release
	// this pass (the caller's budget over a time window, which a wrong
	// listing cannot exhaust by repeating itself pass after pass); it only
	// ever lowers the per-pass reap cap. Zero defers every reap.
	ReleaseBudget *int
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
	// OverBudget is how many of Deferred the reap cap allowed but
	// Input.ReleaseBudget refused.
	OverBudget int
	// Reaped is how many names the reap released this pass (each has a
	// Release in Changes): what the caller charges to its release budget.
	Reaped int
	// MissingSince is the caller's next MissingSince.
	MissingSince map[string]time.Time
	// Problems are findings that do not stop the plan: duplicate records
	// from 1.x races, aliases refused because they equal another hostname.
	Problems []string
	// RefusedAliases are the aliases not written because AliasRules, or
	// a hostname of this service, forbid them (each is also in Problems).
	RefusedAliases []AliasRefusal
	// DesiredMasterID is the instance id Policy.DesiredMaster resolved to
	// ("" when unset or unresolved). A hostname names whoever holds it now,
	// and after a change-over that is another instance, so callers given a
	// hostname store this id in the policy instead.
	DesiredMasterID string
	// Held lists the names not handed out, or not released, because of
	// ReapPolicy.HoldBack or StoppedGracePeriod, in name order. It is an
	// explanation, not work: nothing in it needs writing now.
	Held []Hold
}

// Hold explains why one name is kept from the instances waiting for one.
type Hold struct {
	Hostname string
	// InstanceID is the instance the name is kept for: the stopped holder,
	// or the last holder of a released name (which may take it back).
	InstanceID string
	// Until is when the hold ends and the next pass may change the name.
	Until  time.Time
	Cause  HoldCause
	Reason string
}

// HoldCause is why a name is held.
type HoldCause string

const (
	// HoldStopped: its holder is stopped, within the stopped grace period.
	HoldStopped HoldCause = "stopped"
	// HoldReleased: released less than HoldBack ago, kept from other
	// instances while caches drain (its last holder may take it back).
	HoldReleased HoldCause = "released"
)

// NextHoldEnd is the earliest Held[].Until (zero when nothing is held): a
// caller that wants the name handed out promptly plans again then.
func (r Result) NextHoldEnd() time.Time {
	var t time.Time
	for _, h := range r.Held {
		if t.IsZero() || h.Until.Before(t) {
			t = h.Until
		}
	}
	return t
}

// HasChanges reports whether applying the plan would write anything.
func (r Result) HasChanges() bool { return len(r.Changes) > 0 }
