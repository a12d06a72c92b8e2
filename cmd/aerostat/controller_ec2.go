//go:build !agentonly

package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/cloud"
)

// ec2Flags are the controller's flags for EC2 (call budget, tag
// write-back) and for the names it publishes beyond the agents (the hosts
// ConfigMap for CoreDNS).
type ec2Flags struct {
	callsPerSecond float64
	burst          int
	tagWriteBack   bool
	tagsPerPass    int
	hostsConfigMap string
}

func (f *ec2Flags) register(fl *pflag.FlagSet) {
	fl.Float64Var(&f.callsPerSecond, "ec2-calls-per-second", cloud.DefaultCallsPerSecond,
		"EC2 API calls a second this controller may make, pages and retries included, shared by all services (EC2 refills 20 Describe calls a second for the whole account); negative: unlimited")
	fl.IntVar(&f.burst, "ec2-burst", 1, "calls the EC2 budget lets through at once")
	fl.BoolVar(&f.tagWriteBack, "tag-write-back", false,
		"write each instance's name to its EC2 tags Name and aerostat:hostname (needs ec2:CreateTags); uses only spare call budget")
	fl.IntVar(&f.tagsPerPass, "tag-write-back-per-pass", 20, "most CreateTags calls one pass of one service makes (one a renamed instance)")
	fl.StringVar(&f.hostsConfigMap, "hosts-configmap", "",
		"namespace/name of a ConfigMap the leader keeps in hosts-file format (key \"hosts\") for CoreDNS's hosts plugin, so pods resolve the names; empty disables")
}

func (f *ec2Flags) validate(standalone bool) error {
	if f.callsPerSecond == 0 {
		return fmt.Errorf("--ec2-calls-per-second 0: want a positive rate, or negative for unlimited")
	}
	if f.burst < 1 {
		return fmt.Errorf("--ec2-burst %d: want at least 1", f.burst)
	}
	if f.tagsPerPass < 1 {
		return fmt.Errorf("--tag-write-back-per-pass %d: want at least 1", f.tagsPerPass)
	}
	if f.hostsConfigMap != "" {
		if standalone {
			return fmt.Errorf("--hosts-configmap %q: needs Kubernetes, not --standalone", f.hostsConfigMap)
		}
		if _, err := controllers.ParseConfigMapRef(f.hostsConfigMap); err != nil {
			return err
		}
	}
	return nil
}
