package naming

import (
	"slices"
	"strings"
	"testing"
)

func TestNarrowSuffixes(t *testing.T) {
	tests := map[string]struct {
		global, service, want []string
	}{
		"no lists":               {nil, nil, nil},
		"global only":            {[]string{"corp.example"}, nil, []string{"corp.example"}},
		"service only":           {nil, []string{"db.corp.example"}, []string{"db.corp.example"}},
		"service narrows":        {[]string{"corp.example"}, []string{"db.corp.example"}, []string{"db.corp.example"}},
		"service cannot widen":   {[]string{"db.corp.example"}, []string{"corp.example"}, []string{"db.corp.example"}},
		"no overlap allows none": {[]string{"corp.example"}, []string{"evil.example"}, []string{"(none: evil.example do not overlap corp.example)"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := narrow(tc.global, tc.service); !slices.Equal(got, tc.want) {
				t.Fatalf("narrow = %q, want %q", got, tc.want)
			}
		})
	}
	g, err := NewAliasGuard(AliasGuardOptions{AllowedSuffixes: []string{"corp.example"}})
	if err != nil {
		t.Fatal(err)
	}
	rules := g.Rules(nil, []string{"evil.example"})
	for _, a := range []string{"x.evil.example", "x.corp.example"} {
		if rules.Check(a) == "" {
			t.Errorf("alias %q allowed with non-overlapping suffix lists", a)
		}
	}
}

func TestNewAliasGuardRefusesBadInput(t *testing.T) {
	tests := map[string]struct {
		o    AliasGuardOptions
		want string
	}{
		"cluster domain": {AliasGuardOptions{ClusterDomain: "bad_domain"}, `cluster domain "bad_domain"`},
		"reserved name":  {AliasGuardOptions{Reserved: []string{"a b"}}, `reserved name "a b"`},
		"suffix":         {AliasGuardOptions{AllowedSuffixes: []string{"-x"}}, `allowed alias suffix "-x"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := NewAliasGuard(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
}
