// Package adopt takes over a running fleet without renaming it: it imports
// a 1.x ledger in place (the same aerostat.servers collection: it adds the
// 2.x fields and removes the duplicate hostnames 1.x races left), and it
// records as bound the names instances already carry in their EC2 tags
// (aerostat:hostname, then Name) when they follow the service's scheme.
// Run reports what it would do; with Apply it does it, every write a
// compare-and-set on what was read.
package adopt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"k8s.io/utils/clock"

	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
	"github.com/aerostat-io/aerostat/internal/nodeclaim"
)

// Tags adopt reads. TagService and TagServiceType are the controller's;
// TagHostname is the name tag write-back sets, preferred over Name.
const (
	TagService     = "aerostat:service"
	TagServiceType = "aerostat:service-type"
	TagHostname    = "aerostat:hostname"
	TagName        = "Name"
)

// Ledger is what adopt needs of the store: the ledger plus raw access to
// its documents.
//
// Error contract: read methods fail only when the store could not be read
// completely; Backfill, Remove and Apply return an error wrapping
// ledger.ErrConflict when a document changed since it was read.
type Ledger interface {
	ledger.Store
	ledger.PolicyStore
	Documents(ctx context.Context) ([]ledger.Document, []string, error)
	Backfill(ctx context.Context, d ledger.Document) error
	Remove(ctx context.Context, d ledger.Document) error
	EnsureUniqueHostname(ctx context.Context) error
}

// Options configure Run.
type Options struct {
	Ledger Ledger
	// Cloud lists instances: to keep the live one of duplicate records and
	// to read name tags. Nil skips both (duplicates are then resolved by
	// age alone, and no tags are read).
	Cloud cloud.Cloud
	// Services give the scheme of services whose instances carry a name
	// tag but no aerostat:service tag (e.g. {"web": Iterative}).
	Services map[string]naming.Scheme
	// Apply writes; otherwise Run only reports.
	Apply bool
	// Clock dates hold-backs; default the real clock.
	Clock clock.PassiveClock
}

// Report is what Run found and did (or would do).
type Report struct {
	Applied   bool `json:"applied"`
	Documents int  `json:"documents"`
	// Backfills are documents given the 2.x fields (and a fresh rev).
	Backfills []Backfill `json:"backfills"`
	// Duplicates are hostnames held by several documents.
	Duplicates []Duplicate `json:"duplicates"`
	// Binds are names recorded from instance tags.
	Binds []Bind `json:"binds"`
	// AlreadyBound counts tagged instances the ledger already names so.
	AlreadyBound int `json:"alreadyBound"`
	// Conflicts are tags or writes not taken, with the reason.
	Conflicts []Conflict `json:"conflicts"`
	// Problems are documents that could not be read, listings that failed.
	Problems []string `json:"problems"`
	// Policies are the hold-backs applied, one per service adopt read or
	// bound names of: the policy the controller stored in the ledger, else
	// the default every writer applies.
	Policies []Policy `json:"policies"`
}

// Policy is the hold-back in force for one service and where it comes
// from.
type Policy struct {
	Service  string        `json:"service"`
	HoldBack time.Duration `json:"holdBack"`
	Source   string        `json:"source"`
}

// Backfill is one document given its missing fields.
type Backfill struct {
	Hostname string `json:"hostname"`
	Instance string `json:"instance,omitempty"`
	ID       string `json:"id"`
	// Missing are the 2.x fields it lacks.
	Missing []string `json:"missing"`
	// Onex are the 1.x fields it lacks or holds with a type 1.x clients
	// cannot read (their updater dies on a missing ip or aliases).
	Onex []string `json:"onex,omitempty"`
}

// Duplicate is one hostname of several documents: one kept, the rest
// removed. A removed document's instance, if live, is unnamed afterwards
// and gets the next free name from the controller.
type Duplicate struct {
	Hostname string   `json:"hostname"`
	Kept     DupDoc   `json:"kept"`
	Removed  []DupDoc `json:"removed"`
}

