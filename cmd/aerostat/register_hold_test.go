package main

import (
	"context"
	"testing"
	"time"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// TestRegisterRespectsHoldBack: a node registering itself does not take a
// name the controller released moments ago, but the node that held it
// gets it back.
func TestRegisterRespectsHoldBack(t *testing.T) {
	e := newNodeEnv(t, "web\n")
	if out, err := e.run(t, "register", "--instance-id", "i-old", "--ip", "10.0.0.5"); err != nil || out != "web-0\n" {
		t.Fatalf("register = %q, %v", out, err)
	}
	recs, _ := e.store.Records(context.Background(), "web")
	// The controller saw i-old terminate and released web-0 just now.
	if _, err := e.store.Apply(context.Background(), []naming.Change{{Type: naming.Release, Hostname: "web-0",
		ExpectExists: true, ExpectInstanceID: "i-old", ExpectRev: recs[0].Rev, ReleasedAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if out, err := e.run(t, "register", "--instance-id", "i-new", "--ip", "10.0.0.6"); err != nil || out != "web-1\n" {
		t.Fatalf("register of a new node during the hold = %q, %v; want web-1", out, err)
	}
	if out, err := e.run(t, "register", "--instance-id", "i-old", "--ip", "10.0.0.5"); err != nil || out != "web-0\n" {
		t.Fatalf("register of the last holder = %q, %v; want web-0 back", out, err)
	}
}
