package naming

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCompareHostnames(t *testing.T) {
	tests := map[string]struct {
		a, b string
		want int
	}{
		"numbers by value":      {"web-2", "web-10", -1},
		"same":                  {"web-10", "web-10", 0},
		"services by bytes":     {"db-9", "web-0", -1},
		"slave after master":    {"db-master", "db-slave-0", -1},
		"slaves by value":       {"db-slave-9", "db-slave-11", -1},
		"prefix first":          {"web", "web-0", -1},
		"leading zeros tie":     {"web-01", "web-1", -1},
		"digits before letters": {"web-1", "web-a", -1},
		"long number":           {"web-99999999999999999999", "web-100000000000000000000", -1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := CompareHostnames(tc.a, tc.b); got != tc.want {
				t.Errorf("CompareHostnames(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
			}
			if got := CompareHostnames(tc.b, tc.a); got != -tc.want {
				t.Errorf("CompareHostnames(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
			}
		})
	}
}

func TestSortByHostname(t *testing.T) {
	recs := []Record{{Hostname: "web-10"}, {Hostname: "web-2"}, {Hostname: "db-master"}, {Hostname: "web-0"}}
	SortByHostname(recs)
	var got []string
	for _, r := range recs {
		got = append(got, r.Hostname)
	}
	if want := []string{"db-master", "web-0", "web-2", "web-10"}; !slices.Equal(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
}

// A ledger's names: by service, the master first, slaves and iterative
// names by number, names outside the scheme by hostname.
func TestCompareNames(t *testing.T) {
	want := []Record{
		{Service: "db", Role: RoleMaster, Hostname: "db-master"},
		{Service: "db", Role: RoleSlave, Ordinal: 2, Hostname: "db-slave-2"},
		{Service: "db", Role: RoleSlave, Ordinal: 10, Hostname: "db-slave-10"},
		{Service: "web", Ordinal: 0, Hostname: "web-0"},
		{Service: "web", Ordinal: 0, Hostname: "web-x"},
		{Service: "web", Ordinal: 2, Hostname: "web-2"},
		{Service: "web", Ordinal: 10, Hostname: "web-10"},
	}
	for seed := range uint64(20) {
		got := slices.Clone(want)
		rand.New(rand.NewPCG(seed, seed)).Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
		slices.SortFunc(got, func(a, b Record) int { return CompareNames(&a, &b) })
		if !slices.EqualFunc(got, want, func(a, b Record) bool { return a.Hostname == b.Hostname }) {
			t.Fatalf("seed %d: order %v, want %v", seed, hostnames(got), hostnames(want))
		}
	}
}

func hostnames(recs []Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Hostname
	}
	return out
}

// A total order: antisymmetric, zero only for equal strings, transitive.
func FuzzCompareHostnames(f *testing.F) {
	f.Add("web-2", "web-10", "web-02")
	f.Add("a1b22", "a01b3", "a1b022")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		ab, ba := CompareHostnames(a, b), CompareHostnames(b, a)
		if ab != -ba {
			t.Fatalf("cmp(%q,%q)=%d but cmp(%q,%q)=%d", a, b, ab, b, a, ba)
		}
		if (ab == 0) != (a == b) {
			t.Fatalf("cmp(%q,%q)=%d", a, b, ab)
		}
		if ab <= 0 && CompareHostnames(b, c) <= 0 && CompareHostnames(a, c) > 0 {
			t.Fatalf("not transitive: %q <= %q <= %q but cmp(a,c) > 0", a, b, c)
		}
	})
}

func TestSameRecord(t *testing.T) {
	base := Record{Hostname: "web-0", Service: "web", InstanceID: "i-0", IP: "10.0.0.1", Aliases: []string{"www"}, Rev: 3}
	tests := map[string]struct {
		change func(*Record)
		same   bool
	}{
		"identical":        {func(*Record) {}, true},
		"timestamps":       {func(r *Record) { r.UpdatedAt, r.ClaimedAt = time.Unix(9, 0), time.Unix(8, 0) }, true},
		"ip":               {func(r *Record) { r.IP = "10.0.0.2" }, false},
		"holder":           {func(r *Record) { r.InstanceID = "i-1" }, false},
		"service":          {func(r *Record) { r.Service = "db" }, false},
		"rev":              {func(r *Record) { r.Rev++ }, false},
		"aliases":          {func(r *Record) { r.Aliases = []string{"api"} }, false},
		"aliases to none":  {func(r *Record) { r.Aliases = nil }, false},
		"hostname":         {func(r *Record) { r.Hostname = "web-1" }, false},
		"alias copy equal": {func(r *Record) { r.Aliases = []string{strings.Clone("www")} }, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			other := base
			tc.change(&other)
			if got := SameRecord(base, other); got != tc.same {
				t.Errorf("SameRecord = %v, want %v", got, tc.same)
			}
		})
	}
}
