package naming

import (
	"strings"
	"testing"
	"time"
)

// holdWorld plays passes over time against one fleet, as the controller
// does: records and MissingSince carry over from pass to pass.
type holdWorld struct {
	t      *testing.T
	policy Policy
	now    time.Time
	recs   []Record
	miss   map[string]time.Time
	fleet  []Instance
}

func (w *holdWorld) set(id string, st InstanceState) {
	for i := range w.fleet {
		if w.fleet[i].ID == id {
			w.fleet[i].State = st
			return
		}
	}
	w.t.Fatalf("no instance %s", id)
}

// pass plans at w.now, checks idempotence, applies and returns the plan.
func (w *holdWorld) pass() Result {
	w.t.Helper()
	res, after := planApply(w.t, Input{Policy: w.policy, Records: w.recs,
		Observed: Observation{Instances: w.fleet, Complete: true}, MissingSince: w.miss, Now: w.now})
	w.recs, w.miss = after, res.MissingSince
	return res
}

func newHoldWorld(t *testing.T, p Policy, ids ...string) *holdWorld {
	w := &holdWorld{t: t, policy: p, now: t0}
	for i, id := range ids {
		w.fleet = append(w.fleet, running(id, i))
	}
	w.pass()
	return w
}

func held(res Result) string {
	var s []string
	for _, h := range res.Held {
		s = append(s, h.Hostname+"@"+h.InstanceID)
	}
	return strings.Join(s, " ")
}

// TestPlanHoldBack: release at t; a new instance at t+δ gets the next
// name; one at t+hold gets the released name.
func TestPlanHoldBack(t *testing.T) {
	const hold = 3 * time.Minute
	p := Policy{Service: "web", Scheme: Iterative, Reap: ReapPolicy{HoldBack: hold}}
	w := newHoldWorld(t, p, "i-a", "i-b", "i-c")
	if got := names(w.recs); got != "web-0=i-a web-1=i-b web-2=i-c" {
		t.Fatalf("start: %s", got)
	}

	w.now = w.now.Add(time.Minute)
	w.set("i-b", StateTerminated)
	res := w.pass()
	if len(res.Changes) != 1 || res.Changes[0].Type != Release || res.Changes[0].Hostname != "web-1" {
		t.Fatalf("termination: want one Release of web-1, got:\n%s", describeAll(res.Changes))
	}
	if got := held(res); got != "web-1@i-b" {
		t.Fatalf("held after release = %q, want web-1@i-b", got)
	}
	released := w.now
	if h := res.Held[0]; !h.Until.Equal(released.Add(hold)) || h.Cause != HoldReleased || !strings.Contains(h.Reason, "terminated") {
		t.Errorf("hold = %+v, want until %v, cause %q and the reason", h, released.Add(hold), HoldReleased)
	}
	if c := res.Changes[0]; c.Cause != CauseReleased || c.Freed != FreedGone {
		t.Errorf("release = %+v, want cause %q, freed %q", c, CauseReleased, FreedGone)
	}
	if r := w.recs[1]; !r.ReleasedAt.Equal(released) || r.LastInstanceID != "i-b" {
		t.Errorf("released record = %+v, want ReleasedAt %v LastInstanceID i-b", r, released)
	}

	// t+δ: a new instance takes the next number, not the held web-1.
	w.now = released.Add(30 * time.Second)
	w.fleet = append(w.fleet, running("i-d", 10))
	res = w.pass()
	if got := names(w.recs); got != "web-0=i-a web-2=i-c web-3=i-d" {
		t.Errorf("at t+δ: %s, want i-d on web-3", got)
	}
	if len(res.Held) != 1 || res.Held[0].Cause != HoldReleased || !strings.Contains(res.Held[0].Reason, "released from i-b at") {
		t.Errorf("at t+δ Held = %+v, want web-1 released from i-b", res.Held)
	}
	if !res.NextHoldEnd().Equal(released.Add(hold)) {
		t.Errorf("NextHoldEnd = %v, want %v", res.NextHoldEnd(), released.Add(hold))
	}

	// Just before the hold ends: still held.
	w.now = released.Add(hold - time.Nanosecond)
	w.fleet = append(w.fleet, running("i-e", 11))
	w.pass()
	if got := names(w.recs); !strings.Contains(got, "web-4=i-e") {
		t.Errorf("just before hold ends: %s, want i-e on web-4", got)
	}

	// t+hold: the next new instance gets web-1.
	w.now = released.Add(hold)
	w.fleet = append(w.fleet, running("i-f", 12))
	res = w.pass()
	if got := names(w.recs); got != "web-0=i-a web-1=i-f web-2=i-c web-3=i-d web-4=i-e" {
		t.Errorf("at t+hold: %s, want i-f on web-1", got)
	}
	if len(res.Held) != 0 {
		t.Errorf("at t+hold Held = %+v, want none", res.Held)
	}
}

