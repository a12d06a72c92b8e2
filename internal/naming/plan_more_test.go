package naming

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPlanAliases(t *testing.T) {
	withAliases := func(r Record, a ...string) Record { r.Aliases = a; return r }
	tests := map[string]struct {
		policy    Policy
		records   []Record
		instances []Instance
		want      map[string][]string // hostname -> aliases after
		reason    string              // some change's Reason contains this
		moved     []AliasMove         // some change carries exactly these moves
		problem   string              // some Problem contains this
	}{
		"per-hostname alias on bind": {
			policy:    Policy{Aliases: map[string][]string{"web-0": {"www"}}},
			instances: []Instance{running("i-a", 0)},
			want:      map[string][]string{"web-0": {"www"}},
		},
		"newer claim takes the alias": {
			policy:    Policy{InstanceAliases: map[string][]string{"i-a": {"cache"}, "i-b": {"cache"}}},
			records:   []Record{withAliases(rec("web", "web-0", "i-a"), "cache"), rec("web", "web-1", "i-b")},
			instances: []Instance{running("i-a", 0), running("i-b", 5)},
			want:      map[string][]string{"web-0": nil, "web-1": {"cache"}},
			reason:    "alias cache moved from web-0",
			moved:     []AliasMove{{Alias: "cache", From: "web-0"}},
		},
		"older claim does not take it": {
			policy:    Policy{InstanceAliases: map[string][]string{"i-a": {"cache"}, "i-b": {"cache"}}},
			records:   []Record{withAliases(rec("web", "web-0", "i-b"), "cache"), rec("web", "web-1", "i-a")},
			instances: []Instance{running("i-a", 0), running("i-b", 5)},
			want:      map[string][]string{"web-0": {"cache"}, "web-1": nil},
		},
		"alias equal to a hostname refused": {
			policy:    Policy{Aliases: map[string][]string{"web-0": {"web-1", "api-0", "ok"}}},
			records:   []Record{rec("api", "api-0", "i-x")},
			instances: []Instance{running("i-a", 0)},
			want:      map[string][]string{"web-0": {"ok"}},
			problem:   `alias "api-0" refused`,
		},
		"1.x aliases kept without an InstanceAliases entry": {
			records:   []Record{withAliases(rec("web", "web-0", "i-a"), "legacy")},
			instances: []Instance{running("i-a", 0)},
			want:      map[string][]string{"web-0": {"legacy"}},
		},
		"empty InstanceAliases entry clears": {
			policy:    Policy{InstanceAliases: map[string][]string{"i-a": {}}},
			records:   []Record{withAliases(rec("web", "web-0", "i-a"), "legacy")},
			instances: []Instance{running("i-a", 0)},
			want:      map[string][]string{"web-0": nil},
		},
		"released name drops its aliases": {
			records:   []Record{withAliases(rec("web", "web-0", "i-a"), "legacy")},
			instances: []Instance{{ID: "i-a", State: StateTerminated}},
			want:      map[string][]string{"web-0": nil},
		},
		"ip and aliases change together in one write": {
			policy:    Policy{Aliases: map[string][]string{"web-0": {"www"}}},
			records:   []Record{{Hostname: "web-0", Service: "web", InstanceID: "i-a", IP: "10.9.9.9", Rev: 4}},
			instances: []Instance{running("i-a", 0)},
			want:      map[string][]string{"web-0": {"www"}},
			reason:    "ip changed",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := tc.policy
			p.Service, p.Scheme = "web", Iterative
			res, after := planApply(t, Input{Policy: p, Records: tc.records, Now: t0,
				Observed: Observation{Complete: true, Instances: tc.instances}})
			for _, r := range after {
				if want, ok := tc.want[r.Hostname]; ok && !slices.Equal(r.Aliases, want) {
					t.Errorf("%s aliases = %q, want %q\n%s", r.Hostname, r.Aliases, want, describeAll(res.Changes))
				}
			}
			if tc.reason != "" && !strings.Contains(describeAll(res.Changes), tc.reason) {
				t.Errorf("no change says %q:\n%s", tc.reason, describeAll(res.Changes))
			}
			if tc.moved != nil && !slices.ContainsFunc(res.Changes, func(c Change) bool {
				return c.Cause == CauseAliasesChanged && slices.Equal(c.MovedAliases, tc.moved)
			}) {
				t.Errorf("no %q change moves %v:\n%s", CauseAliasesChanged, tc.moved, describeAll(res.Changes))
			}
			if tc.problem != "" && !strings.Contains(strings.Join(res.Problems, "\n"), tc.problem) {
				t.Errorf("no problem says %q: %q", tc.problem, res.Problems)
			}
		})
	}
}