// DupDoc is one document of a duplicated hostname.
type DupDoc struct {
	ID       string `json:"id"`
	Instance string `json:"instance"`
	State    string `json:"state"` // as listed; "unknown" when not listed
	Why      string `json:"why,omitempty"`
}

// Bind is one name recorded from a tag.
type Bind struct {
	Service  string `json:"service"`
	Hostname string `json:"hostname"`
	Instance string `json:"instance"`
	IP       string `json:"ip,omitempty"`
	Tag      string `json:"tag"` // which tag carried it
}

// Conflict is a name not taken.
type Conflict struct {
	Hostname string `json:"hostname"`
	Instance string `json:"instance,omitempty"`
	Reason   string `json:"reason"`
}

// Pending reports whether applying would write anything.
func (r Report) Pending() bool {
	return len(r.Backfills) > 0 || len(r.Duplicates) > 0 || len(r.Binds) > 0
}

// Run adopts the ledger and fleet of o; see the package comment. In a dry
// run nothing is written. With o.Apply, duplicates are removed first, then
// documents backfilled, the unique hostname index built, and names bound
// from tags; a lost compare-and-set (a 1.x client or the controller wrote
// meanwhile) is reported in Conflicts and the rest goes on, so a second run
// finishes the work. The error is a store or listing failure.
func Run(ctx context.Context, o Options) (Report, error) {
	rep := Report{Applied: o.Apply, Backfills: []Backfill{}, Duplicates: []Duplicate{}, Binds: []Bind{}, Conflicts: []Conflict{}, Problems: []string{}, Policies: []Policy{}}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	docs, problems, err := o.Ledger.Documents(ctx)
	if err != nil {
		return rep, err
	}
	rep.Documents = len(docs)
	rep.Problems = append(rep.Problems, problems...)

	inst, err := listInstances(ctx, o.Cloud, docs)
	if err != nil {
		return rep, err
	}
	keep, removed := dedupe(docs, inst, &rep)
	for _, d := range keep {
		if needsBackfill(d, removed) {
			rep.Backfills = append(rep.Backfills, Backfill{Hostname: d.Record.Hostname, Instance: d.Record.InstanceID, ID: d.ID, Missing: d.Missing, Onex: d.Onex})
		}
	}
	if o.Apply {
		applyImport(ctx, o.Ledger, docs, keep, removed, &rep)
	}

	records := make([]naming.Record, 0, len(keep))
	for _, d := range keep {
		records = append(records, d.Record)
	}
	if o.Apply && o.Cloud != nil {
		// Binds expect the revs the import just wrote.
		if records, err = o.Ledger.Records(ctx, ""); err != nil {
			return rep, err
		}
	}
	holds, err := policies(ctx, o.Ledger, records, inst.tagged, &rep)
	if err != nil {
		return rep, err
	}
	changes := fromTags(records, inst.tagged, o.Services, holdBack{by: holds, now: o.Clock.Now()}, &rep)
	if o.Apply {
		for i, c := range changes {
			if _, err := o.Ledger.Apply(ctx, []naming.Change{c}); err != nil {
				if !errors.Is(err, ledger.ErrConflict) {
					return rep, err
				}
				rep.Conflicts = append(rep.Conflicts, Conflict{Hostname: c.Hostname, Instance: c.InstanceID, Reason: "changed while adopting; run adopt again"})
				rep.Binds[i].Tag += " (not written: conflict)"
			}
		}
	}
	return rep, nil
}

// fleet is what the listings returned.
type fleet struct {
	byID   map[string]naming.Instance
	tagged []naming.Instance // instances with a name tag
}

