package controllers

import (
	"errors"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestPassHealth(t *testing.T) {
	denied := errors.New("describing instances: UnauthorizedOperation")
	type step struct {
		after   time.Duration // advance the clock first
		service string
		err     error // observed; nil with forget=false is a success
		forget  bool
	}
	tests := map[string]struct {
		steps   []step
		wantErr string // "" = ready
	}{
		"no pass yet (a standby)": {},
		"passing":                 {steps: []step{{service: "web"}, {after: time.Hour, service: "web"}}},
		"failing within the window": {steps: []step{
			{service: "web", err: denied}, {after: 50 * time.Second, service: "web", err: denied}}},
		"failing past the window": {steps: []step{
			{service: "web", err: denied}, {after: 61 * time.Second, service: "web", err: denied}},
			wantErr: `passes of service "web" failing for 1m1s (since 1970-01-01T00:00:00Z): describing instances: UnauthorizedOperation`},
		"window counts from the first failure, not the last": {steps: []step{
			{service: "web", err: denied}, {after: 40 * time.Second, service: "web", err: denied},
			{after: 40 * time.Second, service: "web", err: denied}},
			wantErr: `failing for 1m20s`},
		"a success in between restarts the window": {steps: []step{
			{service: "web", err: denied}, {after: 40 * time.Second, service: "web"},
			{service: "web", err: denied}, {after: 40 * time.Second, service: "web", err: denied}}},
		"another service passing does not hide a failing one": {steps: []step{
			{service: "web", err: denied}, {after: 2 * time.Minute, service: "db"}},
			wantErr: `service "web"`},
		"a deleted service is forgotten": {steps: []step{
			{service: "web", err: denied}, {after: 2 * time.Minute, service: "web", forget: true}}},
		"standalone passes": {steps: []step{{err: denied}, {after: 2 * time.Minute, err: denied}},
			wantErr: "passes failing for 2m0s"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			clk := clocktesting.NewFakePassiveClock(time.Unix(0, 0))
			h := NewPassHealth(clk, PassFailureWindow(10*time.Second))
			for _, s := range tt.steps {
				clk.SetTime(clk.Now().Add(s.after))
				if s.forget {
					h.Forget(s.service)
				} else {
					h.Observe(s.service, s.err)
				}
			}
			err := h.Check(nil)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("not ready: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Check() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestPassFailureWindow(t *testing.T) {
	for interval, want := range map[time.Duration]time.Duration{
		10 * time.Second: time.Minute, 60 * time.Second: 3 * time.Minute} {
		if got := PassFailureWindow(interval); got != want {
			t.Errorf("PassFailureWindow(%v) = %v, want %v", interval, got, want)
		}
	}
}
