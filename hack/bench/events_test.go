package main

import (
	"context"
	"testing"
)

// TestEventsChurnConverges runs the events comparison's child in both
// modes on a tiny fleet: every replacement must be bound and reach every
// hosts file, with no failed pass. Without it, a pass that fails on every
// tick (as when the controller could not read its release budget through
// the bench's store wrapper) printed latencies without samples and the
// bench still exited 0.
func TestEventsChurnConverges(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the embedded store, fake EC2 and SQS and agents (-short)")
	}
	t.Setenv("TMPDIR", t.TempDir())
	for _, mode := range []string{modePoll, modeEvents} {
		t.Run(mode, func(t *testing.T) {
			cfg, err := parseFlags([]string{"-quick", "-agents", "2", "-events-churn", "2",
				"-events-window", "1s", "-poll", "300ms", "-events-poll", "1s", "-timeout", "60s"})
			if err != nil {
				t.Fatal(err)
			}
			res, err := runEventsScenario(context.Background(), cfg, 12, mode)
			if err != nil {
				t.Fatal(err)
			}
			if res.Unfinished != 0 || len(res.Notes) != 0 {
				t.Fatalf("%d changes unfinished; notes: %q", res.Unfinished, res.Notes)
			}
			if res.LaunchToBound.N != 2 || res.TerminateToReleased.N != 2 || res.TerminateToFiles.N != 2 {
				t.Errorf("samples: %d launches bound, %d terminations released, %d gone from every file; want 2 of each",
					res.LaunchToBound.N, res.TerminateToReleased.N, res.TerminateToFiles.N)
			}
		})
	}
}
