package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDemoOnce runs `aerostat demo --once` as make run would, without the
// pauses, and checks its exit status, its verdict and the file it wrote.
func TestDemoOnce(t *testing.T) {
	hosts := filepath.Join(t.TempDir(), "demo-hosts")
	out, _, err := runCmd(t, "demo", "--once", "--step-delay", "0", "--hosts-file", hosts)
	if err != nil {
		t.Fatalf("demo --once: %v (exit %d)\n%s", err, exitCode(err), out)
	}
	if strings.Contains(out, "FAIL") || !strings.Contains(out, "All invariants held.") {
		t.Errorf("demo output:\n%s", out)
	}
	// Three agents follow the controller's feed; each change is timed
	// until all of them hold it.
	if !regexp.MustCompile(`(?m)^      convergence: 3 of 3 hosts at rev \d+, \d+ ms after the change$`).MatchString(out) {
		t.Errorf("demo output lacks a convergence line:\n%s", out)
	}
	data, err := os.ReadFile(hosts)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"web-0", "web-1", "web-2", "web-3", "web-4", "web-5", "db-master", "db-slave-1", "db-slave-2"} {
		if !strings.Contains(string(data), " "+h+"\n") {
			t.Errorf("hosts file lacks %s:\n%s", h, data)
		}
	}
}

func TestDemoBadFlags(t *testing.T) {
	_, _, err := runCmd(t, "demo", "--once", "--web", "1", "--hosts-file", filepath.Join(t.TempDir(), "h"))
	if err == nil || !strings.Contains(err.Error(), "web fleet size 1") {
		t.Errorf("--web 1: err = %v", err)
	}
}
