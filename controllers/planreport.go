package controllers

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// PlanReport is what the next pass would write (`aerostat plan -o json`): flat lists, one entry a change,
// ready for jq.
type PlanReport struct {
	// Pending is the number of writes the next pass would make.
	Pending  int           `json:"pending"`
	Changes  []PlanChange  `json:"changes"`
	Deferred []PlanChange  `json:"deferred"`
	Held     []PlanHold    `json:"held"`
	Problems []PlanProblem `json:"problems"`
	// Unnamed are the live instances of a service (by tag, or by a 1.x
	// record that lost its hostname) that hold no name in the ledger yet:
	// e.g. 1.x registrars that lost the read-then-insert race and set
	// their OS hostname to a name another machine holds.
	Unnamed []PlanUnnamed `json:"unnamed"`
}

// PlanUnnamed is one live instance that holds no name.
type PlanUnnamed struct {
	Service  string `json:"service"`
	Instance string `json:"instance"`
	IP       string `json:"ip,omitempty"`
	// Next is the name the next pass binds to it; "" when it binds none
	// (names held back, or the pass could not plan).
	Next string `json:"next"`
}

// PlanChange is one write of the next pass.
type PlanChange struct {
	Service string `json:"service"`
	// Action: bind, release, move-master, move-alias, set-aliases,
	// set-ip, update (a bound name's ip and aliases rewritten).
	Action   string   `json:"action"`
	Name     string   `json:"name"`
	Instance string   `json:"instance,omitempty"`
	From     string   `json:"from,omitempty"` // the holder it replaces or releases
	IP       string   `json:"ip,omitempty"`
	Aliases  []string `json:"aliases,omitempty"`
	// Cause is the planner's typed cause (naming.Cause: "new instance",
	// "released", "master change-over", ...), for scripts; Reason is the
	// whole human text, with what freed or held the name.
	Cause        naming.Cause       `json:"cause"`
	MovedAliases []naming.AliasMove `json:"movedAliases,omitempty"`
	// Freed is why the previous holder lost the name (naming.Freed:
	// "gone", "stopped", "absent", "duplicate", "promoted", "change-over").
	Freed  naming.Freed `json:"freed,omitempty"`
	Reason string       `json:"reason"`
}

// PlanHold is one name kept from the instances waiting for one.
type PlanHold struct {
	Service  string    `json:"service"`
	Name     string    `json:"name"`
	Instance string    `json:"instance,omitempty"` // kept for
	Until    time.Time `json:"until"`
	// Cause is naming.HoldCause: "stopped" or "released".
	Cause  naming.HoldCause `json:"cause"`
	Reason string           `json:"reason"`
}

// PlanProblem is a planner finding that does not stop the plan.
type PlanProblem struct {
	Service string `json:"service"`
	Problem string `json:"problem"`
}

// NewPlanReport flattens a dry-run pass, services in name order; only,
// when not empty, keeps those services.
func NewPlanReport(sum Summary, only []string) PlanReport {
	rep := PlanReport{Changes: []PlanChange{}, Deferred: []PlanChange{}, Held: []PlanHold{}, Problems: []PlanProblem{}, Unnamed: []PlanUnnamed{}}
	for _, svc := range sum.Services {
		if len(only) > 0 && !slices.Contains(only, svc) {
			continue
		}
		p := sum.Passes[svc].Plan
		for _, c := range p.Changes {
			rep.Changes = append(rep.Changes, planChange(svc, c))
		}
		for _, c := range p.Deferred {
			pc := planChange(svc, c)
			pc.Action = "deferred-release"
			rep.Deferred = append(rep.Deferred, pc)
		}
		for _, h := range p.Held {
			rep.Held = append(rep.Held, PlanHold{Service: svc, Name: h.Hostname, Instance: h.InstanceID, Until: h.Until.UTC(), Cause: h.Cause, Reason: h.Reason})
		}
		for _, pr := range p.Problems {
			rep.Problems = append(rep.Problems, PlanProblem{Service: svc, Problem: pr})
		}
		rep.Unnamed = append(rep.Unnamed, unnamedOf(svc, sum.Passes[svc])...)
	}
	rep.Pending = len(rep.Changes)
	return rep
}

// unnamedOf lists the live observed instances of a dry-run pass that no
// record of the service names, with the name the pass would bind.
func unnamedOf(svc string, pass Pass) []PlanUnnamed {
	named := map[string]bool{}
	for _, r := range pass.Records {
		if !r.Free() {
			named[r.InstanceID] = true
		}
	}
	next := map[string]string{}
	for _, c := range pass.Plan.Changes {
		if c.Type == naming.Bind && c.InstanceID != "" && c.ExpectInstanceID != c.InstanceID {
			next[c.InstanceID] = c.Hostname
		}
	}
	var out []PlanUnnamed
	for _, in := range pass.Observed.Instances {
		if named[in.ID] || (in.State != naming.StateRunning && in.State != naming.StatePending) {
			continue
		}
		out = append(out, PlanUnnamed{Service: svc, Instance: in.ID, IP: in.PrivateIP, Next: next[in.ID]})
	}
	slices.SortFunc(out, func(a, b PlanUnnamed) int { return strings.Compare(a.Instance, b.Instance) })
	return out
}

// planChange labels one planned change with the action a reader knows it by.
func planChange(svc string, c naming.Change) PlanChange {
	pc := PlanChange{Service: svc, Name: c.Hostname, Instance: c.InstanceID, From: c.ExpectInstanceID, IP: c.IP, Aliases: c.Aliases,
		Cause: c.Cause, MovedAliases: c.MovedAliases, Freed: c.Freed, Reason: c.Reason}
	switch c.Type {
	case naming.Release:
		pc.Action, pc.IP, pc.Aliases = "release", "", nil
	case naming.Bind:
		switch {
		case c.ExpectInstanceID == c.InstanceID:
			pc.Action, pc.From = "update", ""
		case c.Role == naming.RoleMaster && c.ExpectInstanceID != "":
			pc.Action = "move-master"
		default:
			pc.Action = "bind"
		}
	case naming.SetIP:
		pc.Action, pc.Instance, pc.From = "set-ip", c.ExpectInstanceID, ""
	case naming.SetAliases:
		pc.Action, pc.Instance, pc.From = "set-aliases", c.ExpectInstanceID, ""
		if len(c.MovedAliases) > 0 {
			pc.Action = "move-alias"
		}
	default:
		pc.Action = strings.ToLower(string(c.Type))
	}
	return pc
}

// Summary is the closing line, e.g. "Plan: 3 changes (2 bind, 1
// release), 0 deferred, 1 held."
func (rep PlanReport) Summary() string {
	if rep.Pending == 0 && len(rep.Deferred) == 0 && len(rep.Held) == 0 {
		return "No changes: the ledger matches the fleet."
	}
	count := map[string]int{}
	var order []string
	for _, c := range rep.Changes {
		if count[c.Action] == 0 {
			order = append(order, c.Action)
		}
		count[c.Action]++
	}
	var parts []string
	for _, a := range order {
		parts = append(parts, fmt.Sprintf("%d %s", count[a], a))
	}
	s := fmt.Sprintf("Plan: %d change", rep.Pending)
	if rep.Pending != 1 {
		s += "s"
	}
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s + fmt.Sprintf(", %d deferred, %d held.", len(rep.Deferred), len(rep.Held))
}
