//go:build !agentonly

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/aerostat-io/aerostat/controllers"
)

// TestReapFlags: the standalone reap flags reach the policy every
// standalone service gets; a negative one is refused naming the flag and
// the value.
func TestReapFlags(t *testing.T) {
	tests := map[string]struct {
		args                           []string
		wantHold, wantStop, wantWindow time.Duration
		wantErr                        string
	}{
		"defaults": {wantHold: controllers.DefaultHoldBack, wantStop: controllers.DefaultStoppedGracePeriod, wantWindow: controllers.DefaultReleaseWindow},
		"set": {args: []string{"--hold-back=1m", "--stopped-grace-period=2h", "--release-window=30m"},
			wantHold: time.Minute, wantStop: 2 * time.Hour, wantWindow: 30 * time.Minute},
		"all zero is 1.x":         {args: []string{"--hold-back=0", "--stopped-grace-period=0", "--release-window=0"}},
		"negative hold-back":      {args: []string{"--hold-back=-1s"}, wantErr: "--hold-back -1s: must not be negative"},
		"negative stopped grace":  {args: []string{"--stopped-grace-period=-1s"}, wantErr: "--stopped-grace-period -1s"},
		"negative release window": {args: []string{"--release-window=-10m"}, wantErr: "--release-window -10m0s: must not be negative"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var r reapFlags
			fl := pflag.NewFlagSet("test", pflag.ContinueOnError)
			r.register(fl)
			if err := fl.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			p, err := r.policy()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.HoldBack != tc.wantHold || p.StoppedGracePeriod != tc.wantStop || p.ReleaseWindow != tc.wantWindow {
				t.Errorf("policy %+v, want holdBack %v stoppedGracePeriod %v releaseWindow %v", p, tc.wantHold, tc.wantStop, tc.wantWindow)
			}
			if p.MaxReleaseFraction != controllers.DefaultReap().MaxReleaseFraction {
				t.Errorf("MaxReleaseFraction %v changed", p.MaxReleaseFraction)
			}
		})
	}
}
