package naming

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// DefaultMaxReleaseFraction is used when ReapPolicy.MaxReleaseFraction is 0.
const DefaultMaxReleaseFraction = 0.5

// Plan computes the changes that bring one service's records in line with
// the observed instances and the policy. It does no I/O; the same Input
// always gives the same Result, and applying Result.Changes then planning
// again gives no changes.
//
// Each name is one row. "live" is pending or running; "gone" is
// shutting-down, terminated, or stopped for at least StoppedGracePeriod;
// "absent" is missing from a Complete observation for at least GracePeriod
// (both tracked in MissingSince). "hold" is Reap.HoldBack; a name is "held"
// while it is a gap released less than hold ago, or is released this pass
// because its holder is gone or absent.
//
//	----------------------------------------------------------------------------------------------
//	record (holder)               | observation              | change
//	----------------------------------------------------------------------------------------------
//	i, same IP                    | i live                   | none
//	i, other IP                   | i live                   | SetIP
//	i                             | i stopping               | none (stopped rules apply once stopped)
//	i                             | i stopped < stopped grace| none; Held (kept for i), MissingSince[i]
//	i                             | i gone, hold > 0         | Release (stamps ReleasedAt, LastInstanceID
//	                              |                          | = i); Held until now + hold
//	i                             | i gone, hold = 0         | Release, or Bind to a waiting instance
//	                              |                          | in one write expecting i
//	i                             | i absent < grace         | none; MissingSince[i] kept
//	i                             | i absent ≥ grace         | as for gone
//	i                             | i not in partial listing | none (unknown is not gone)
//	i, over the reap cap          | i gone or absent ≥ grace | none; its Release is in Deferred
//	i, also holding another name  | any                      | keep master or lowest, free the rest
//	gap, last holder l            | l live and unnamed       | Bind l (before anyone else; any time)
//	gap released < hold ago       | unnamed live j ≠ l       | none for it: j takes the next free
//	                              |                          | unheld number; Held (reason, until)
//	gap ("" holder), not held     | unnamed live j waiting   | Bind j (smallest number first)
//	gap                           | nobody waiting           | none (Held if still held)
//	none for number N < next      | unnamed live j waiting   | Bind j, insert (ExpectExists false)
//	master m, DesiredMaster = t   | t live, holds slave s    | Release s, Bind master to t,
//	                              |                          | m (if live) takes the lowest free slave
//	master m, DesiredMaster = t   | m not in partial listing | none (change-over waits), Problem
//	master vacant                 | unnamed live j waiting   | Bind master to j before any slave gap
//	                              |                          | (its last holder first; never held)
//	master vacant                 | only bound slaves live   | none (no slave promoted unasked)
//	two records, one hostname     | any                      | use one (live holder, newest rev), Problem
//	other service or scheme       | any                      | ignored, Problem
//	----------------------------------------------------------------------------------------------
//
// The reap cap allows max(1, ⌊MaxReleaseFraction × bound names⌋) releases
// per pass, instances seen gone before absent ones; an incomplete
// observation releases only instances seen gone. Input.ReleaseBudget, when
// set, lowers that (the caller's budget over a time window); releases over
// it are deferred too and counted in Result.OverBudget.
//
// Hold-back: a held name goes to no instance but its last holder until
// the hold ends; the waiting instance takes the next free unheld number
// instead, and Result.Held says which names are held, for whom, why and
// until when. The Release of a reaped name is always written (never folded
// into a Bind) so the ledger stamps ReleasedAt. The master name is never
// held, and names freed this pass by a change-over or a double are not
// held in this pass (their instances are live). A gap's last holder takes
// it back whenever it is waiting, held or not, so an instance that was
// stopped or missing past its grace period returns to its own name.
//
// Unnamed live instances are served oldest LaunchTime first, instance id
// breaking ties. Masterful services fill a vacant master before any slave
// gap; if the master is vacant and no unnamed instance is waiting, no slave
// is promoted on its own (as in 1.x, the next new node becomes master), so a
// running slave is never renamed without DesiredMaster asking for it.
// DesiredMaster that names a dead or unknown instance is reported in
// Problems and ignored. A hostname in DesiredMaster names its holder at
// planning time; it is a one-shot request (after the change-over the
// hostname belongs to the old master), so callers persist
// Result.DesiredMasterID instead.
//
// Aliases: a record's aliases are Policy.Aliases[hostname] plus the
// holder's own aliases, which are Policy.InstanceAliases[id] when that key
// is present (an empty list clears them) and otherwise the aliases its
// current record already has (kept, so aliases registered by 1.x clients
// survive). An alias wanted by several records goes to the newest claim
// (latest instance LaunchTime; then the record already holding it; then the
// first hostname) and the move is in Change.MovedAliases (and its Reason). A holder missing
// from the listing keeps the aliases it has and claims no new ones. An
// alias that is a name of this service or equals any record's hostname is
// refused and reported in Problems.
//
// Write order and crash safety: each record gets at most one Change per
// plan (so ExpectRev is always the revision that was read), and changes are
// ordered Release, alias-removing updates, master Bind, other Binds,
// alias-adding updates. A name whose holder is gone is handed over by a
// single Bind that expects the old holder, never by Release+Bind. In a
// change-over the promoted slave's record is released before the master is
// bound to it; when the old master's new slave number is that very record,
// the master Bind comes first and the slave record is rebound in the next
// write, so between the two writes the promoted instance briefly holds two
// names but no name ever has two holders. A crash there is repaired by the
// next pass (an instance with two names keeps the master).
//
// Release clears IP and aliases (a gap has neither). Bind to the current
// holder rewrites IP and aliases when both changed.
//
// Invalid policy (service, scheme, aliases, reap policy) or an invalid IP on
// an instance to be written returns an error naming the field and value,
// and no changes.
func Plan(in Input) (Result, error) {
	p := in.Policy
	if err := validatePolicy(p); err != nil {
		return Result{}, err
	}
	pl := &planner{in: in, p: p, res: Result{MissingSince: map[string]time.Time{}}}
	pl.observe()
	pl.loadRecords()
	pl.resolveDoubles()
	pl.reap()
	pl.changeOver()
	pl.holds()
	if err := pl.assign(); err != nil {
		return Result{}, err
	}
	pl.aliases()
	if err := pl.emit(); err != nil {
		return Result{}, err
	}
	return pl.res, nil
}

