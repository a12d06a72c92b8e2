package naming

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// apply plays changes against records the way the ledger does: every
// change is a compare-and-set on one record, and each record is written at
// most once per plan. It fails the test on a broken expectation.
func apply(t testing.TB, records []Record, changes []Change, now time.Time) []Record {
	t.Helper()
	out := slices.Clone(records)
	var rev int64
	for _, r := range out {
		rev = max(rev, r.Rev)
	}
	touched := map[string]bool{}
	for _, c := range changes {
		if touched[c.Hostname] {
			t.Fatalf("record %s changed twice in one plan", c.Hostname)
		}
		touched[c.Hostname] = true
		idx := -1
		for i, r := range out {
			if r.Hostname == c.Hostname && r.Service == c.Service {
				idx = i
				break
			}
		}
		if (idx >= 0) != c.ExpectExists {
			t.Fatalf("%s: ExpectExists=%v but record exists=%v", Describe(c), c.ExpectExists, idx >= 0)
		}
		if idx >= 0 && (out[idx].InstanceID != c.ExpectInstanceID || out[idx].Rev != c.ExpectRev) {
			t.Fatalf("%s: expected (%q, rev %d), record has (%q, rev %d)", Describe(c),
				c.ExpectInstanceID, c.ExpectRev, out[idx].InstanceID, out[idx].Rev)
		}
		if idx < 0 {
			if c.Type != Bind {
				t.Fatalf("%s: insert by a %s", Describe(c), c.Type)
			}
			out = append(out, Record{Hostname: c.Hostname, Service: c.Service, Scheme: c.Scheme})
			idx = len(out) - 1
		}
		rev++
		r := &out[idx]
		r.Rev, r.UpdatedAt, r.Role, r.Ordinal = rev, now, c.Role, c.Ordinal
		switch c.Type {
		case Bind:
			if r.InstanceID != c.InstanceID {
				r.ClaimedAt = now
			}
			r.InstanceID, r.IP, r.Aliases = c.InstanceID, c.IP, slices.Clone(c.Aliases)
			r.ReleasedAt, r.LastInstanceID = time.Time{}, ""
		case Release:
			if r.InstanceID != "" {
				r.ReleasedAt, r.LastInstanceID = c.ReleasedAt, r.InstanceID
				if r.ReleasedAt.IsZero() {
					r.ReleasedAt = now
				}
			}
			r.InstanceID, r.IP, r.Aliases, r.ClaimedAt = "", "", nil, time.Time{}
		case SetIP:
			r.IP = c.IP
		case SetAliases:
			r.Aliases = slices.Clone(c.Aliases)
		default:
			t.Fatalf("unknown change type %q", c.Type)
		}
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
