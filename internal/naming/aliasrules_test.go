package naming

import (
	"slices"
	"strings"
	"testing"
)

func TestAliasRulesCheck(t *testing.T) {
	rules := AliasRules{
		Names:    map[string]bool{"localhost": true, "aerostat-feed": true, "api-0": true},
		Services: map[string]Scheme{"db": Masterful, "web": Iterative},
		Domains:  []string{"cluster.local", "svc"},
	}
	tests := map[string]struct {
		rules AliasRules
		alias string
		want  string // substring of the refusal; "" allowed
	}{
		"localhost":                     {rules, "localhost", "reserved"},
		"localhost any case":            {rules, "LocalHost.", "reserved"},
		"feed service":                  {rules, "aerostat-feed", "reserved"},
		"other service's held name":     {rules, "api-0", "reserved"},
		"masterful name not yet held":   {rules, "db-slave-9", "service db"},
		"master of another service":     {rules, "db-master", "service db"},
		"iterative name":                {rules, "web-12", "service web"},
		"cluster domain itself":         {rules, "cluster.local", "reserved domain cluster.local"},
		"under the cluster domain":      {rules, "kubernetes.default.svc.cluster.local", "reserved domain cluster.local"},
		"service short name":            {rules, "kubernetes.default.svc", "reserved domain svc"},
		"look-alike domain allowed":     {rules, "notcluster.local", ""},
		"service-like but not a name":   {rules, "db-primary", ""},
		"plain alias":                   {rules, "cache", ""},
		"outside allowed suffixes":      {AliasRules{AllowedSuffixes: []string{"corp.example"}}, "cache", "outside the allowed suffixes corp.example"},
		"inside allowed suffixes":       {AliasRules{AllowedSuffixes: []string{".corp.example"}}, "cache.corp.example", ""},
		"suffix needs a label boundary": {AliasRules{AllowedSuffixes: []string{"corp.example"}}, "evilcorp.example", "outside"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := tc.rules.Check(tc.alias)
			if (got == "") != (tc.want == "") || !strings.Contains(got, tc.want) {
				t.Fatalf("Check(%q) = %q, want %q", tc.alias, got, tc.want)
			}
		})
	}
}

// An instance asking for aliases that shadow other services, localhost or
// the cluster domain gets none of them written, and an existing record
// holding one loses it; each refusal is reported.
func TestPlanRefusesAliasesByRules(t *testing.T) {
	rules := AliasRules{
		Names:    map[string]bool{"localhost": true, "db-master": true},
		Services: map[string]Scheme{"db": Masterful},
		Domains:  []string{"cluster.local"},
	}
	asked := []string{"db-master", "db-slave-3", "localhost", "kubernetes.default.svc.cluster.local", "cache"}
	in := Input{
		Policy: Policy{Service: "web", Scheme: Iterative, InstanceAliases: map[string][]string{"i-a": asked}},
		Records: []Record{{Hostname: "web-0", Service: "web", InstanceID: "i-a", IP: ip("i-a"), Rev: 1,
			Aliases: []string{"localhost"}}}, // written by a 1.x client
		Observed:   Observation{Complete: true, Instances: []Instance{running("i-a", 0)}},
		Now:        t0,
		AliasRules: rules,
	}
	in.AliasRules = rules
	res, after := planApply(t, in)
	if len(after) != 1 || !slices.Equal(after[0].Aliases, []string{"cache"}) {
		t.Fatalf("aliases after = %+v, want only cache", after)
	}
	var got []string
	for _, r := range res.RefusedAliases {
		if r.Hostname != "web-0" || r.Reason == "" {
			t.Errorf("refusal %+v: want hostname web-0 and a reason", r)
		}
		got = append(got, r.Alias)
	}
	slices.Sort(got)
	want := []string{"db-master", "db-slave-3", "kubernetes.default.svc.cluster.local", "localhost"}
	if !slices.Equal(got, want) {
		t.Fatalf("refused = %q, want %q", got, want)
	}
	if len(res.Problems) < len(want) {
		t.Fatalf("problems = %q, want one per refusal", res.Problems)
	}
}
