package controllers

import (
	"testing"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// TestPlanChangeActions covers the action names, moves by their typed fields.
func TestPlanChangeActions(t *testing.T) {
	tests := map[string]struct {
		c    naming.Change
		want string
	}{
		"master move": {naming.Change{Type: naming.Bind, Hostname: "db-master", Role: naming.RoleMaster, InstanceID: "i-2", ExpectInstanceID: "i-1"}, "move-master"},
		"new master":  {naming.Change{Type: naming.Bind, Hostname: "db-master", Role: naming.RoleMaster, InstanceID: "i-2"}, "bind"},
		"alias move":  {naming.Change{Type: naming.SetAliases, Hostname: "web-1", Cause: naming.CauseAliasesChanged, MovedAliases: []naming.AliasMove{{Alias: "www", From: "web-0"}}}, "move-alias"},
		"aliases":     {naming.Change{Type: naming.SetAliases, Hostname: "web-1", Cause: naming.CauseAliasesChanged}, "set-aliases"},
		"ip":          {naming.Change{Type: naming.SetIP, Hostname: "web-1"}, "set-ip"},
		"rewrite":     {naming.Change{Type: naming.Bind, Hostname: "web-1", InstanceID: "i-1", ExpectInstanceID: "i-1"}, "update"},
		"release":     {naming.Change{Type: naming.Release, Hostname: "web-1", ExpectInstanceID: "i-1"}, "release"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := planChange("svc", tc.c).Action; got != tc.want {
				t.Errorf("action = %q, want %q", got, tc.want)
			}
		})
	}
}