func validatePolicy(p Policy) error {
	if err := ValidateLabel("policy.service", p.Service); err != nil {
		return err
	}
	if p.Scheme != Iterative && p.Scheme != Masterful {
		return fmt.Errorf("policy.scheme %q: must be Iterative or Masterful", p.Scheme)
	}
	// The longest name must still be a label.
	longest := Hostname(p.Service, p.Scheme, RoleSlave, 1<<31-1)
	if err := ValidateLabel("policy.service", longest); err != nil {
		return fmt.Errorf("policy.service %q: too long for its names (%s)", p.Service, longest)
	}
	if err := firstBad(p.Aliases, func(h string, as []string) error {
		if err := ValidateLabel("policy.aliases key", h); err != nil {
			return err
		}
		for _, a := range as {
			if err := ValidateHostname("policy.aliases["+h+"]", a); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := firstBad(p.InstanceAliases, func(id string, as []string) error {
		if id == "" {
			return fmt.Errorf("policy.instanceAliases key %q: must not be empty", id)
		}
		for _, a := range as {
			if err := ValidateHostname("policy.instanceAliases["+id+"]", a); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if p.DesiredMaster != "" && p.Scheme != Masterful {
		return fmt.Errorf("policy.desiredMaster %q: only a Masterful service has a master", p.DesiredMaster)
	}
	if f := p.Reap.MaxReleaseFraction; f < 0 || f > 1 || f != f {
		return fmt.Errorf("policy.reap.maxReleaseFraction %v: must be between 0 and 1", f)
	}
	if p.Reap.GracePeriod < 0 {
		return fmt.Errorf("policy.reap.gracePeriod %v: must not be negative", p.Reap.GracePeriod)
	}
	if p.Reap.HoldBack < 0 {
		return fmt.Errorf("policy.reap.holdBack %v: must not be negative", p.Reap.HoldBack)
	}
	if p.Reap.StoppedGracePeriod < 0 {
		return fmt.Errorf("policy.reap.stoppedGracePeriod %v: must not be negative", p.Reap.StoppedGracePeriod)
	}
	return nil
}

// noRecord stands in for the record of a name not yet in the ledger.
var noRecord Record

// firstBad checks every entry and returns the error of the smallest bad key,
// so the message does not depend on map order (and no sort of a large map).
func firstBad(m map[string][]string, check func(string, []string) error) error {
	var key string
	var first error
	for k, v := range m {
		if first != nil && k > key {
			continue
		}
		if err := check(k, v); err != nil {
			key, first = k, err
		}
	}
	return first
}

// slot is one name of the service, existing or about to be created.
type slot struct {
	host   string
	role   Role
	ord    int
	rec    *Record // as read; never written (noRecord for a new name)
	exists bool

	holder  string    // holder after reaping and change-over; "" when free
	in      *Instance // holder as observed; nil when not listed
	freed   Freed     // why the original holder lost it
	freedBy string    // the same, in words with its details
	hold    *Hold     // why the name is kept from others (see holds)
	cause   Cause     // why holder got it (set when holder changes)
	aliases []string
	moved   map[string]string // alias -> hostname it was taken from
}

func (s *slot) less(o *slot) int {
	if (s.role == RoleMaster) != (o.role == RoleMaster) {
		if s.role == RoleMaster {
			return -1
		}
		return 1
	}
	return cmp.Compare(s.ord, o.ord)
}

type planner struct {
	in  Input
	p   Policy
	res Result

	inst     map[string]*Instance
	unnamed  []*Instance // live instances without a name, in serving order
	slots    []*slot     // sorted: master, then by ordinal
	master   *slot
	byHolder map[string]*slot
	// otherHosts are hostnames of records Plan does not manage (other
	// services, names outside the scheme); aliases may not take them.
	otherHosts map[string]bool
	demoted    *Instance // old master waiting for a slave number
	// heldBefore is the record each instance held when read (the first in
	// slot order, matching resolveDoubles).
	heldBefore map[string]*slot
	promote    *Instance // change-over target
	deferred   []*slot   // releases held back by the reap cap
	anyAliases bool      // some record has aliases: alias work is needed
}

func (pl *planner) isLive(id string) bool {
	in := pl.inst[id]
	return in != nil && live(in.State)
}

func live(s InstanceState) bool { return s == StatePending || s == StateRunning }

func gone(s InstanceState) bool {
	return s == StateShuttingDown || s == StateTerminated || s == StateStopped
}

func (pl *planner) problem(format string, args ...any) {
	pl.res.Problems = append(pl.res.Problems, fmt.Sprintf(format, args...))
}

func (pl *planner) observe() {
	pl.inst = make(map[string]*Instance, len(pl.in.Observed.Instances))
	for i := range pl.in.Observed.Instances {
		in := &pl.in.Observed.Instances[i]
		if in.ID == "" {
			pl.problem("observed instance without an id ignored")
			continue
		}
		if prev, dup := pl.inst[in.ID]; dup {
			// Keep the livelier sighting so a stale duplicate never reaps;
			// the rest only makes the choice independent of input order.
			pl.problem("instance %s listed twice", in.ID)
			if c := cmp.Compare(sightingRank(in), sightingRank(prev)); c < 0 ||
				c == 0 && (in.PrivateIP < prev.PrivateIP || in.PrivateIP == prev.PrivateIP && in.LaunchTime.Before(prev.LaunchTime)) {
				pl.inst[in.ID] = in
			}
			continue
		}
		pl.inst[in.ID] = in
	}
}

func sightingRank(in *Instance) int {
	switch {
	case live(in.State):
		return 0
	case gone(in.State):
		return 2
	}
	return 1
}

func (pl *planner) loadRecords() {
	foreign := 0
	pl.otherHosts = map[string]bool{}
	backing := make([]slot, 0, len(pl.in.Records))
	for ri := range pl.in.Records {
		r := &pl.in.Records[ri]
		if r.Service != pl.p.Service {
			foreign++
			pl.otherHosts[r.Hostname] = true
			continue
		}
		role, ord, ok := ParseHostname(pl.p.Service, pl.p.Scheme, r.Hostname)
		if !ok {
			if !pl.otherHosts[r.Hostname] {
				pl.problem("record %q is not a %s name of service %s; ignored", r.Hostname, pl.p.Scheme, pl.p.Service)
				pl.otherHosts[r.Hostname] = true
			}
			continue
		}
		backing = append(backing, slot{host: r.Hostname, role: role, ord: ord, rec: r, exists: true})
		if len(r.Aliases) > 0 {
			pl.anyAliases = true
		}
	}
	if foreign > 0 {
		pl.problem("ignored %d records of other services", foreign)
	}
	all := make([]*slot, len(backing))
	for i := range backing {
		all[i] = &backing[i]
	}
	// Sorting puts records of one hostname next to each other (a parsed
	// name is one role and ordinal), so duplicates need no map.
	slices.SortFunc(all, (*slot).less)
	pl.slots = all[:0]
	for i := 0; i < len(all); {
		j := i + 1
		for j < len(all) && all[j].less(all[i]) == 0 {
			j++
		}
		s := all[i]
		if j-i > 1 {
			recs := make([]*Record, 0, j-i)
			for _, d := range all[i:j] {
				recs = append(recs, d.rec)
			}
			slices.SortFunc(recs, pl.preferRecord)
			ids := make([]string, len(recs))
			for k, r := range recs {
				ids[k] = fmt.Sprintf("%q", r.InstanceID)
			}
			pl.problem("%d records for hostname %s (instances %s); using the one bound to %q",
				len(recs), s.host, strings.Join(ids, ", "), recs[0].InstanceID)
			s.rec = recs[0]
		}
		s.holder = s.rec.InstanceID
		pl.slots = append(pl.slots, s)
		i = j
	}
	if len(pl.slots) > 0 && pl.slots[0].role == RoleMaster {
		pl.master = pl.slots[0]
	}
}

// preferRecord orders duplicates of one hostname: live holder, then any
// holder, then the newest write, then instance id.
func (pl *planner) preferRecord(a, b *Record) int {
	rank := func(r *Record) int {
		if r.InstanceID == "" {
			return 2
		}
		if in := pl.inst[r.InstanceID]; in != nil && live(in.State) {
			return 0
		}
		return 1
	}
	if c := cmp.Compare(rank(a), rank(b)); c != 0 {
		return c
	}
	if c := cmp.Compare(b.Rev, a.Rev); c != 0 {
		return c
	}
	if c := b.UpdatedAt.Compare(a.UpdatedAt); c != 0 {
		return c
	}
	if c := cmp.Compare(a.InstanceID, b.InstanceID); c != 0 {
		return c
	}
	if c := cmp.Compare(a.IP, b.IP); c != 0 {
		return c
	}
	return slices.Compare(a.Aliases, b.Aliases)
}

// resolveDoubles frees every name but the first (master, then lowest) of an
// instance holding several.
func (pl *planner) resolveDoubles() {
	pl.byHolder = make(map[string]*slot, len(pl.slots)+len(pl.inst)/4)
	for _, s := range pl.slots {
		if s.holder == "" {
			continue
		}
		if first, dup := pl.byHolder[s.holder]; dup {
			pl.problem("instance %s holds %s and %s; keeping %s", s.holder, first.host, s.host, first.host)
			s.holder, s.freed, s.freedBy = "", FreedDuplicate, fmt.Sprintf("%s also holds %s", s.rec.InstanceID, first.host)
			continue
		}
		pl.byHolder[s.holder] = s
	}
}

type reapCandidate struct {
	s     *slot
	freed Freed
	why   string
}

// reap frees the names of instances seen gone, absent past the grace
// period or stopped past the stopped grace period, within the reap cap and
// the release budget.
func (pl *planner) reap() {
	cands, bound := pl.reapCandidates()
	pl.release(cands, bound)
}

// reapCandidates decides for each bound name whether its holder lost it,
// holds it for now, or keeps it; it returns the names to release, those
// of instances seen gone first (their state is certain), and how many
// names are bound.
func (pl *planner) reapCandidates() (cands []reapCandidate, bound int) {
	for _, s := range pl.slots {
		if s.holder == "" {
			continue
		}
		bound++
		id := s.holder
		in := pl.inst[id]
		s.in = in
		switch {
		case in != nil && in.State == StateStopped && pl.p.Reap.StoppedGracePeriod > 0:
			since := pl.missingSince(id)
			until := since.Add(pl.p.Reap.StoppedGracePeriod)
			if !pl.in.Now.Before(until) {
				cands = append(cands, reapCandidate{s: s, freed: FreedStopped, why: "instance " + id + " stopped for " + pl.in.Now.Sub(since).String()})
				continue
			}
			s.hold = &Hold{Hostname: s.host, InstanceID: id, Until: until, Cause: HoldStopped,
				Reason: "instance " + id + " stopped since " + since.UTC().Format(time.RFC3339) + "; keeps its name until the stopped grace period ends"}
		case in != nil && gone(in.State):
			cands = append(cands, reapCandidate{s: s, freed: FreedGone})
		case in != nil:
			// live or stopping: keep
		case pl.in.Observed.Complete:
			if pl.in.Now.Sub(pl.missingSince(id)) >= pl.p.Reap.GracePeriod {
				cands = append(cands, reapCandidate{s: s, freed: FreedAbsent})
			}
		default:
			// Unknown (a partial observation): keep, and keep its clock.
			if since, ok := pl.in.MissingSince[id]; ok {
				pl.res.MissingSince[id] = since
			}
		}
	}
	slices.SortStableFunc(cands, func(a, b reapCandidate) int {
		if aa, ba := a.freed == FreedAbsent, b.freed == FreedAbsent; aa != ba {
			if ba {
				return -1
			}
			return 1
		}
		return 0
	})
	return cands, bound
}

// missingSince is when instance id was first seen missing (or stopped),
// now if this pass is the first; it carries the time to the next pass.
func (pl *planner) missingSince(id string) time.Time {
	since, ok := pl.in.MissingSince[id]
	if !ok || since.After(pl.in.Now) {
		since = pl.in.Now
	}
	pl.res.MissingSince[id] = since
	return since
}

// release frees the candidates' names in order up to the reap cap
// (MaxReleaseFraction of the bound names, at least one) and the release
// budget; the rest are deferred, those within the cap counted as refused
// by the budget.
func (pl *planner) release(cands []reapCandidate, bound int) {
	frac := pl.p.Reap.MaxReleaseFraction
	if frac == 0 {
		frac = DefaultMaxReleaseFraction
	}
	limit := max(1, int(float64(bound)*frac))
	capLimit := limit
	if b := pl.in.ReleaseBudget; b != nil && *b < limit {
		limit = max(0, *b)
	}
	for i, c := range cands {
		why := c.why
		switch {
		case why != "":
		case c.freed == FreedAbsent:
			why = "instance " + c.s.holder + " absent for " + pl.in.Now.Sub(pl.res.MissingSince[c.s.holder]).String()
		default:
			why = "instance " + c.s.holder + " " + string(pl.inst[c.s.holder].State)
		}
		if i >= limit {
			c.s.freed, c.s.freedBy = c.freed, why+"; deferred by reap cap"
			if i < capLimit {
				c.s.freedBy = why + "; refused by the release budget"
				pl.res.OverBudget++
			}
			pl.deferred = append(pl.deferred, c.s)
			continue
		}
		delete(pl.byHolder, c.s.holder)
		c.s.holder, c.s.freed, c.s.freedBy = "", c.freed, why
		pl.res.Reaped++
	}
}

// holds marks the free names kept from new holders by HoldBack: those
// released by an earlier pass less than HoldBack ago, and those freed by
// this one from an instance that is not live (their Release stamps
// ReleasedAt now, so the next pass agrees). Names freed this pass from a
// live instance (change-over, doubles) are not held: it keeps or takes
// another name, and the change-over hands the promoted slave's name to the
// old master at once as in 1.x.
// The master name is never held: a masterful service needs its master more
// than stale caches need draining.
func (pl *planner) holds() {
	hb := pl.p.Reap.HoldBack
	if hb <= 0 {
		return
	}
	for _, s := range pl.slots {
		if s.role == RoleMaster || s.holder != "" {
			continue
		}
		switch {
		case s.rec.InstanceID != "" && !pl.isLive(s.rec.InstanceID):
			s.hold = &Hold{Hostname: s.host, InstanceID: s.rec.InstanceID, Until: pl.in.Now.Add(hb), Cause: HoldReleased,
				Reason: "released now (" + s.freedBy + "); held back from other instances"}
		case s.exists && s.rec.InstanceID == "" && !s.rec.ReleasedAt.IsZero():
			until := s.rec.ReleasedAt.Add(hb)
			if !until.After(pl.in.Now) {
				continue
			}
			from := ""
			if s.rec.LastInstanceID != "" {
				from = " from " + s.rec.LastInstanceID
			}
			s.hold = &Hold{Hostname: s.host, InstanceID: s.rec.LastInstanceID, Until: until, Cause: HoldReleased,
				Reason: "released" + from + " at " + s.rec.ReleasedAt.UTC().Format(time.RFC3339) + "; held back from other instances"}
		}
	}
}

// lastHolder is the instance a free name was last bound to, which may take
// it back at any time.
func lastHolder(s *slot) string {
	if s.rec.InstanceID != "" {
		return s.rec.InstanceID
	}
	return s.rec.LastInstanceID
}

func (pl *planner) changeOver() {
	dm := pl.p.DesiredMaster
	if dm == "" {
		return
	}
	var target *Instance
	byName := false
	for _, s := range pl.slots {
		if s.host == dm {
			byName = true
			if s.holder != "" {
				target = pl.inst[s.holder]
			}
			break
		}
	}
	if target == nil {
		target = pl.inst[dm]
	}
	if target == nil || !live(target.State) {
		pl.problem("desired master %q is not a live instance or a bound name; ignored", dm)
		return
	}
	pl.res.DesiredMasterID = target.ID
	if pl.master != nil && pl.master.holder == target.ID {
		return
	}
	if pl.master != nil && pl.master.holder != "" && pl.inst[pl.master.holder] == nil && !pl.in.Observed.Complete {
		// The old master may be alive and would lose its name unseen.
		pl.problem("change-over to %s waits: master %s is not in this partial listing", target.ID, pl.master.holder)
		return
	}
	if byName {
		pl.problem("desired master %q is a hostname; it resolved to %s, store that id: after the change-over the name belongs to the old master", dm, target.ID)
	}
	pl.promote = target
	if ts := pl.byHolder[target.ID]; ts != nil {
		delete(pl.byHolder, target.ID)
		ts.holder, ts.freed, ts.freedBy = "", FreedPromoted, target.ID+" promoted to master"
	}
	if pl.master != nil && pl.master.holder != "" {
		old := pl.master.holder
		delete(pl.byHolder, old)
		pl.master.holder, pl.master.freed, pl.master.freedBy = "", FreedChangeOver, "master change-over to "+target.ID
		if in := pl.inst[old]; in != nil && live(in.State) {
			pl.demoted = in
		}
	}
}

func (pl *planner) assign() error {
	for i := range pl.in.Observed.Instances {
		in := &pl.in.Observed.Instances[i]
		if pl.inst[in.ID] == in && live(in.State) && pl.byHolder[in.ID] == nil && in != pl.promote && in != pl.demoted {
			pl.unnamed = append(pl.unnamed, in)
		}
	}
	slices.SortFunc(pl.unnamed, func(a, b *Instance) int {
		if c := a.LaunchTime.Compare(b.LaunchTime); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	queue := pl.unnamed
	if pl.p.Scheme == Masterful {
		var who *Instance
		reason := CauseMasterChangeOver
		if pl.promote != nil {
			who = pl.promote
		} else if (pl.master == nil || pl.master.holder == "") && len(queue) > 0 {
			k := 0
			if pl.master != nil {
				if last := lastHolder(pl.master); last != "" {
					k = max(0, slices.IndexFunc(queue, func(in *Instance) bool { return in.ID == last }))
				}
			}
			who, reason = queue[k], CauseNewInstance
			queue = slices.Delete(slices.Clone(queue), k, k+1)
			switch {
			case pl.master != nil && lastHolder(pl.master) == who.ID:
				reason = CausePreviousHolderBack
			case pl.master != nil && pl.master.rec.InstanceID != "":
				reason = CauseMasterRefilled
			}
		}
		if who != nil {
			if pl.master == nil {
				pl.master = &slot{host: Hostname(pl.p.Service, Masterful, RoleMaster, 0), role: RoleMaster, rec: &noRecord}
				pl.slots = slices.Insert(pl.slots, 0, pl.master)
			}
			if err := pl.bind(pl.master, who, reason); err != nil {
				return err
			}
		}
		if pl.demoted != nil {
			queue = append([]*Instance{pl.demoted}, queue...)
		}
	}
	queue, err := pl.reclaim(queue)
	if err != nil || len(queue) == 0 {
		return err
	}
	return pl.walk(queue)
}

// reclaim gives free names back to their last holders when those are
// waiting, before anyone else is served; it returns the rest of the queue.
func (pl *planner) reclaim(queue []*Instance) ([]*Instance, error) {
	var last map[string]*slot
	for _, s := range pl.slots {
		if s.holder == "" && s.role != RoleMaster {
			if id := lastHolder(s); id != "" {
				if last == nil {
					last = map[string]*slot{}
				}
				last[id] = s
			}
		}
	}
	if last == nil {
		return queue, nil
	}
	rest := queue[:0:0]
	for _, in := range queue {
		s := last[in.ID]
		if s == nil || s.holder != "" {
			rest = append(rest, in)
			continue
		}
		if err := pl.bind(s, in, "previous holder back"); err != nil {
			return nil, err
		}
	}
	return rest, nil
}

// walk hands out free, unheld records and numbers with no record at all in
// ascending order, walking the numbers upwards once.
func (pl *planner) walk(queue []*Instance) error {
	start, role := 0, RoleNone
	if pl.p.Scheme == Masterful {
		start, role = 1, RoleSlave
	}
	// merged is pl.slots with the new records in place, kept in order
	// without a second sort.
	merged := make([]*slot, 0, len(pl.slots)+len(queue))
	existing := pl.slots
	if pl.master != nil {
		merged = append(merged, pl.master)
		existing = existing[1:]
	}
	i := 0
	for k := start; len(queue) > 0; k++ {
		for i < len(existing) && existing[i].ord < k {
			merged = append(merged, existing[i])
			i++
		}
		var s *slot
		if i < len(existing) && existing[i].ord == k {
			s = existing[i]
			merged = append(merged, s)
			i++
			if s.holder != "" || s.hold != nil {
				continue
			}
		} else {
			h := Hostname(pl.p.Service, pl.p.Scheme, role, k)
			s = &slot{host: h, role: role, ord: k, rec: &noRecord}
			merged = append(merged, s)
		}
		who := queue[0]
		queue = queue[1:]
		reason := CauseNewInstance
		if who == pl.demoted {
			reason = CauseOldMaster
		}
		if err := pl.bind(s, who, reason); err != nil {
			return err
		}
	}
	pl.slots = append(merged, existing[i:]...)
	return nil
}

func (pl *planner) bind(s *slot, in *Instance, cause Cause) error {
	if in.PrivateIP != "" {
		if err := ValidateIP("instances["+in.ID+"].privateIP", in.PrivateIP); err != nil {
			return err
		}
	}
	s.holder, s.cause, s.in = in.ID, cause, in
	pl.byHolder[in.ID] = s
	return nil
}

// ownAliases are the aliases that follow an instance from name to name.
func (pl *planner) ownAliases(id string) []string {
	if a, ok := pl.p.InstanceAliases[id]; ok {
		return a
	}
	s := pl.heldBefore[id]
	if s == nil {
		return nil
	}
	perHost := pl.p.Aliases[s.host]
	var own []string
	for _, a := range s.rec.Aliases {
		if !slices.Contains(perHost, a) {
			own = append(own, a)
		}
	}
	return own
}

// aliases decides every record's alias list:
//
//	alias is a hostname or a name of this service -> refused (Problems)
//	several records want it                       -> the newest claim (aliasClaim.newer)
//	the winner is not where it sits now           -> recorded as a move
func (pl *planner) aliases() {
	if !pl.anyAliases && len(pl.p.Aliases) == 0 && len(pl.p.InstanceAliases) == 0 {
		return
	}
	pl.heldBefore = make(map[string]*slot, len(pl.slots))
	for _, s := range pl.slots {
		if s.exists && s.rec.InstanceID != "" && pl.heldBefore[s.rec.InstanceID] == nil {
			pl.heldBefore[s.rec.InstanceID] = s
		}
	}
	pl.assignAliases(pl.aliasClaims())
}

// aliasClaim is one record's claim on an alias.
type aliasClaim struct {
	s       *slot
	frozen  bool // holder not in this listing: keeps what it has
	launch  time.Time
	current bool // the record holds it now
}

// newer reports whether a is a newer claim than b: a frozen holder keeps
// what it has; then the latest launch; then the current holder; then the
// first hostname.
func (a aliasClaim) newer(b aliasClaim) bool {
	if a.frozen != b.frozen {
		return a.frozen
	}
	if c := a.launch.Compare(b.launch); c != 0 {
		return c > 0
	}
	if a.current != b.current {
		return a.current
	}
	return a.s.less(b.s) < 0
}

// aliasRefused says why an alias may not be used ("" when it may): it is a
// hostname, or Input.AliasRules forbid it.
func (pl *planner) aliasRefused(names map[string]bool, a string) string {
	if _, _, own := ParseHostname(pl.p.Service, pl.p.Scheme, a); own || names[a] || pl.otherHosts[a] {
		return "it is a host name"
	}
	return pl.in.AliasRules.Check(a)
}

// aliasClaims returns the winning claim for every alias some holder wants.
func (pl *planner) aliasClaims() map[string]aliasClaim {
	names := make(map[string]bool, len(pl.slots)+len(pl.otherHosts))
	for _, s := range pl.slots {
		names[s.host] = true
	}
	best := make(map[string]aliasClaim, len(pl.p.InstanceAliases)+len(pl.p.Aliases))
	reported := map[string]bool{}
	for _, s := range pl.slots {
		if s.holder == "" {
			continue
		}
		want := slices.Concat(pl.p.Aliases[s.host], pl.ownAliases(s.holder))
		slices.Sort(want)
		want = slices.Compact(want)
		// A holder missing from the listing has no known launch time; it
		// keeps its aliases and claims no new ones, so a partial listing
		// never moves aliases back and forth.
		in := s.in
		var launch time.Time
		if in != nil {
			launch = in.LaunchTime
		}
		for _, a := range want {
			if why := pl.aliasRefused(names, a); why != "" {
				if !reported[a] {
					reported[a] = true
					r := AliasRefusal{Alias: a, Hostname: s.host, Reason: why}
					pl.res.RefusedAliases = append(pl.res.RefusedAliases, r)
					pl.problem("%s", r)
				}
				continue
			}
			current := s.exists && s.rec.InstanceID == s.holder && slices.Contains(s.rec.Aliases, a)
			if in == nil && !current {
				continue
			}
			c := aliasClaim{s: s, frozen: in == nil, launch: launch, current: current}
			if b, ok := best[a]; !ok || c.newer(b) {
				best[a] = c
			}
		}
	}
	return best
}

// assignAliases gives each alias to its winning record and notes where it
// moved from.
func (pl *planner) assignAliases(best map[string]aliasClaim) {
	// Where each alias sits now, for the move report.
	now := map[string]string{}
	for _, s := range pl.slots {
		for _, a := range s.rec.Aliases {
			if _, ok := now[a]; !ok || s.rec.InstanceID != "" {
				now[a] = s.host
			}
		}
	}
	var gainers []*slot
	for a, c := range best {
		s := c.s
		if s.aliases == nil {
			gainers = append(gainers, s)
		}
		s.aliases = append(s.aliases, a)
		if from, ok := now[a]; ok && from != s.host {
			if s.moved == nil {
				s.moved = map[string]string{}
			}
			s.moved[a] = from
		}
	}
	for _, s := range gainers {
		slices.Sort(s.aliases)
	}
}

func (pl *planner) change(s *slot, t ChangeType) Change {
	return Change{
		Type: t, Hostname: s.host, Service: pl.p.Service, Scheme: pl.p.Scheme,
		Role: s.role, Ordinal: s.ord,
		ExpectExists: s.exists, ExpectInstanceID: s.rec.InstanceID, ExpectRev: s.rec.Rev,
	}
}

// The phases a pass's writes are ordered in: names are freed before they
// are reused, a master before its slaves, and an alias is dropped from its
// old record before another record adds it.
const (
	phaseRelease    = iota // releases and cleared gaps
	phaseUpdate            // ip changes and alias removals on kept names
	phaseMaster            // the master name changes holder
	phaseBind              // other names change holder or are created
	phaseAddAliases        // kept names that gain an alias
	phaseCount
)

func (pl *planner) emit() error {
	// Slots are visited in order, so each phase's bucket is in slot order.
	var phases [phaseCount][]Change
	for _, s := range pl.slots {
		c, phase, ok, err := pl.slotChange(s)
		if err != nil {
			return err
		}
		if ok {
			c.Freed = freed(c, s)
			c.Reason = reason(c, s)
			phases[phase] = append(phases[phase], c)
		}
	}
	pl.res.Changes = slices.Concat(phases[:]...)
	for _, s := range pl.slots {
		if h := s.hold; h != nil && (s.holder == "" || s.holder == h.InstanceID && s.holder == s.rec.InstanceID) {
			pl.res.Held = append(pl.res.Held, *h)
		}
	}
	for _, s := range pl.deferred {
		// A change-over may have taken the name after all.
		if s.holder == s.rec.InstanceID {
			c := pl.change(s, Release)
			c.Cause = CauseReleased
			c.Freed = freed(c, s)
			c.Reason = reason(c, s)
			pl.res.Deferred = append(pl.res.Deferred, c)
		}
	}
	slices.Sort(pl.res.Problems)
	return nil
}

// slotChange is the write one slot needs, and its phase:
//
//	holder lost, none new               -> Release (CauseReleased)
//	new holder, or a name not yet stored -> Bind (the slot's cause)
//	free, still has an ip or aliases    -> Release (CauseStaleGap)
//	same holder                         -> keptChange
func (pl *planner) slotChange(s *slot) (c Change, phase int, ok bool, err error) {
	old := s.rec
	switch {
	case s.holder != old.InstanceID && s.holder == "":
		c = pl.change(s, Release)
		c.Cause, c.ReleasedAt = CauseReleased, pl.in.Now
		return c, phaseRelease, true, nil
	case s.holder != old.InstanceID || !s.exists:
		c = pl.change(s, Bind)
		c.InstanceID, c.IP, c.Aliases = s.holder, s.in.PrivateIP, s.aliases
		c.Cause, c.MovedAliases = s.cause, moves(s)
		if s.role == RoleMaster {
			return c, phaseMaster, true, nil
		}
		return c, phaseBind, true, nil
	case s.holder == "":
		if old.IP == "" && len(old.Aliases) == 0 {
			return c, 0, false, nil
		}
		c = pl.change(s, Release)
		c.Cause = CauseStaleGap
		return c, phaseRelease, true, nil
	}
	return pl.keptChange(s)
}

// keptChange is the write for a name that keeps its holder:
//
//	ip and aliases changed -> Bind with both (CauseIPChanged)
//	ip changed             -> SetIP (CauseIPChanged)
//	aliases changed        -> SetAliases (CauseAliasesChanged)
//	nothing                -> no write
//
// It is phaseAddAliases when an alias is added (after other records
// dropped it), phaseUpdate otherwise.
func (pl *planner) keptChange(s *slot) (c Change, phase int, ok bool, err error) {
	old := s.rec
	ip := old.IP
	if in := s.in; in != nil && live(in.State) && in.PrivateIP != "" && in.PrivateIP != old.IP {
		if err := ValidateIP("instances["+in.ID+"].privateIP", in.PrivateIP); err != nil {
			return c, 0, false, err
		}
		ip = in.PrivateIP
	}
	cur := slices.Clone(old.Aliases)
	slices.Sort(cur)
	cur = slices.Compact(cur)
	aliasChanged := !slices.Equal(cur, s.aliases)
	phase = phaseUpdate
	for _, a := range s.aliases {
		if _, found := slices.BinarySearch(cur, a); !found {
			phase = phaseAddAliases
		}
	}
	switch {
	case ip != old.IP && aliasChanged:
		c = pl.change(s, Bind)
		c.InstanceID, c.IP, c.Aliases = s.holder, ip, s.aliases
		c.Cause, c.MovedAliases = CauseIPChanged, moves(s)
	case ip != old.IP:
		c = pl.change(s, SetIP)
		c.IP, c.Cause = ip, CauseIPChanged
	case aliasChanged:
		c = pl.change(s, SetAliases)
		c.Aliases, c.Cause, c.MovedAliases = s.aliases, CauseAliasesChanged, moves(s)
	default:
		return c, 0, false, nil
	}
	return c, phase, true, nil
}

// moves lists the aliases the slot takes from other records, by alias.
func moves(s *slot) []AliasMove {
	var out []AliasMove
	for _, a := range slices.Sorted(maps.Keys(s.moved)) {
		out = append(out, AliasMove{Alias: a, From: s.moved[a]})
	}
	return out
}

// freed is why the change's name left its holder: for a release, and a
// bind that replaces the holder.
func freed(c Change, s *slot) Freed {
	if c.Cause == CauseReleased || c.Type == Bind && s.rec.InstanceID != "" && s.rec.InstanceID != c.InstanceID {
		return s.freed
	}
	return ""
}

// reason renders a change's Reason from its cause, the slot's history and
// its alias moves.
func reason(c Change, s *slot) string {
	var r string
	switch c.Cause {
	case CauseReleased:
		r = s.freedBy
	case CauseIPChanged:
		r = "ip changed from " + cmp.Or(s.rec.IP, `""`)
		if c.Type == Bind {
			r = "ip changed from " + s.rec.IP + " and aliases changed"
		}
	default:
		r = string(c.Cause)
		if c.Type == Bind && s.rec.InstanceID != "" && s.rec.InstanceID != c.InstanceID {
			r += "; replaces " + s.rec.InstanceID + " (" + s.freedBy + ")"
		}
	}
	if len(c.MovedAliases) > 0 {
		parts := make([]string, len(c.MovedAliases))
		for i, m := range c.MovedAliases {
			parts[i] = m.String()
		}
		r += "; " + strings.Join(parts, ", ")
	}
	return r
}
