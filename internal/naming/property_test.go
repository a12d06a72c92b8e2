package naming

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// sim is a random fleet with a history: launches, terminations, stop/start,
// IP changes, promotions and incomplete listings.
type sim struct {
	r      *rand.Rand
	now    time.Time
	next   int
	fleet  map[string]*Instance
	ids    []string // fleet ids in launch order, for deterministic picks
	policy Policy
	recs   []Record
	miss   map[string]time.Time
}

func newSim(seed uint64) *sim {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	p := Policy{Service: "svc", Scheme: Iterative}
	if r.IntN(2) == 0 {
		p.Scheme = Masterful
	}
	p.Reap.GracePeriod = []time.Duration{0, 2 * time.Minute, 10 * time.Minute}[r.IntN(3)]
	p.Reap.MaxReleaseFraction = []float64{0, 0.2, 1}[r.IntN(3)]
	p.Reap.HoldBack = []time.Duration{0, 3 * time.Minute, 20 * time.Minute}[r.IntN(3)]
	p.Reap.StoppedGracePeriod = []time.Duration{0, 5 * time.Minute, time.Hour}[r.IntN(3)]
	p.Aliases = map[string][]string{"svc-0": {"front"}, "svc-master": {"primary"}, "svc-slave-1": {"svc-2"}}
	p.InstanceAliases = map[string][]string{}
	s := &sim{r: r, now: t0, fleet: map[string]*Instance{}, policy: p}
	if seed%3 == 0 {
		s.messy()
	}
	return s
}

// messy starts from 1.x-shaped records: instances holding two names,
// gaps with stale IPs, names past web-9.
func (s *sim) messy() {
	for range 12 {
		s.launch()
	}
	for k := range 14 {
		host := Hostname("svc", s.policy.Scheme, RoleSlave, k+1)
		if k == 0 && s.policy.Scheme == Masterful {
			host = "svc-master"
		}
		r := Record{Hostname: host, Service: "svc"}
		switch s.r.IntN(4) {
		case 0: // gap with leftovers
			r.IP, r.Aliases = s.randIP(), []string{"stale"}
		default:
			in := s.pick()
			r.InstanceID, r.IP = in.ID, in.PrivateIP
		}
		s.recs = append(s.recs, r)
	}
}

func (s *sim) launch() {
	s.next++
	id := fmt.Sprintf("i-%05d", s.next)
	in := &Instance{ID: id, PrivateIP: s.randIP(), State: StatePending, LaunchTime: s.now}
	if s.r.IntN(3) == 0 { // same launch time, id breaks the tie
		in.LaunchTime = s.now.Add(-time.Minute)
	}
	s.fleet[id] = in
	s.ids = append(s.ids, id)
	if s.r.IntN(3) == 0 {
		pool := []string{"cache", "queue", "svc-1", "db.internal"}
		s.policy.InstanceAliases[id] = []string{pool[s.r.IntN(len(pool))]}
	}
}

func (s *sim) randIP() string {
	return fmt.Sprintf("10.0.%d.%d", s.r.IntN(256), s.r.IntN(256))
}

func (s *sim) pick() *Instance {
	if len(s.ids) == 0 {
		return nil
	}
	return s.fleet[s.ids[s.r.IntN(len(s.ids))]]
}

// step moves the world on by a minute.
func (s *sim) step() {
	s.now = s.now.Add(time.Minute)
	for _, id := range s.ids {
		in := s.fleet[id]
		switch in.State {
		case StatePending:
			in.State = StateRunning
		case StateStopping:
			in.State = StateStopped
		case StateShuttingDown:
			in.State = StateTerminated
		}
	}
	for range s.r.IntN(4) {
		s.launch()
	}
	for range s.r.IntN(3) {
		in := s.pick()
		if in == nil {
			break
		}
		switch s.r.IntN(6) {
		case 0:
			if in.State == StateRunning {
				in.State = StateShuttingDown
			}
		case 1:
			if in.State == StateRunning {
				in.State = StateStopping
			}
		case 2:
			if in.State == StateStopped {
				in.State = StatePending
				if s.r.IntN(2) == 0 {
					in.PrivateIP = s.randIP()
				}
			}
		case 3:
			if in.State == StateRunning {
				in.PrivateIP = s.randIP()
			}
		case 4: // terminated instances drop out of listings
			if in.State == StateTerminated {
				delete(s.fleet, in.ID)
				s.ids = slices.DeleteFunc(s.ids, func(id string) bool { return id == in.ID })
			}
		case 5: // promote a live instance
			if s.policy.Scheme == Masterful && in.State == StateRunning {
				s.policy.DesiredMaster = in.ID
			}
		}
	}
}

