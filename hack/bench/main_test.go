package main

import (
	"context"
	"os"
	"strings"
	"testing"
)

// TestMain lets the test binary serve as the bench's child processes
// (startChildProc runs os.Executable with -child=...), so tests exercise
// the same multi-process wiring as `make bench`.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "-child=") {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestScaleChildStoreInAnotherProcess: the scale child reaches a store and
// EC2 served by an infra child, names nothing on its idle passes and
// reads only deltas.
func TestScaleChildStoreInAnotherProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an infra child process with the embedded store and fake EC2 (-short)")
	}
	t.Setenv("TMPDIR", t.TempDir())
	cfg, err := parseFlags([]string{"-steady-passes", "2"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := runScale(context.Background(), cfg, 300)
	if err != nil {
		t.Fatal(err)
	}
	if res.IdleChanges != 0 || res.IdleFullRead != 0 {
		t.Errorf("idle passes: %d changes, %d full reads; want 0 and 0", res.IdleChanges, res.IdleFullRead)
	}
	if res.PeakRSS <= 0 || res.FirstPassS <= 0 {
		t.Errorf("peak RSS %d, first pass %.3fs: not measured", res.PeakRSS, res.FirstPassS)
	}
}
