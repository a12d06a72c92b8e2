package naming

import (
	"fmt"
	"testing"
	"time"
)

// benchInput is a steady fleet of n instances where a tenth died, a tenth
// are new and every fifth name is already a gap.
func benchInput(n int) Input {
	in := Input{
		Policy:   Policy{Service: "web", Scheme: Iterative, Reap: ReapPolicy{MaxReleaseFraction: 1}},
		Observed: Observation{Complete: true},
		Now:      t0.Add(time.Hour),
	}
	for i := range n {
		id := fmt.Sprintf("i-%08d", i)
		inst := Instance{ID: id, PrivateIP: fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff),
			State: StateRunning, LaunchTime: t0.Add(time.Duration(i) * time.Second)}
		switch {
		case i%10 == 0:
			inst.State = StateTerminated
		case i%10 == 1:
			in.Observed.Instances = append(in.Observed.Instances, inst)
			continue // new, unnamed
		}
		in.Observed.Instances = append(in.Observed.Instances, inst)
		rid := id
		if i%5 == 2 {
			rid = ""
		}
		r := Record{Hostname: fmt.Sprintf("web-%d", i), Service: "web", InstanceID: rid, Rev: int64(i + 1)}
		if rid != "" {
			r.IP = inst.PrivateIP
		}
		in.Records = append(in.Records, r)
	}
	return in
}

// benchMasterful is benchInput as a masterful service where every instance
// asks for an alias, a quarter of them contested.
func benchMasterful(n int) Input {
	in := benchInput(n)
	in.Policy.Service, in.Policy.Scheme = "db", Masterful
	in.Policy.InstanceAliases = make(map[string][]string, n)
	for i := range in.Records {
		r := &in.Records[i]
		r.Service = "db"
		r.Hostname = Hostname("db", Masterful, RoleSlave, i+1)
		if i == 0 {
			r.Hostname = "db-master"
		}
	}
	for i, inst := range in.Observed.Instances {
		in.Policy.InstanceAliases[inst.ID] = []string{fmt.Sprintf("a%d.db", i-i%4*(i%2))}
	}
	return in
}

func BenchmarkPlan(b *testing.B) {
	type bench struct {
		name string
		in   Input
	}
	var benches []bench
	for _, n := range []int{1_000, 10_000, 50_000} {
		benches = append(benches, bench{fmt.Sprintf("instances=%d", n), benchInput(n)})
	}
	benches = append(benches, bench{"masterful-aliases/instances=50000", benchMasterful(50_000)})
	for _, bc := range benches {
		in := bc.in
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				res, err := Plan(in)
				if err != nil || !res.HasChanges() {
					b.Fatal("no plan", err)
				}
			}
			b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}