func (s *sim) observe() Observation {
	obs := Observation{Complete: s.r.IntN(5) != 0}
	for _, id := range s.ids {
		if obs.Complete || s.r.IntN(2) == 0 {
			obs.Instances = append(obs.Instances, *s.fleet[id])
		}
	}
	s.r.Shuffle(len(obs.Instances), func(i, j int) {
		obs.Instances[i], obs.Instances[j] = obs.Instances[j], obs.Instances[i]
	})
	return obs
}

func TestPlanProperties(t *testing.T) {
	seeds, steps := 60, 120
	if testing.Short() {
		seeds = 10
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			s := newSim(seed)
			for step := range steps {
				s.step()
				in := Input{Policy: s.policy, Records: s.recs, Observed: s.observe(), MissingSince: s.miss, Now: s.now}
				res, err := Plan(in)
				if err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
				checkDeterministic(t, s.r, in, res)
				// Sometimes crash part-way; the next pass must repair it.
				changes := res.Changes
				crashed := len(changes) > 1 && s.r.IntN(8) == 0
				if crashed {
					changes = changes[:s.r.IntN(len(changes))]
				}
				after := apply(t, s.recs, changes, s.now)
				checkUnique(t, after)
				if !crashed {
					checkPlanned(t, in, res, after)
				}
				if !crashed && len(res.Deferred) == 0 {
					again := in
					again.Records, again.MissingSince = after, res.MissingSince
					res2, err := Plan(again)
					if err != nil {
						t.Fatal(err)
					}
					if res2.HasChanges() {
						t.Fatalf("step %d: not idempotent:\n%s\nthen:\n%s", step, describeAll(res.Changes), describeAll(res2.Changes))
					}
				}
				s.recs, s.miss = after, res.MissingSince
			}
		})
	}
}

func checkDeterministic(t *testing.T, r *rand.Rand, in Input, want Result) {
	t.Helper()
	shuffled := in
	shuffled.Records = slices.Clone(in.Records)
	shuffled.Observed.Instances = slices.Clone(in.Observed.Instances)
	r.Shuffle(len(shuffled.Records), func(i, j int) {
		shuffled.Records[i], shuffled.Records[j] = shuffled.Records[j], shuffled.Records[i]
	})
	r.Shuffle(len(shuffled.Observed.Instances), func(i, j int) {
		shuffled.Observed.Instances[i], shuffled.Observed.Instances[j] = shuffled.Observed.Instances[j], shuffled.Observed.Instances[i]
	})
	got, err := Plan(shuffled)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(got.Changes, want.Changes, changeEqual) || !slices.EqualFunc(got.Deferred, want.Deferred, changeEqual) ||
		!slices.Equal(got.Problems, want.Problems) || !slices.Equal(got.Held, want.Held) {
		t.Fatalf("input order changed the plan:\n%s\nvs\n%s", describeAll(want.Changes), describeAll(got.Changes))
	}
}

// checkUnique: one record per name (the ledger's unique index) and, outside
// a crash, one name per instance.
func checkUnique(t *testing.T, recs []Record) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range recs {
		if seen[r.Hostname] {
			t.Fatalf("name %s recorded twice", r.Hostname)
		}
		seen[r.Hostname] = true
	}
}

