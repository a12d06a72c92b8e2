package controllers

import (
	"slices"
	"testing"

	"github.com/aerostat-io/aerostat/internal/naming"
)

func TestGroupByService(t *testing.T) {
	rec := func(svc, host string) naming.Record { return naming.Record{Service: svc, Hostname: host} }
	hosts := func(recs []naming.Record) []string {
		var out []string
		for _, r := range recs {
			out = append(out, r.Hostname)
		}
		return out
	}
	cases := map[string]struct {
		records []naming.Record
		want    map[string][]string
	}{
		"none":        {records: nil, want: map[string][]string{}},
		"one service": {records: []naming.Record{rec("web", "web-0"), rec("web", "web-1")}, want: map[string][]string{"web": {"web-0", "web-1"}}},
		"runs in order": {
			records: []naming.Record{rec("api", "api-0"), rec("db", "db-master"), rec("db", "db-slave-1"), rec("web", "web-0")},
			want:    map[string][]string{"api": {"api-0"}, "db": {"db-master", "db-slave-1"}, "web": {"web-0"}},
		},
		"a service split over runs": {
			records: []naming.Record{rec("web", "web-0"), rec("db", "db-master"), rec("web", "web-1"), rec("db", "db-slave-1"), rec("web", "web-2")},
			want:    map[string][]string{"db": {"db-master", "db-slave-1"}, "web": {"web-0", "web-1", "web-2"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			before := slices.Clone(tc.records)
			got := groupByService(tc.records)
			if len(got) != len(tc.want) {
				t.Fatalf("%d services, want %d: %v", len(got), len(tc.want), got)
			}
			for svc, want := range tc.want {
				if h := hosts(got[svc]); !slices.Equal(h, want) {
					t.Errorf("service %s: %v, want %v", svc, h, want)
				}
				// Appending to one service's records must not reach the
				// records they were cut from (the next service's run).
				_ = append(got[svc], rec(svc, "appended"))
			}
			if !slices.EqualFunc(tc.records, before, func(a, b naming.Record) bool { return a.Hostname == b.Hostname && a.Service == b.Service }) {
				t.Errorf("records changed by appends to the groups: %v, was %v", hosts(tc.records), hosts(before))
			}
		})
	}
}
