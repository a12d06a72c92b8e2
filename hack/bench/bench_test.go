package main

import (
	"slices"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	tests := map[string]struct {
		in   []time.Duration
		want dist
	}{
		"empty":     {nil, dist{}},
		"one":       {ms(5), dist{N: 1, P50: 0.005, P99: 0.005, Max: 0.005}},
		"unsorted":  {ms(30, 10, 20), dist{N: 3, P50: 0.02, P99: 0.03, Max: 0.03}},
		"hundred p": {ms(slices.Repeat([]int{1}, 99)...), dist{N: 99, P50: 0.001, P99: 0.001, Max: 0.001}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := summarize(tc.in); got != tc.want {
				t.Errorf("summarize = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	tests := map[string]struct {
		args    []string
		sizes   []int
		agents  int
		wantErr bool
	}{
		"defaults":          {nil, []int{100, 1000, 10000}, 20, false},
		"underscores":       {[]string{"-n", "1_000, 50"}, []int{1000, 50}, 20, false},
		"quick":             {[]string{"-quick"}, []int{100, 1000}, 5, false},
		"quick keeps flags": {[]string{"-quick", "-agents", "7"}, []int{100, 1000}, 7, false},
		"bad size":          {[]string{"-n", "10,x"}, nil, 0, true},
		"zero size":         {[]string{"-n", "0"}, nil, 0, true},
		"no agents":         {[]string{"-agents", "0"}, nil, 0, true},
		"no churn":          {[]string{"-churn", "0"}, nil, 0, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := parseFlags(tc.args)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseFlags(%q) error = %v, want error %v", tc.args, err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if !slices.Equal(c.sizes, tc.sizes) || c.agents != tc.agents {
				t.Errorf("parseFlags(%q) = sizes %v agents %d, want %v %d", tc.args, c.sizes, c.agents, tc.sizes, tc.agents)
			}
		})
	}
}

func TestTrackerWaitsForEveryAgent(t *testing.T) {
	t0 := time.Now()
	tr := newTracker(2)
	tr.expectBind(kindLaunch, "i-1", t0)
	tr.expectGone("web-0", "10.0.0.1", t0)
	// Agent 0 already shows the new name before the bind is known.
	tr.confirm(0, t0.Add(time.Second), map[string]string{"web-1": "10.0.0.2", "web-0": "10.0.0.1"})
	tr.bound("i-1", "web-1", "10.0.0.2", t0.Add(2*time.Second))
	if p := tr.pending(); p != 2 {
		t.Fatalf("pending = %d after one agent, want 2", p)
	}
	tr.confirm(1, t0.Add(3*time.Second), map[string]string{"web-1": "10.0.0.2"})
	tr.confirm(0, t0.Add(4*time.Second), map[string]string{"web-1": "10.0.0.2"})
	if p := tr.pending(); p != 0 {
		t.Fatalf("pending = %d, want 0", p)
	}
	toBound, toFiles, boundToFiles, unfinished := tr.results()
	if unfinished != 0 || toBound[kindLaunch][0] != 2*time.Second || toFiles[kindLaunch][0] != 3*time.Second ||
		toFiles[kindRelease][0] != 4*time.Second || boundToFiles[0] != time.Second {
		t.Errorf("results = %v %v %v %d", toBound, toFiles, boundToFiles, unfinished)
	}
}

// TestProcStatusParts: the parts of this process's RSS add up to it (no
// shared memory here) and the peak is at least the current figure.
func TestProcStatusParts(t *testing.T) {
	m := procStatus("self")
	if m.RSS <= 0 || m.Anon <= 0 || m.File <= 0 {
		t.Fatalf("procStatus(self) = %+v, want every figure above zero", m)
	}
	if m.PeakRSS < m.RSS {
		t.Errorf("peak RSS %d below RSS %d", m.PeakRSS, m.RSS)
	}
	// Read at one instant by the kernel: anon + file (+ shmem, none here).
	if m.Anon+m.File > m.RSS {
		t.Errorf("anon %d + file %d > RSS %d", m.Anon, m.File, m.RSS)
	}
	if m := procStatus("no-such-pid"); m != (procMem{}) {
		t.Errorf("procStatus of a missing process = %+v, want zeros", m)
	}
}