func TestPlanHoldBackRules(t *testing.T) {
	const hold = 3 * time.Minute
	at := t0.Add(time.Hour)
	gap := func(host, last string, ago time.Duration) Record {
		r := rec("web", host, "")
		r.ReleasedAt, r.LastInstanceID = at.Add(-ago), last
		return r
	}
	dbGap := func(host, last string, ago time.Duration) Record {
		r := gap(host, last, ago)
		r.Service = "db"
		return r
	}
	web := Policy{Service: "web", Scheme: Iterative, Reap: ReapPolicy{HoldBack: hold, MaxReleaseFraction: 1}}
	db := Policy{Service: "db", Scheme: Masterful, Reap: ReapPolicy{HoldBack: hold, MaxReleaseFraction: 1}}
	term := func(in Instance) Instance { in.State = StateTerminated; return in }
	tests := map[string]struct {
		policy    Policy
		records   []Record
		instances []Instance
		want      string // bound names after applying
		wantHeld  string
		// wantCause and wantFreed are those of the change binding the last
		// instance listed (for CauseOldMaster: the old master's).
		wantCause Cause
		wantFreed Freed
	}{
		"held gap skipped, next number taken": {
			policy:    web,
			records:   []Record{rec("web", "web-0", "i-a"), gap("web-1", "i-b", time.Minute)},
			instances: []Instance{running("i-a", 0), running("i-new", 5)},
			want:      "web-0=i-a web-2=i-new",
			wantHeld:  "web-1@i-b",
		},
		"held gap skipped, a later unheld gap taken": {
			policy:    web,
			records:   []Record{gap("web-0", "i-x", time.Minute), gap("web-1", "i-y", 10*time.Minute)},
			instances: []Instance{running("i-new", 5)},
			want:      "web-1=i-new",
			wantHeld:  "web-0@i-x",
		},
		"hold over: smallest gap again": {
			policy:    web,
			records:   []Record{gap("web-0", "i-x", hold), rec("web", "web-1", "i-a")},
			instances: []Instance{running("i-a", 0), running("i-new", 5)},
			want:      "web-0=i-new web-1=i-a",
		},
		"1.x gap without released_at is not held": {
			policy:    web,
			records:   []Record{rec("web", "web-0", "")},
			instances: []Instance{running("i-new", 5)},
			want:      "web-0=i-new",
		},
		"the last holder takes its held name back": {
			policy:    web,
			records:   []Record{gap("web-0", "i-x", time.Minute), gap("web-1", "i-b", time.Minute)},
			instances: []Instance{running("i-new", 1), running("i-b", 2)},
			want:      "web-1=i-b web-2=i-new",
			wantHeld:  "web-0@i-x",
			wantCause: CausePreviousHolderBack,
		},
		"the last holder takes its name back after the hold too, before older instances": {
			policy:    web,
			records:   []Record{gap("web-0", "i-b", time.Hour)},
			instances: []Instance{running("i-old", 0), running("i-b", 2)},
			want:      "web-0=i-b web-1=i-old",
			wantCause: CausePreviousHolderBack,
		},
		"terminated holder: Release, not a hand-over Bind": {
			policy:    web,
			records:   []Record{rec("web", "web-0", "i-a")},
			instances: []Instance{term(running("i-a", 0)), running("i-new", 5)},
			want:      "web-1=i-new",
			wantHeld:  "web-0@i-a",
		},
		"hold 0: hand-over in one Bind as before": {
			policy:    Policy{Service: "web", Scheme: Iterative, Reap: ReapPolicy{MaxReleaseFraction: 1}},
			records:   []Record{rec("web", "web-0", "i-a")},
			instances: []Instance{term(running("i-a", 0)), running("i-new", 5)},
			want:      "web-0=i-new",
			wantCause: CauseNewInstance, wantFreed: FreedGone,
		},
		"master is never held": {
			policy:    db,
			records:   []Record{{Hostname: "db-master", Service: "db", Scheme: Masterful, Role: RoleMaster, InstanceID: "i-m", IP: ip("i-m"), Rev: 1}},
			instances: []Instance{term(running("i-m", 0)), running("i-new", 5)},
			want:      "db-master=i-new",
			wantCause: CauseMasterRefilled, wantFreed: FreedGone,
		},
		"master vacant: its last holder first": {
			policy:    db,
			records:   []Record{dbGap("db-master", "i-m", time.Minute)},
			instances: []Instance{running("i-new", 0), running("i-m", 5)},
			want:      "db-master=i-m db-slave-1=i-new",
			wantCause: CausePreviousHolderBack,
		},
		"held slave gap skipped": {
			policy:    db,
			records:   []Record{{Hostname: "db-master", Service: "db", Role: RoleMaster, InstanceID: "i-m", IP: ip("i-m"), Rev: 1}, dbGap("db-slave-1", "i-s", time.Minute)},
			instances: []Instance{running("i-m", 0), running("i-new", 5)},
			want:      "db-master=i-m db-slave-2=i-new",
			wantHeld:  "db-slave-1@i-s",
		},
		"change-over: the old master still takes the promoted slave's number": {
			policy: func() Policy { p := db; p.DesiredMaster = "i-s"; return p }(),
			records: []Record{
				{Hostname: "db-master", Service: "db", Role: RoleMaster, InstanceID: "i-m", IP: ip("i-m"), Rev: 1},
				{Hostname: "db-slave-1", Service: "db", Role: RoleSlave, Ordinal: 1, InstanceID: "i-s", IP: ip("i-s"), Rev: 1},
			},
			instances: []Instance{running("i-m", 0), running("i-s", 1)},
			want:      "db-master=i-s db-slave-1=i-m",
			wantCause: CauseOldMaster, wantFreed: FreedPromoted,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res, after := planApply(t, Input{Policy: tc.policy, Records: tc.records,
				Observed: Observation{Instances: tc.instances, Complete: true}, Now: at})
			if got := names(after); got != tc.want {
				t.Errorf("names = %s, want %s\n%s", got, tc.want, describeAll(res.Changes))
			}
			if got := held(res); got != tc.wantHeld {
				t.Errorf("held = %q, want %q", got, tc.wantHeld)
			}
			if tc.wantCause != "" {
				last := tc.instances[len(tc.instances)-1].ID
				found := false
				for _, c := range res.Changes {
					if c.Type == Bind && (c.InstanceID == last || tc.wantCause == CauseOldMaster) && c.Cause == tc.wantCause && c.Freed == tc.wantFreed {
						found = true
					}
				}
				if !found {
					t.Errorf("no Bind with cause %q, freed %q:\n%s", tc.wantCause, tc.wantFreed, describeAll(res.Changes))
				}
			}
		})
	}
}

