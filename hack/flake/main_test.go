package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestTally(t *testing.T) {
	const pkg = "example.com/p"
	tests := map[string]struct {
		input      string
		want       map[key]result // counts only
		wantFailed bool
		wantLines  []string
	}{
		"all pass": {
			input: `{"Action":"run","Package":"example.com/p","Test":"TestA"}
{"Action":"pass","Package":"example.com/p","Test":"TestA"}
{"Action":"run","Package":"example.com/p","Test":"TestA"}
{"Action":"pass","Package":"example.com/p","Test":"TestA"}
{"Action":"pass","Package":"example.com/p"}`,
			want:      map[key]result{{pkg, "TestA"}: {pass: 2}, {pkg, ""}: {pass: 1}},
			wantLines: []string{"example.com/p\t1\t0\t0/1"},
		},
		"one flaky test with a subtest": {
			input: `{"Action":"run","Package":"example.com/p","Test":"TestA"}
{"Action":"output","Package":"example.com/p","Test":"TestA","Output":"    a_test.go:9: boom\n"}
{"Action":"fail","Package":"example.com/p","Test":"TestA/sub"}
{"Action":"fail","Package":"example.com/p","Test":"TestA"}
{"Action":"run","Package":"example.com/p","Test":"TestA"}
{"Action":"pass","Package":"example.com/p","Test":"TestA/sub"}
{"Action":"pass","Package":"example.com/p","Test":"TestA"}
{"Action":"run","Package":"example.com/p","Test":"TestB"}
{"Action":"skip","Package":"example.com/p","Test":"TestB"}
{"Action":"fail","Package":"example.com/p"}`,
			want: map[key]result{{pkg, "TestA"}: {pass: 1, fail: 1}, {pkg, "TestA/sub"}: {pass: 1, fail: 1},
				{pkg, "TestB"}: {skip: 1}, {pkg, ""}: {fail: 1}},
			wantFailed: true,
			wantLines: []string{"FLAKY example.com/p TestA: failed 1 of 2 runs (50%)", "a_test.go:9: boom",
				"FLAKY example.com/p TestA/sub: failed 1 of 2 runs (50%)", "example.com/p\t3\t2\t1/1"},
		},
		"build failure text and a package without tests": {
			input: `# example.com/q
q.go:1: syntax error
{"Action":"output","Package":"example.com/q","Output":"FAIL\texample.com/q [build failed]\n"}
{"Action":"fail","Package":"example.com/q"}`,
			want:       map[key]result{{"example.com/q", ""}: {fail: 1}},
			wantFailed: true,
			wantLines:  []string{"FLAKY example.com/q (package binary): failed 1 of 1 runs (100%)", "example.com/q\t0\t0\t1/1"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := tally(strings.NewReader(tc.input))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Errorf("tallied %d entries, want %d: %v", len(got), len(tc.want), got)
			}
			for k, w := range tc.want {
				g := got[k]
				if g == nil || g.pass != w.pass || g.fail != w.fail || g.skip != w.skip {
					t.Errorf("%v = %+v, want %+v", k, g, w)
				}
			}
			var out bytes.Buffer
			if failed := report(&out, got, true); failed != tc.wantFailed {
				t.Errorf("report failed = %v, want %v", failed, tc.wantFailed)
			}
			for _, line := range tc.wantLines {
				if !strings.Contains(out.String(), line) {
					t.Errorf("report lacks %q:\n%s", line, out.String())
				}
			}
		})
	}
}