func checkPlanned(t *testing.T, in Input, res Result, after []Record) {
	t.Helper()
	for _, c := range slices.Concat(res.Changes, res.Deferred) {
		role, ord, ok := ParseHostname("svc", in.Policy.Scheme, c.Hostname)
		if !ok || c.Service != "svc" || c.Scheme != in.Policy.Scheme || c.Role != role || c.Ordinal != ord {
			t.Fatalf("change lacks its name's identity: %+v", c)
		}
	}
	holder := map[string]string{}
	aliasOn := map[string]string{}
	hosts := map[string]bool{}
	for _, r := range after {
		hosts[r.Hostname] = true
	}
	for _, r := range after {
		if r.InstanceID == "" {
			if r.IP != "" || len(r.Aliases) > 0 {
				t.Fatalf("gap %s keeps ip %q aliases %q", r.Hostname, r.IP, r.Aliases)
			}
			continue
		}
		for _, a := range r.Aliases {
			if h, dup := aliasOn[a]; dup {
				t.Fatalf("alias %s on %s and %s", a, h, r.Hostname)
			}
			if _, _, own := ParseHostname("svc", in.Policy.Scheme, a); own || hosts[a] {
				t.Fatalf("alias %s on %s is a host name", a, r.Hostname)
			}
			aliasOn[a] = r.Hostname
		}
		if h, dup := holder[r.InstanceID]; dup {
			t.Fatalf("instance %s holds %s and %s", r.InstanceID, h, r.Hostname)
		}
		holder[r.InstanceID] = r.Hostname
	}
	for _, i := range in.Observed.Instances {
		if live(i.State) && holder[i.ID] == "" {
			t.Fatalf("live instance %s has no name after:\n%s", i.ID, describeAll(res.Changes))
		}
	}
	// Never rename a bound live instance, except in a change-over.
	before := map[string]string{}
	double := map[string]bool{}
	for _, r := range in.Records {
		if r.InstanceID != "" {
			double[r.InstanceID] = before[r.InstanceID] != ""
			before[r.InstanceID] = r.Hostname
		}
	}
	var master string
	for _, r := range in.Records {
		if r.Hostname == "svc-master" {
			master = r.InstanceID
		}
	}
	for _, i := range in.Observed.Instances {
		if h := before[i.ID]; h != "" && live(i.State) && holder[i.ID] != h && !double[i.ID] &&
			i.ID != res.DesiredMasterID && i.ID != master {
			t.Fatalf("live %s renamed %s -> %s", i.ID, h, holder[i.ID])
		}
	}
	checkHeld(t, in, res)
	heldHost := map[string]bool{}
	for _, h := range res.Held {
		heldHost[h.Hostname] = true
	}
	// Gaps filled smallest first: every number handed out this pass is
	// below every number still free and not held. Names given back to
	// their last holder are exempt.
	start, role := 0, RoleNone
	if in.Policy.Scheme == Masterful {
		start, role = 1, RoleSlave
	}
	used := map[int]bool{}
	maxOrd := start - 1
	masterFree := in.Policy.Scheme == Masterful
	for _, r := range after {
		rl, ord, _ := ParseHostname("svc", in.Policy.Scheme, r.Hostname)
		if rl == RoleMaster {
			masterFree = r.InstanceID == ""
			continue
		}
		maxOrd = max(maxOrd, ord)
		if r.InstanceID != "" || heldHost[r.Hostname] {
			used[ord] = true
		}
	}
	newMax := -1
	for _, c := range res.Changes {
		if c.Type == Bind && c.Role == role && c.InstanceID != c.ExpectInstanceID && c.Reason != "previous holder back" {
			newMax = max(newMax, c.Ordinal)
		}
	}
	if newMax >= 0 {
		if masterFree {
			t.Fatalf("slave bound while master free:\n%s", describeAll(res.Changes))
		}
		for k := start; k < newMax; k++ {
			if !used[k] {
				t.Fatalf("number %d left free while %d was handed out:\n%s", k, newMax, describeAll(res.Changes))
			}
		}
	}
}

// checkHeld: with a hold-back, no name but the master goes to a different
// instance while held, nor straight from a holder that is not live.
func checkHeld(t *testing.T, in Input, res Result) {
	t.Helper()
	hold := in.Policy.Reap.HoldBack
	if hold <= 0 {
		return
	}
	before := map[string]Record{}
	for _, r := range in.Records {
		before[r.Hostname] = r
	}
	liveIDs := map[string]bool{}
	for _, i := range in.Observed.Instances {
		if live(i.State) {
			liveIDs[i.ID] = true
		}
	}
	for _, c := range res.Changes {
		r, ok := before[c.Hostname]
		if c.Type != Bind || c.Role == RoleMaster || !ok || r.InstanceID == c.InstanceID {
			continue
		}
		if r.InstanceID == "" && !r.ReleasedAt.IsZero() && in.Now.Before(r.ReleasedAt.Add(hold)) && c.InstanceID != r.LastInstanceID {
			t.Fatalf("held %s (released from %s at %v) handed to %s at %v", c.Hostname, r.LastInstanceID, r.ReleasedAt, c.InstanceID, in.Now)
		}
		if r.InstanceID != "" && !liveIDs[r.InstanceID] {
			t.Fatalf("%s handed from %s (not live) straight to %s despite the hold", c.Hostname, r.InstanceID, c.InstanceID)
		}
	}
	for _, h := range res.Held {
		if !h.Until.After(in.Now) {
			t.Fatalf("hold of %s ended at %v but still reported at %v", h.Hostname, h.Until, in.Now)
		}
	}
}
