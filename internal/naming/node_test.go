package naming

import (
	"strings"
	"testing"
	"time"
)

func TestHeldBy(t *testing.T) {
	tests := map[string]struct {
		records []Record
		id      string
		want    string
	}{
		"nothing":            {records: []Record{rec("web", "web-0", "i-1")}, id: "i-2"},
		"one":                {records: []Record{rec("web", "web-0", "i-1"), rec("web", "web-1", "i-2")}, id: "i-2", want: "web-1"},
		"lowest ordinal":     {records: []Record{{Hostname: "web-3", InstanceID: "i-1", Ordinal: 3}, {Hostname: "web-1", InstanceID: "i-1", Ordinal: 1}}, id: "i-1", want: "web-1"},
		"master first":       {records: []Record{{Hostname: "db-slave0", InstanceID: "i-1", Role: RoleSlave}, {Hostname: "db-master", InstanceID: "i-1", Role: RoleMaster}}, id: "i-1", want: "db-master"},
		"empty id is no one": {records: []Record{rec("web", "web-0", "")}, id: ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := HeldBy(tc.records, tc.id)
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("HeldBy(%s) = %q, %v; want %q", tc.id, got, ok, tc.want)
			}
		})
	}
}

func TestApplyRefusesBrokenExpectations(t *testing.T) {
	recs := []Record{rec("web", "web-0", "i-1")}
	tests := map[string]struct {
		changes []Change
		wantErr string
	}{
		"insert over an existing record": {changes: []Change{{Type: Bind, Hostname: "web-0", Service: "web", InstanceID: "i-2"}}, wantErr: "ExpectExists=false"},
		"stale holder":                   {changes: []Change{{Type: Release, Hostname: "web-0", Service: "web", ExpectExists: true, ExpectInstanceID: "i-9", ExpectRev: 1}}, wantErr: `expected ("i-9", rev 1)`},
		"stale rev":                      {changes: []Change{{Type: Release, Hostname: "web-0", Service: "web", ExpectExists: true, ExpectInstanceID: "i-1", ExpectRev: 7}}, wantErr: "rev 7"},
		"insert by a release":            {changes: []Change{{Type: Release, Hostname: "web-1", Service: "web"}}, wantErr: "insert by a Release"},
		"twice in one plan": {changes: []Change{
			{Type: SetIP, Hostname: "web-0", Service: "web", IP: "10.0.0.9", ExpectExists: true, ExpectInstanceID: "i-1", ExpectRev: 1},
			{Type: SetIP, Hostname: "web-0", Service: "web", IP: "10.0.0.8", ExpectExists: true, ExpectInstanceID: "i-1", ExpectRev: 2},
		}, wantErr: "changed twice"},
		"unknown type": {changes: []Change{{Type: "Rename", Hostname: "web-0", Service: "web", ExpectExists: true, ExpectInstanceID: "i-1", ExpectRev: 1}}, wantErr: `unknown change type "Rename"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := Apply(recs, tc.changes, t0)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || out != nil {
				t.Fatalf("Apply = %v, %v; want nil and an error naming %q", out, err, tc.wantErr)
			}
			if recs[0].InstanceID != "i-1" || recs[0].Rev != 1 {
				t.Errorf("Apply modified its input: %+v", recs[0])
			}
		})
	}
}

// TestNodeClaimTakesFreeName: a register plan applied to a copy tells the
// name the node would hold, and bound instances of the service (not of
// others, not gaps) are observed so nothing is reaped.
func TestNodeClaimTakesFreeName(t *testing.T) {
	recs := []Record{
		rec("web", "web-0", "i-1"),
		{Hostname: "web-1", Service: "web", Ordinal: 1, Rev: 1}, // a gap
		rec("web", "web-2", "i-3"),
		rec("db", "db-0", "i-7"),
	}
	recs[2].Ordinal = 2
	c := NodeClaim{Info: Info{Service: "web", Scheme: Iterative}, InstanceID: "i-9", IP: "10.0.0.9"}
	in := c.Input(recs, t0)
	var ids []string
	for _, i := range in.Observed.Instances {
		ids = append(ids, i.ID)
	}
	if got := strings.Join(ids, " "); got != "i-9 i-1 i-3" {
		t.Errorf("observed %q, want the node and the service's bound instances", got)
	}
	if in.Policy.InstanceAliases["i-9"] == nil {
		t.Error("the node's aliases must be an empty list, not nil (nil means unknown)")
	}
	res, err := Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	after, err := Apply(recs, res.Changes, t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := HeldBy(after, "i-9"); got != "web-1" {
		t.Errorf("after the plan i-9 holds %q, want the gap web-1 (changes: %s)", got, describeAll(res.Changes))
	}
	if got, _ := HeldBy(after, "i-3"); got != "web-2" {
		t.Errorf("i-3 holds %q after i-9's claim, want web-2 kept", got)
	}
}
