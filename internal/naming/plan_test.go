package naming

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPlanRules(t *testing.T) {
	web := Policy{Service: "web", Scheme: Iterative, Reap: ReapPolicy{MaxReleaseFraction: 1}}
	db := Policy{Service: "db", Scheme: Masterful, Reap: ReapPolicy{MaxReleaseFraction: 1}}
	stopped := func(in Instance, s InstanceState) Instance { in.State = s; return in }
	tests := map[string]struct {
		policy    Policy
		records   []Record
		instances []Instance
		partial   bool
		want      string // bound names after applying, "host=id" sorted
		wantFirst string // optional: Describe of the first change must contain this
		// wantFreed: hostname -> Freed of the change that takes the name
		// from its holder.
		wantFreed map[string]Freed
	}{
		"iterative from zero, oldest first": {
			policy:    web,
			instances: []Instance{running("i-b", 2), running("i-a", 1), running("i-c", 1)},
			want:      "web-0=i-a web-1=i-c web-2=i-b",
		},
		"masterful: master then slaves from one": {
			policy:    db,
			instances: []Instance{running("i-1", 1), running("i-2", 2), running("i-3", 3)},
			want:      "db-master=i-1 db-slave-1=i-2 db-slave-2=i-3",
		},
		"pending instances get names": {
			policy:    web,
			instances: []Instance{stopped(running("i-a", 1), StatePending)},
			want:      "web-0=i-a",
		},
		"stopping and stopped instances get no new name": {
			policy:    web,
			instances: []Instance{stopped(running("i-a", 1), StateStopping), stopped(running("i-b", 1), StateStopped)},
			want:      "",
		},
		"numeric gaps: web-2 before web-10 (1.x sorted strings)": {
			policy: web,
			records: func() []Record {
				var rs []Record
				for i := range 11 {
					id := "i-old" + itoa(i)
					if i == 2 || i == 10 {
						id = ""
					}
					rs = append(rs, rec("web", "web-"+itoa(i), id))
				}
				return rs
			}(),
			instances: func() []Instance {
				var is []Instance
				for i := range 11 {
					if i != 2 && i != 10 {
						is = append(is, running("i-old"+itoa(i), 0))
					}
				}
				return append(is, running("i-new", 5))
			}(),
			wantFirst: "bind web-2 to i-new",
		},
		"missing numbers without records are gaps too": {
			policy:    web,
			records:   []Record{rec("web", "web-0", "i-a"), rec("web", "web-3", "i-b")},
			instances: []Instance{running("i-a", 0), running("i-b", 0), running("i-c", 1), running("i-d", 2), running("i-e", 3)},
			want:      "web-0=i-a web-1=i-c web-2=i-d web-3=i-b web-4=i-e",
		},
		"fallen master refilled before slave gap": {
			policy:    db,
			records:   []Record{rec("db", "db-master", "i-m"), rec("db", "db-slave-1", ""), rec("db", "db-slave-2", "i-s2")},
			instances: []Instance{stopped(running("i-m", 0), StateTerminated), running("i-s2", 0), running("i-n", 5)},
			want:      "db-master=i-n db-slave-2=i-s2",
		},
		"vacant master and only slaves alive: nobody promoted": {
			policy:    db,
			records:   []Record{rec("db", "db-master", ""), rec("db", "db-slave-1", "i-s1")},
			instances: []Instance{running("i-s1", 0)},
			want:      "db-slave-1=i-s1",
		},
		"never rename a bound live instance": {
			policy:    web,
			records:   []Record{rec("web", "web-0", ""), rec("web", "web-1", "i-b")},
			instances: []Instance{running("i-b", 0)},
			want:      "web-1=i-b",
		},
		"terminated released": {
			policy:    web,
			records:   []Record{rec("web", "web-0", "i-a"), rec("web", "web-1", "i-b")},
			instances: []Instance{running("i-a", 0), stopped(running("i-b", 0), StateShuttingDown)},
			want:      "web-0=i-a",
			wantFirst: "release web-1 from i-b: instance i-b shutting-down",
		},
		"terminated name handed over in one write": {
			policy:    web,
			records:   []Record{rec("web", "web-0", "i-a")},
			instances: []Instance{stopped(running("i-a", 0), StateTerminated), running("i-b", 1)},
			want:      "web-0=i-b",
			wantFirst: "bind web-0 to i-b",
		},
		"absent from incomplete listing kept": {
			policy:    web,
			records:   []Record{rec("web", "web-0", "i-a")},
			instances: nil,
			partial:   true,
			want:      "web-0=i-a",
		},
		"absent from complete listing, no grace: released": {
			policy:    web,
			records:   []Record{rec("web", "web-0", "i-a")},
			want:      "",
			wantFreed: map[string]Freed{"web-0": FreedAbsent},
		},
		"change-over: slave promoted, old master takes its slot": {
			policy:    withMaster(db, "i-s1"),
			records:   []Record{rec("db", "db-master", "i-m"), rec("db", "db-slave-1", "i-s1"), rec("db", "db-slave-2", "i-s2")},
			instances: []Instance{running("i-m", 0), running("i-s1", 1), running("i-s2", 2)},
			want:      "db-master=i-s1 db-slave-1=i-m db-slave-2=i-s2",
			wantFirst: "bind db-master to i-s1",
		},
		"change-over by instance id, old master takes lower gap": {
			policy:    withMaster(db, "i-s2"),
			records:   []Record{rec("db", "db-master", "i-m"), rec("db", "db-slave-1", ""), rec("db", "db-slave-2", "i-s2")},
			instances: []Instance{running("i-m", 0), running("i-s2", 2)},
			want:      "db-master=i-s2 db-slave-1=i-m",
			wantFirst: "release db-slave-2 from i-s2",
			wantFreed: map[string]Freed{"db-slave-2": FreedPromoted, "db-master": FreedChangeOver},
		},
		"change-over with dead old master": {
			policy:    withMaster(db, "i-s1"),
			records:   []Record{rec("db", "db-master", "i-m"), rec("db", "db-slave-1", "i-s1")},
			instances: []Instance{stopped(running("i-m", 0), StateTerminated), running("i-s1", 1)},
			want:      "db-master=i-s1",
			wantFreed: map[string]Freed{"db-slave-1": FreedPromoted, "db-master": FreedGone},
		},
		"desired master already master: nothing": {
			policy:    withMaster(db, "i-m"),
			records:   []Record{rec("db", "db-master", "i-m"), rec("db", "db-slave-1", "i-s1")},
			instances: []Instance{running("i-m", 0), running("i-s1", 1)},
			want:      "db-master=i-m db-slave-1=i-s1",
		},
		"instance holding two names keeps master": {
			policy:    db,
			records:   []Record{rec("db", "db-master", "i-m"), rec("db", "db-slave-1", "i-m")},
			instances: []Instance{running("i-m", 0), running("i-n", 1)},
			want:      "db-master=i-m db-slave-1=i-n",
			wantFreed: map[string]Freed{"db-slave-1": FreedDuplicate},
		},
		"duplicate hostname records: live holder wins, no crash": {
			policy:    web,
			records:   []Record{rec("web", "web-0", "i-dead"), rec("web", "web-0", "i-a")},
			instances: []Instance{running("i-a", 0)},
			want:      "web-0=i-a web-0=i-dead",
		},
		"other services' records ignored": {
			policy:    web,
			records:   []Record{rec("api", "api-0", "i-x")},
			instances: []Instance{running("i-a", 0)},
			want:      "api-0=i-x web-0=i-a",
		},
		"stopping keeps its name": {
			policy:    web,
			records:   []Record{rec("web", "web-0", "i-a")},
			instances: []Instance{stopped(running("i-a", 0), StateStopping)},
			want:      "web-0=i-a",
		},
		"stopped released": {
			policy:    web,
			records:   []Record{rec("web", "web-0", "i-a"), rec("web", "web-1", "i-b")},
			instances: []Instance{stopped(running("i-a", 0), StateStopped), running("i-b", 0)},
			want:      "web-1=i-b",
		},
		"gone instance in a partial listing is released": {
			policy:    web,
			records:   []Record{rec("web", "web-0", "i-a")},
			instances: []Instance{stopped(running("i-a", 0), StateTerminated)},
			partial:   true,
			want:      "",
		},
		"change-over waits when the old master is not in a partial listing": {
			policy:    withMaster(db, "i-s1"),
			records:   []Record{rec("db", "db-master", "i-m"), rec("db", "db-slave-1", "i-s1")},
			instances: []Instance{running("i-s1", 1)},
			partial:   true,
			want:      "db-master=i-m db-slave-1=i-s1",
		},
		"gap with a stale ip is cleaned": {
			policy:    web,
			records:   []Record{{Hostname: "web-0", Service: "web", IP: "10.1.1.1", Rev: 2}},
			want:      "",
			wantFirst: "release web-0: gap still had an ip",
		},
		"ip change": {
			policy:    web,
			records:   []Record{{Hostname: "web-0", Service: "web", InstanceID: "i-a", IP: "10.9.9.9", Rev: 3}},
			instances: []Instance{running("i-a", 0)},
			want:      "web-0=i-a",
			wantFirst: "set ip of web-0 to " + ip("i-a"),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := Input{Policy: tc.policy, Records: tc.records, Now: t0.Add(time.Hour),
				Observed: Observation{Instances: tc.instances, Complete: !tc.partial}}
			res, after := planApply(t, in)
			if tc.want != "" || tc.wantFirst == "" {
				if got := names(after); got != tc.want {
					t.Errorf("names = %q, want %q\nchanges:\n%s", got, tc.want, describeAll(res.Changes))
				}
			}
			if tc.wantFirst != "" {
				if len(res.Changes) == 0 || !strings.Contains(Describe(res.Changes[0]), tc.wantFirst) {
					t.Errorf("first change should contain %q; changes:\n%s", tc.wantFirst, describeAll(res.Changes))
				}
			}
			for _, c := range res.Changes {
				if want, ok := tc.wantFreed[c.Hostname]; ok && c.Freed != want {
					t.Errorf("%s: freed %q, want %q", Describe(c), c.Freed, want)
				} else if !ok && c.Freed != "" && len(tc.wantFreed) > 0 {
					t.Errorf("%s: freed %q, want none", Describe(c), c.Freed)
				}
			}
			for host := range tc.wantFreed {
				if !slices.ContainsFunc(res.Changes, func(c Change) bool { return c.Hostname == host }) {
					t.Errorf("no change of %s; changes:\n%s", host, describeAll(res.Changes))
				}
			}
			again, err := Plan(in)
			if err != nil || !slices.EqualFunc(again.Changes, res.Changes, changeEqual) {
				t.Errorf("not deterministic")
			}
		})
	}
}

