package naming

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// apply is Apply failing the test on a broken expectation.
func apply(t testing.TB, records []Record, changes []Change, now time.Time) []Record {
	t.Helper()
	out, err := Apply(records, changes, now)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// names renders the bound records as "host=id" sorted, for compact asserts.
func names(records []Record) string {
	var s []string
	for _, r := range records {
		if r.InstanceID != "" {
			s = append(s, r.Hostname+"="+r.InstanceID)
		}
	}
	slices.Sort(s)
	return strings.Join(s, " ")
}

func describeAll(cs []Change) string {
	var s []string
	for _, c := range cs {
		s = append(s, Describe(c))
	}
	return strings.Join(s, "\n")
}

func running(id string, minute int) Instance {
	return Instance{ID: id, PrivateIP: ip(id), State: StateRunning, LaunchTime: t0.Add(time.Duration(minute) * time.Minute)}
}

// ip derives a stable address from an id like "i-12".
func ip(id string) string {
	n := 0
	for _, c := range id {
		n = n*31 + int(c)
	}
	return fmt.Sprintf("10.%d.%d.%d", (n>>16)&0xff, (n>>8)&0xff, n&0xff)
}

func rec(service, host, id string) Record {
	r := Record{Hostname: host, Service: service, InstanceID: id, Rev: 1}
	if id != "" {
		r.IP = ip(id)
	}
	return r
}

// addWebFleet adds web-0..web-(bound-1), each held by its own listed
// instance, the first dead of them terminated.
func addWebFleet(in *Input, bound, dead int) {
	for i := range bound {
		id := "i-" + itoa(i)
		in.Records = append(in.Records, rec("web", Hostname("web", Iterative, RoleNone, i), id))
		st := StateRunning
		if i < dead {
			st = StateTerminated
		}
		in.Observed.Instances = append(in.Observed.Instances, Instance{ID: id, PrivateIP: ip(id), State: st})
	}
}

// planApply plans, applies and checks that a second plan is empty.
func planApply(t *testing.T, in Input) (Result, []Record) {
	t.Helper()
	res, err := Plan(in)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	after := apply(t, in.Records, res.Changes, in.Now)
	in2 := in
	in2.Records = after
	in2.MissingSince = res.MissingSince
	res2, err := Plan(in2)
	if err != nil {
		t.Fatalf("second Plan: %v", err)
	}
	if len(res2.Changes) > 0 {
		t.Fatalf("not idempotent; first plan:\n%s\nsecond plan:\n%s", describeAll(res.Changes), describeAll(res2.Changes))
	}
	return res, after
}
