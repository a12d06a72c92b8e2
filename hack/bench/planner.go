package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/hostsfile"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// plannerResult is naming.Plan on one input size.
type plannerResult struct {
	N int `json:"n"`
	// Steady: every instance running and named (what most passes see).
	SteadyMs     float64 `json:"steady_ms"`
	SteadyCPUMs  float64 `json:"steady_cpu_ms"`
	SteadyAllocs int64   `json:"steady_allocs"`
	// Churn: a tenth terminated, a tenth new, every fifth name a gap.
	ChurnMs      float64 `json:"churn_ms"`
	ChurnCPUMs   float64 `json:"churn_cpu_ms"`
	ChurnAllocs  int64   `json:"churn_allocs"`
	ChurnChanges int     `json:"churn_changes"`
	NsPerInst    float64 `json:"churn_cpu_ns_per_instance"`
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func plannerInput(n int, churn bool) naming.Input {
	in := naming.Input{
		Policy:   naming.Policy{Service: service, Scheme: naming.Iterative, Reap: controllers.DefaultReap()},
		Observed: naming.Observation{Complete: true},
		Now:      t0.Add(time.Hour),
	}
	if churn {
		in.Policy.Reap.MaxReleaseFraction = 1
	}
	for i := range n {
		id := fmt.Sprintf("i-%08d", i)
		inst := naming.Instance{ID: id, PrivateIP: fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff),
			State: naming.StateRunning, LaunchTime: t0.Add(time.Duration(i) * time.Second)}
		rid := id
		if churn {
			switch {
			case i%10 == 0:
				inst.State = naming.StateTerminated
			case i%10 == 1:
				in.Observed.Instances = append(in.Observed.Instances, inst)
				continue // new, unnamed
			}
			if i%5 == 2 {
				rid = ""
			}
		}
		in.Observed.Instances = append(in.Observed.Instances, inst)
		r := naming.Record{Hostname: fmt.Sprintf("%s-%d", service, i), Service: service, Scheme: naming.Iterative,
			Ordinal: i, InstanceID: rid, Rev: int64(i + 1), UpdatedAt: t0, ClaimedAt: t0}
		if rid != "" {
			r.IP = inst.PrivateIP
		} else {
			r.ClaimedAt = time.Time{}
		}
		in.Records = append(in.Records, r)
	}
	return in
}

// benchPlan returns wall and CPU time per Plan: on a shared machine the
// wall time includes waiting for a core, the CPU time does not.
func benchPlan(in naming.Input) (ms, cpuMs float64, allocs int64, changes int, err error) {
	res, err := naming.Plan(in)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	r := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		c0 := procCPU("self")
		for b.Loop() {
			if _, err := naming.Plan(in); err != nil {
				b.Fatal(err)
			}
		}
		cpuMs = float64((procCPU("self") - c0).Microseconds()) / 1000 / float64(b.N)
	})
	return float64(r.NsPerOp()) / 1e6, cpuMs, r.AllocsPerOp(), len(res.Changes), nil
}

func runPlanner(sizes []int) ([]plannerResult, error) {
	var out []plannerResult
	for _, n := range sizes {
		p := plannerResult{N: n}
		var err error
		var changes int
		if p.SteadyMs, p.SteadyCPUMs, p.SteadyAllocs, changes, err = benchPlan(plannerInput(n, false)); err != nil {
			return nil, err
		}
		if changes != 0 {
			return nil, fmt.Errorf("planner steady input at %d: %d changes, want 0", n, changes)
		}
		if p.ChurnMs, p.ChurnCPUMs, p.ChurnAllocs, p.ChurnChanges, err = benchPlan(plannerInput(n, true)); err != nil {
			return nil, err
		}
		p.NsPerInst = p.ChurnCPUMs * 1e6 / float64(n)
		fmt.Fprintf(os.Stderr, "bench: planner n=%d steady %.2fms (cpu %.2fms) churn %.2fms (cpu %.2fms, %d changes)\n",
			n, p.SteadyMs, p.SteadyCPUMs, p.ChurnMs, p.ChurnCPUMs, p.ChurnChanges)
		out = append(out, p)
	}
	return out, nil
}

// renderResult is one agent update at n names: entries from records,
// render, compare, atomic write (one name changed each time).
type renderResult struct {
	N      int     `json:"n"`
	Ms     float64 `json:"render_write_ms"`
	Allocs int64   `json:"allocs"`
	Bytes  int64   `json:"file_bytes"`
}

func runRender(n int) (renderResult, error) {
	dir, err := os.MkdirTemp("", "aerostat-bench-render-")
	if err != nil {
		return renderResult{}, err
	}
	defer os.RemoveAll(dir)
	recs := make([]naming.Record, n)
	for i := range recs {
		recs[i] = naming.Record{Hostname: fmt.Sprintf("%s-%d", service, i), InstanceID: fmt.Sprintf("i-%d", i),
			IP: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)}
	}
	w := &hostsfile.Writer{Path: filepath.Join(dir, "hosts")}
	if err := os.WriteFile(w.Path, []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
		return renderResult{}, err
	}
	var benchErr error
	i := 0
	r := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			recs[i%n].IP = fmt.Sprintf("10.200.%d.%d", i>>8&255, i&255)
			i++
			entries, _ := hostsfile.FromRecords(recs)
			if _, err := w.Sync(entries, nil, hostsfile.SyncOptions{}); err != nil {
				benchErr = err
				b.FailNow()
			}
		}
	})
	if benchErr != nil {
		return renderResult{}, benchErr
	}
	st, err := os.Stat(w.Path)
	if err != nil {
		return renderResult{}, err
	}
	return renderResult{N: n, Ms: float64(r.NsPerOp()) / 1e6, Allocs: r.AllocsPerOp(), Bytes: st.Size()}, nil
}