func TestPlanDesiredMasterHostnameResolves(t *testing.T) {
	in := Input{
		Policy:   Policy{Service: "db", Scheme: Masterful, DesiredMaster: "db-slave-1"},
		Records:  []Record{rec("db", "db-master", "i-m"), rec("db", "db-slave-1", "i-s1")},
		Observed: Observation{Complete: true, Instances: []Instance{running("i-m", 0), running("i-s1", 1)}},
		Now:      t0,
	}
	res, err := Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	if res.DesiredMasterID != "i-s1" {
		t.Fatalf("DesiredMasterID = %q, want i-s1", res.DesiredMasterID)
	}
	in.Records = apply(t, in.Records, res.Changes, t0)
	if got, want := names(in.Records), "db-master=i-s1 db-slave-1=i-m"; got != want {
		t.Fatalf("names = %q, want %q", got, want)
	}
	in.Policy.DesiredMaster = res.DesiredMasterID
	if res2, _ := Plan(in); res2.HasChanges() {
		t.Fatalf("second plan with the stored id should be empty:\n%s", describeAll(res2.Changes))
	}
}

func withMaster(p Policy, m string) Policy { p.DesiredMaster = m; return p }

func itoa(i int) string { return Hostname("", Iterative, RoleNone, i)[1:] }

func changeEqual(a, b Change) bool {
	return Describe(a) == Describe(b) && a.ExpectRev == b.ExpectRev && a.ExpectInstanceID == b.ExpectInstanceID &&
		a.ExpectExists == b.ExpectExists && a.Role == b.Role && a.Ordinal == b.Ordinal
}