func listInstances(ctx context.Context, c cloud.Cloud, docs []ledger.Document) (fleet, error) {
	f := fleet{byID: map[string]naming.Instance{}}
	if c == nil {
		return f, nil
	}
	tagged, err := c.List(ctx, cloud.Filter{Name: "tag-key", Values: []string{TagHostname, TagName}})
	if err != nil {
		return f, fmt.Errorf("listing instances with a name tag: %w", err)
	}
	f.tagged = tagged
	for _, in := range tagged {
		f.byID[in.ID] = in
	}
	var ids []string
	for _, d := range docs {
		if id := d.Record.InstanceID; id != "" {
			if _, ok := f.byID[id]; !ok {
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	for chunk := range slices.Chunk(ids, 200) {
		more, err := c.List(ctx, cloud.Filter{Name: "instance-id", Values: chunk})
		if err != nil {
			return f, fmt.Errorf("listing %d recorded instances by id: %w", len(chunk), err)
		}
		for _, in := range more {
			f.byID[in.ID] = in
		}
	}
	return f, nil
}

func live(s naming.InstanceState) bool {
	return s == naming.StateRunning || s == naming.StatePending
}

// rank orders the documents of one hostname, best first: a live instance,
// then a stopped or stopping one, then any holder, then a gap; among
// equals the most recent write (rev, updated_at, _id time, then _id).
func rank(inst fleet) func(a, b ledger.Document) int {
	class := func(d ledger.Document) int {
		if d.Record.InstanceID == "" {
			return 3
		}
		in, ok := inst.byID[d.Record.InstanceID]
		switch {
		case ok && live(in.State):
			return 0
		case ok && (in.State == naming.StateStopped || in.State == naming.StateStopping):
			return 1
		}
		return 2
	}
	return func(a, b ledger.Document) int {
		if c := cmp.Compare(class(a), class(b)); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Record.Rev, a.Record.Rev); c != 0 {
			return c
		}
		if c := b.Record.UpdatedAt.Compare(a.Record.UpdatedAt); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Created, a.Created); c != 0 {
			return c
		}
		// ObjectIDs of one second still grow with their counter.
		return strings.Compare(b.ID, a.ID)
	}
}

func stateOf(inst fleet, id string) string {
	if id == "" {
		return "gap"
	}
	if in, ok := inst.byID[id]; ok {
		return string(in.State)
	}
	return "unknown"
}

// dedupe keeps one document per hostname and reports the rest.
func dedupe(docs []ledger.Document, inst fleet, rep *Report) (keep []ledger.Document, removed map[string]bool) {
	removed = map[string]bool{}
	by := map[string][]ledger.Document{}
	var order []string
	for _, d := range docs {
		h := d.Record.Hostname
		if by[h] == nil {
			order = append(order, h)
		}
		by[h] = append(by[h], d)
	}
	slices.Sort(order)
	for _, h := range order {
		group := by[h]
		if len(group) == 1 {
			keep = append(keep, group[0])
			continue
		}
		slices.SortFunc(group, rank(inst))
		kept := group[0]
		dup := Duplicate{Hostname: h, Kept: DupDoc{ID: kept.ID, Instance: kept.Record.InstanceID, State: stateOf(inst, kept.Record.InstanceID)}}
		for _, d := range group[1:] {
			dd := DupDoc{ID: d.ID, Instance: d.Record.InstanceID, State: stateOf(inst, d.Record.InstanceID)}
			if in, ok := inst.byID[d.Record.InstanceID]; ok && live(in.State) {
				dd.Why = "live: unnamed after this, the controller gives it the next free name"
			}
			dup.Removed = append(dup.Removed, dd)
		}
		rep.Duplicates = append(rep.Duplicates, dup)
		removed[h] = true
		keep = append(keep, kept)
	}
	return keep, removed
}

// applyImport removes the losing duplicates, backfills, then builds the
// unique index. Conflicts are reported and skipped.
func applyImport(ctx context.Context, l Ledger, docs, keep []ledger.Document, removed map[string]bool, rep *Report) {
	kept := map[string]bool{}
	for _, d := range keep {
		kept[d.ID] = true
	}
	conflict := func(d ledger.Document, err error) {
		rep.Conflicts = append(rep.Conflicts, Conflict{Hostname: d.Record.Hostname, Instance: d.Record.InstanceID, Reason: err.Error()})
	}
	for _, d := range docs {
		if removed[d.Record.Hostname] && !kept[d.ID] {
			if err := l.Remove(ctx, d); err != nil {
				conflict(d, err)
			}
		}
	}
	for _, d := range keep {
		if needsBackfill(d, removed) {
			if err := l.Backfill(ctx, d); err != nil {
				conflict(d, err)
			}
		}
	}
	if err := l.EnsureUniqueHostname(ctx); err != nil {
		rep.Problems = append(rep.Problems, err.Error())
	}
}

// tagCandidate is a name an instance carries in a tag, read against the
// services Aerostat names.
type tagCandidate struct {
	in            naming.Instance
	service, host string
	tag           string // key=value, for the report
	scheme        naming.Scheme
	role          naming.Role
	ord           int
}

// fromTags turns the names instances carry in tags into Binds, where the
// ledger does not already say otherwise.
func fromTags(records []naming.Record, tagged []naming.Instance, services map[string]naming.Scheme, hb holdBack, rep *Report) []naming.Change {
	byHost := map[string]naming.Record{}
	named := map[string]string{}
	for _, r := range records {
		byHost[r.Hostname] = r
		if r.InstanceID != "" {
			named[r.InstanceID] = r.Hostname
		}
	}
	var cands []tagCandidate
	for _, in := range tagged {
		if c, ok := readTags(in, named, services, rep); ok {
			cands = append(cands, c)
		}
	}
	// One instance a name: live first, then the most recent launch.
	slices.SortFunc(cands, func(a, b tagCandidate) int {
		if c := strings.Compare(a.host, b.host); c != 0 {
			return c
		}
		if la, lb := live(a.in.State), live(b.in.State); la != lb {
			if la {
				return -1
			}
			return 1
		}
		if c := b.in.LaunchTime.Compare(a.in.LaunchTime); c != 0 {
			return c
		}
		return strings.Compare(a.in.ID, b.in.ID)
	})
	var changes []naming.Change
	taken := map[string]string{} // name -> instance bound from its tag in this run
	for _, c := range cands {
		if named[c.in.ID] == c.host {
			rep.AlreadyBound++
			continue
		}
		r, exists := byHost[c.host]
		if why := tagRefusal(c, r, exists, named, taken, hb); why != "" {
			rep.Conflicts = append(rep.Conflicts, Conflict{Hostname: c.host, Instance: c.in.ID, Reason: why})
			continue
		}
		ip := c.in.PrivateIP
		if !live(c.in.State) {
			ip = "" // stopped: no address to serve until it starts
		}
		changes = append(changes, naming.Change{
			Type: naming.Bind, Hostname: c.host, Service: c.service, Scheme: c.scheme, Role: c.role, Ordinal: c.ord,
			InstanceID: c.in.ID, IP: ip, Reason: "adopted from tag " + c.tag,
			ExpectExists: exists, ExpectInstanceID: r.InstanceID, ExpectRev: r.Rev,
		})
		rep.Binds = append(rep.Binds, Bind{Service: c.service, Hostname: c.host, Instance: c.in.ID, IP: ip, Tag: c.tag})
		named[c.in.ID], taken[c.host] = c.host, c.in.ID
	}
	return changes
}

// readTags reads the name a live or stopped instance carries
// (aerostat:hostname, else Name) as a name of its aerostat:service, or,
// untagged, of the first service whose names it parses as. A name that
// is not one of its tagged service's is reported (unless the ledger names
// the instance already); one of no service is skipped.
func readTags(in naming.Instance, named map[string]string, services map[string]naming.Scheme, rep *Report) (tagCandidate, bool) {
	if in.State != naming.StateRunning && in.State != naming.StatePending &&
		in.State != naming.StateStopped && in.State != naming.StateStopping {
		return tagCandidate{}, false
	}
	tag, host := TagHostname, in.Tags[TagHostname]
	if host == "" {
		tag, host = TagName, in.Tags[TagName]
	}
	host = strings.ToLower(strings.TrimSpace(host))
	if host == "" {
		return tagCandidate{}, false
	}
	c := tagCandidate{in: in, host: host, tag: tag + "=" + in.Tags[tag]}
	svc := in.Tags[TagService]
	if svc == "" {
		for _, name := range slices.Sorted(maps.Keys(services)) {
			if role, ord, ok := naming.ParseHostname(name, services[name], host); ok {
				c.service, c.scheme, c.role, c.ord = name, services[name], role, ord
				return c, true
			}
		}
		return tagCandidate{}, false // a Name of something Aerostat does not name
	}
	c.service, c.scheme = svc, naming.Iterative
	if st := in.Tags[TagServiceType]; st != "" {
		s, err := naming.ParseScheme(st)
		if err != nil {
			rep.Conflicts = append(rep.Conflicts, Conflict{Hostname: host, Instance: in.ID, Reason: fmt.Sprintf("tag %s %q: %v", TagServiceType, st, err)})
			return tagCandidate{}, false
		}
		c.scheme = s
	}
	role, ord, ok := naming.ParseHostname(svc, c.scheme, host)
	if !ok {
		if named[in.ID] == "" {
			rep.Conflicts = append(rep.Conflicts, Conflict{Hostname: host, Instance: in.ID, Reason: fmt.Sprintf("not a %s name of service %s; left to the controller", c.scheme, svc)})
		}
		return tagCandidate{}, false
	}
	c.role, c.ord = role, ord
	return c, true
}

// tagRefusal says why a tag's name is not bound to its instance, "" when
// it is: the ledger wins over tags (r is the ledger's record of the name,
// when it exists), the first tag of a name in this run keeps it, and a
// name released from another instance waits out its hold-back.
func tagRefusal(c tagCandidate, r naming.Record, exists bool, named, taken map[string]string, hb holdBack) string {
	switch {
	case named[c.in.ID] != "":
		return "the ledger names it " + named[c.in.ID] + "; the ledger wins"
	case exists && r.InstanceID != "":
		return "the ledger gives " + c.host + " to " + r.InstanceID + "; the ledger wins"
	case taken[c.host] != "":
		return "tag also on " + taken[c.host] + ", which keeps it"
	case exists && r.Service != c.service:
		return "the ledger has " + c.host + " as a name of service " + r.Service
	case exists:
		return hb.held(r, c.role, c.in.ID)
	}
	return ""
}

func needsBackfill(d ledger.Document, removed map[string]bool) bool {
	return len(d.Missing) > 0 || len(d.Onex) > 0 || removed[d.Record.Hostname]
}

// policies reads the stored hold-back of every service adopt reads records
// or tags of, and lists them in the report.
func policies(ctx context.Context, l ledger.PolicyStore, records []naming.Record, tagged []naming.Instance, rep *Report) (map[string]Policy, error) {
	names := map[string]bool{}
	for _, r := range records {
		if r.Service != "" {
			names[r.Service] = true
		}
	}
	for _, in := range tagged {
		if s := in.Tags[TagService]; naming.ValidateLabel(TagService, s) == nil {
			names[s] = true
		}
	}
	out := map[string]Policy{}
	for _, svc := range slices.Sorted(maps.Keys(names)) {
		d, from, err := nodeclaim.HoldBack(ctx, l, svc, ledger.DefaultHoldBack) // as register and the controller
		if err != nil {
			return nil, err
		}
		pol := Policy{Service: svc, HoldBack: d, Source: from}
		out[svc] = pol
		rep.Policies = append(rep.Policies, pol)
	}
	return out, nil
}

// holdBack is the shared policy as adopt applies it to names from tags: a
// name released less than its service's hold-back ago is not bound to
// another instance than the one that held it, as the planner holds it
// (the master name is never held).
type holdBack struct {
	by  map[string]Policy
	now time.Time
}

// held says why r may not go to instance now, or "".
func (h holdBack) held(r naming.Record, role naming.Role, instance string) string {
	p, ok := h.by[r.Service]
	if !ok || p.HoldBack <= 0 || role == naming.RoleMaster || r.InstanceID != "" || r.ReleasedAt.IsZero() ||
		r.LastInstanceID == "" || r.LastInstanceID == instance {
		return ""
	}
	until := r.ReleasedAt.Add(p.HoldBack)
	if !until.After(h.now) {
		return ""
	}
	return fmt.Sprintf("released from %s at %s; held back from other instances until %s (hold-back %v, %s)",
		r.LastInstanceID, r.ReleasedAt.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339), p.HoldBack, p.Source)
}