func TestPlanAliasMoveOrder(t *testing.T) {
	// The record losing the alias is written before the one gaining it, so
	// the alias is never on two records between writes.
	in := Input{
		Policy:   Policy{Service: "web", Scheme: Iterative, InstanceAliases: map[string][]string{"i-a": {"x"}, "i-b": {"x"}}},
		Records:  []Record{rec("web", "web-0", "i-b"), {Hostname: "web-1", Service: "web", InstanceID: "i-a", IP: ip("i-a"), Aliases: []string{"x"}, Rev: 2}},
		Observed: Observation{Complete: true, Instances: []Instance{running("i-a", 0), running("i-b", 9)}},
		Now:      t0,
	}
	res, _ := planApply(t, in)
	if len(res.Changes) != 2 || res.Changes[0].Hostname != "web-1" || res.Changes[1].Hostname != "web-0" {
		t.Fatalf("want web-1 cleared before web-0 takes x:\n%s", describeAll(res.Changes))
	}
}

func TestPlanAliasesFollowInstanceOnChangeOver(t *testing.T) {
	in := Input{
		Policy: Policy{Service: "db", Scheme: Masterful, DesiredMaster: "i-s",
			Aliases: map[string][]string{"db-master": {"db"}}},
		Records: []Record{
			{Hostname: "db-master", Service: "db", InstanceID: "i-m", IP: ip("i-m"), Aliases: []string{"db", "m-own"}, Rev: 1},
			{Hostname: "db-slave-1", Service: "db", InstanceID: "i-s", IP: ip("i-s"), Aliases: []string{"s-own"}, Rev: 2},
		},
		Observed: Observation{Complete: true, Instances: []Instance{running("i-m", 0), running("i-s", 1)}},
		Now:      t0,
	}
	_, after := planApply(t, in)
	got := map[string]string{}
	for _, r := range after {
		got[r.Hostname] = r.InstanceID + " " + strings.Join(r.Aliases, ",")
	}
	if got["db-master"] != "i-s db,s-own" || got["db-slave-1"] != "i-m m-own" {
		t.Fatalf("got %q", got)
	}
}

func TestPlanReapCap(t *testing.T) {
	tests := map[string]struct {
		bound, dead  int
		frac         float64
		wantReleased int
	}{
		"default half":         {bound: 10, dead: 10, wantReleased: 5},
		"at least one":         {bound: 3, dead: 3, frac: 0.2, wantReleased: 1},
		"all allowed":          {bound: 4, dead: 4, frac: 1, wantReleased: 4},
		"under the cap":        {bound: 10, dead: 2, wantReleased: 2},
		"one of one (default)": {bound: 1, dead: 1, wantReleased: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := Input{Policy: Policy{Service: "web", Scheme: Iterative, Reap: ReapPolicy{MaxReleaseFraction: tc.frac}},
				Observed: Observation{Complete: true}, Now: t0}
			addWebFleet(&in, tc.bound, tc.dead)
			res, err := Plan(in)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Changes) != tc.wantReleased || len(res.Deferred) != tc.dead-tc.wantReleased {
				t.Fatalf("released %d deferred %d, want %d and %d", len(res.Changes), len(res.Deferred), tc.wantReleased, tc.dead-tc.wantReleased)
			}
			// Deferred releases go through on later passes.
			for pass := 0; len(res.Deferred) > 0; pass++ {
				if pass > tc.dead {
					t.Fatal("deferred releases never drain")
				}
				in.Records = apply(t, in.Records, res.Changes, t0)
				res, _ = Plan(in)
			}
		})
	}
}

