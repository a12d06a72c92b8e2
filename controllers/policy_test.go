package controllers_test

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/aerostat-io/aerostat/api/v1alpha1"
	"github.com/aerostat-io/aerostat/controllers"
)

func TestServiceFromSpecReapPolicy(t *testing.T) {
	d := func(x time.Duration) *metav1.Duration { return &metav1.Duration{Duration: x} }
	tests := map[string]struct {
		reap                           v1alpha1.ReapPolicy
		wantHold, wantStop, wantWindow time.Duration
		wantErr                        string
	}{
		"defaults": {wantHold: controllers.DefaultHoldBack, wantStop: controllers.DefaultStoppedGracePeriod, wantWindow: controllers.DefaultReleaseWindow},
		"set": {reap: v1alpha1.ReapPolicy{HoldBack: d(10 * time.Minute), StoppedGracePeriod: d(2 * time.Hour), ReleaseWindow: d(time.Hour)},
			wantHold: 10 * time.Minute, wantStop: 2 * time.Hour, wantWindow: time.Hour},
		"zero is 1.x":      {reap: v1alpha1.ReapPolicy{HoldBack: d(0), StoppedGracePeriod: d(0), ReleaseWindow: d(0)}},
		"negative hold":    {reap: v1alpha1.ReapPolicy{HoldBack: d(-time.Second)}, wantErr: "spec.reapPolicy.holdBack"},
		"negative stopped": {reap: v1alpha1.ReapPolicy{StoppedGracePeriod: d(-time.Second)}, wantErr: "spec.reapPolicy.stoppedGracePeriod"},
		"negative window":  {reap: v1alpha1.ReapPolicy{ReleaseWindow: d(-time.Minute)}, wantErr: `spec.reapPolicy.releaseWindow "-1m0s": must not be negative`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			svc, err := controllers.ServiceFromSpec(&v1alpha1.NamingService{Spec: v1alpha1.NamingServiceSpec{Service: "web", ReapPolicy: tc.reap}})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r := svc.Policy.Reap; r.HoldBack != tc.wantHold || r.StoppedGracePeriod != tc.wantStop || r.ReleaseWindow != tc.wantWindow {
				t.Errorf("reap = %+v, want holdBack %v stoppedGracePeriod %v releaseWindow %v", r, tc.wantHold, tc.wantStop, tc.wantWindow)
			}
		})
	}
}