// TestPlanStoppedVersusTerminated: a stopped instance keeps its name for the
// stopped grace period and gets it back when it starts; a terminated one
// releases at once, and its name is then held back.
func TestPlanStoppedVersusTerminated(t *testing.T) {
	const hold, stoppedGrace = 3 * time.Minute, time.Hour
	p := Policy{Service: "web", Scheme: Iterative, Reap: ReapPolicy{HoldBack: hold, StoppedGracePeriod: stoppedGrace, MaxReleaseFraction: 1}}
	w := newHoldWorld(t, p, "i-a", "i-b", "i-c")
	start := w.now.Add(time.Minute)
	w.now = start
	w.set("i-a", StateStopped)
	w.set("i-b", StateTerminated)
	res := w.pass()
	if got := names(w.recs); got != "web-0=i-a web-2=i-c" {
		t.Fatalf("after stop and terminate: %s, want i-a kept, i-b released", got)
	}
	if got := held(res); got != "web-0@i-a web-1@i-b" {
		t.Errorf("held = %q, want web-0@i-a web-1@i-b", got)
	}
	if h := res.Held[0]; !h.Until.Equal(start.Add(stoppedGrace)) || h.Cause != HoldStopped || !strings.Contains(h.Reason, "stopped since") {
		t.Errorf("stopped hold = %+v, want until %v", h, start.Add(stoppedGrace))
	}

	// Half-way: still kept; a new instance takes a new number.
	w.now = start.Add(30 * time.Minute)
	w.fleet = append(w.fleet, running("i-d", 40))
	w.pass()
	if got := names(w.recs); got != "web-0=i-a web-1=i-d web-2=i-c" {
		t.Errorf("30m later: %s, want i-a kept and i-d on web-1 (hold over)", got)
	}
	// It starts again: same name, no change but the ip if it moved.
	w.set("i-a", StateRunning)
	if res := w.pass(); res.HasChanges() || len(res.Held) != 0 {
		t.Errorf("restart of a kept instance changed %s held %q", describeAll(res.Changes), held(res))
	}
	if _, ok := w.miss["i-a"]; ok {
		t.Error("MissingSince still counts the restarted instance")
	}

	// Stopped again, now past the grace period: released, then held back.
	w.set("i-a", StateStopped)
	w.now = w.now.Add(time.Minute)
	w.pass()
	stopAgain := w.now
	w.now = stopAgain.Add(stoppedGrace)
	res = w.pass()
	if len(res.Changes) != 1 || res.Changes[0].Type != Release || res.Changes[0].Freed != FreedStopped || !strings.Contains(res.Changes[0].Reason, "stopped for 1h0m0s") {
		t.Fatalf("after the stopped grace: want a Release, got:\n%s", describeAll(res.Changes))
	}
	if got := held(res); got != "web-0@i-a" {
		t.Errorf("held = %q, want web-0@i-a", got)
	}
	// Much later it starts: it gets web-0 back, being its last holder.
	w.now = w.now.Add(24 * time.Hour)
	w.fleet = append(w.fleet, running("i-e", 9000))
	w.set("i-a", StateRunning)
	w.pass()
	if got := names(w.recs); got != "web-0=i-a web-1=i-d web-2=i-c web-3=i-e" {
		t.Errorf("restarted after release: %s, want i-a back on web-0", got)
	}
}

// TestPlanStoppedGraceZero keeps 1.x behaviour: stopped releases at once.
func TestPlanStoppedGraceZero(t *testing.T) {
	p := Policy{Service: "web", Scheme: Iterative}
	w := newHoldWorld(t, p, "i-a")
	w.set("i-a", StateStopped)
	res := w.pass()
	if len(res.Changes) != 1 || res.Changes[0].Type != Release || len(res.Held) != 0 {
		t.Errorf("want an immediate Release and nothing held, got:\n%s\nheld %q", describeAll(res.Changes), held(res))
	}
}

func TestPlanHoldBackBadPolicy(t *testing.T) {
	for name, r := range map[string]ReapPolicy{
		"policy.reap.holdBack":           {HoldBack: -time.Second},
		"policy.reap.stoppedGracePeriod": {StoppedGracePeriod: -time.Second},
	} {
		_, err := Plan(Input{Policy: Policy{Service: "web", Scheme: Iterative, Reap: r}, Now: t0})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v, want one naming the field", name, err)
		}
	}
}