func TestPlanGracePeriod(t *testing.T) {
	p := Policy{Service: "web", Scheme: Iterative, Reap: ReapPolicy{GracePeriod: 10 * time.Minute}}
	recs := []Record{rec("web", "web-0", "i-a")}
	miss := map[string]time.Time(nil)
	steps := []struct {
		at       time.Duration
		complete bool
		release  bool
	}{
		{0, true, false},
		{5 * time.Minute, false, false}, // incomplete never releases
		{9 * time.Minute, true, false},
		{11 * time.Minute, false, false},
		{12 * time.Minute, true, true},
	}
	for _, st := range steps {
		res, err := Plan(Input{Policy: p, Records: recs, MissingSince: miss, Now: t0.Add(st.at),
			Observed: Observation{Complete: st.complete}})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.HasChanges(); got != st.release {
			t.Fatalf("at %v: release=%v, want %v: %s", st.at, got, st.release, describeAll(res.Changes))
		}
		if !st.release && !res.MissingSince[("i-a")].Equal(t0) {
			t.Fatalf("at %v: MissingSince = %v, want %v", st.at, res.MissingSince, t0)
		}
		miss = res.MissingSince
	}
	// Seen again: the clock resets.
	res, _ := Plan(Input{Policy: p, Records: recs, MissingSince: miss, Now: t0.Add(time.Hour),
		Observed: Observation{Complete: true, Instances: []Instance{running("i-a", 0)}}})
	if len(res.MissingSince) != 0 || res.HasChanges() {
		t.Fatalf("seen instance: %v %s", res.MissingSince, describeAll(res.Changes))
	}
}

func TestPlanBadInput(t *testing.T) {
	good := Policy{Service: "web", Scheme: Iterative}
	tests := map[string]struct {
		mod       func(*Policy)
		instances []Instance
		want      string
	}{
		"bad service":        {mod: func(p *Policy) { p.Service = "Web_1" }, want: `policy.service "Web_1"`},
		"empty service":      {mod: func(p *Policy) { p.Service = "" }, want: `policy.service ""`},
		"long service":       {mod: func(p *Policy) { p.Service = strings.Repeat("a", 60) }, want: "too long"},
		"unknown scheme":     {mod: func(p *Policy) { p.Scheme = "primary" }, want: `policy.scheme "primary"`},
		"bad alias":          {mod: func(p *Policy) { p.Aliases = map[string][]string{"web-0": {"a b"}} }, want: `policy.aliases[web-0] "a b"`},
		"bad alias key":      {mod: func(p *Policy) { p.Aliases = map[string][]string{"WEB": {"a"}} }, want: `policy.aliases key "WEB"`},
		"bad instance alias": {mod: func(p *Policy) { p.InstanceAliases = map[string][]string{"i-a": {"-x"}} }, want: `policy.instanceAliases[i-a] "-x"`},
		"master iterative":   {mod: func(p *Policy) { p.DesiredMaster = "i-a" }, want: "policy.desiredMaster"},
		"fraction":           {mod: func(p *Policy) { p.Reap.MaxReleaseFraction = 1.5 }, want: "policy.reap.maxReleaseFraction 1.5"},
		"grace":              {mod: func(p *Policy) { p.Reap.GracePeriod = -time.Second }, want: "policy.reap.gracePeriod"},
		"bad ip on bind": {instances: []Instance{{ID: "i-a", PrivateIP: "10.0.0.999", State: StateRunning}},
			want: `instances[i-a].privateIP "10.0.0.999"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := good
			if tc.mod != nil {
				tc.mod(&p)
			}
			res, err := Plan(Input{Policy: p, Now: t0, Observed: Observation{Complete: true, Instances: tc.instances}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if res.HasChanges() {
				t.Fatal("changes returned with an error")
			}
		})
	}
}

func TestPlanProblems(t *testing.T) {
	in := Input{
		Policy: Policy{Service: "web", Scheme: Iterative, DesiredMaster: ""},
		Records: []Record{
			rec("web", "web-0", "i-a"), rec("web", "web-0", "i-b"),
			rec("api", "api-0", "i-x"), rec("web", "web-master", "i-c"),
		},
		Observed: Observation{Complete: true, Instances: []Instance{running("i-a", 0), running("i-b", 1), running("i-b", 1)}},
		Now:      t0,
	}
	res, err := Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(res.Problems, "\n")
	for _, want := range []string{"2 records for hostname web-0", "1 records of other services", `"web-master" is not a Iterative name`, "i-b listed twice"} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
	// i-b is not bound by the winning record, so it gets a new name.
	if got := describeAll(res.Changes); !strings.Contains(got, "bind web-1 to i-b") {
		t.Errorf("changes:\n%s", got)
	}
}

func TestDescribe(t *testing.T) {
	c := Change{Type: Bind, Hostname: "web-3", InstanceID: "i-1", IP: "10.0.0.1", Reason: "new instance"}
	if got, want := Describe(c), "bind web-3 to i-1 (10.0.0.1): new instance"; got != want {
		t.Fatalf("Describe = %q, want %q", got, want)
	}
}
