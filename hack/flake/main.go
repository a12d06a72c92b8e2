// Command flake runs the test suite N times under the race detector and
// reports every test that failed at least once, with its failure rate, and
// one line per package. It exits 1 when anything failed.
//
//	go run ./hack/flake -n 20 ./...
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// event is one line of `go test -json` (test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// result counts one test's (or, with Test empty, one package's) outcomes.
type result struct {
	pass, fail, skip int
	firstFailure     []string // output of the first failing run
}

type key struct{ pkg, test string }

// tally reads test2json events and counts each test's outcomes; a
// package's own entry (Test "") counts its runs of the binary: a fail
// there without a failing test is a build error, panic or timeout.
func tally(r io.Reader) (map[key]*result, error) {
	out := map[key]*result{}
	pending := map[key][]string{} // output of the current run of each test
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			// go test prints build errors as plain text before the JSON.
			continue
		}
		k := key{e.Package, e.Test}
		res := out[k]
		if res == nil {
			res = &result{}
			out[k] = res
		}
		switch e.Action {
		case "run":
			pending[k] = nil
		case "output":
			if len(pending[k]) < 40 {
				pending[k] = append(pending[k], e.Output)
			}
		case "pass":
			res.pass++
		case "skip":
			res.skip++
		case "fail":
			res.fail++
			if res.firstFailure == nil {
				res.firstFailure = pending[k]
			}
		}
	}
	for k, res := range out {
		if res.pass+res.fail+res.skip == 0 {
			delete(out, k)
		}
	}
	return out, sc.Err()
}

// report prints one line per failing test, then one line per package; it
// returns whether anything failed.
func report(w io.Writer, results map[key]*result, verbose bool) bool {
	keys := make([]key, 0, len(results))
	for k := range results {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := strings.Compare(a.pkg, b.pkg); c != 0 {
			return c
		}
		return strings.Compare(a.test, b.test)
	})
	type pkgSum struct{ tests, failing, runs, failedRuns int }
	sums := map[string]*pkgSum{}
	failed := false
	for _, k := range keys {
		res := results[k]
		s := sums[k.pkg]
		if s == nil {
			s = &pkgSum{}
			sums[k.pkg] = s
		}
		runs := res.pass + res.fail
		if k.test == "" {
			s.runs, s.failedRuns = runs, res.fail
		} else {
			s.tests++
		}
		if res.fail == 0 {
			continue
		}
		failed = true
		if k.test != "" {
			s.failing++
		}
		name := k.test
		if name == "" {
			name = "(package binary)"
		}
		fmt.Fprintf(w, "FLAKY %s %s: failed %d of %d runs (%.0f%%)\n", k.pkg, name, res.fail, runs, 100*float64(res.fail)/float64(runs))
		if verbose {
			for _, line := range res.firstFailure {
				fmt.Fprintf(w, "    %s", line)
			}
		}
	}
	fmt.Fprintln(w, "\npackage\ttests\tfailing tests\tbinary runs failed")
	for _, k := range keys {
		if k.test != "" {
			continue
		}
		s := sums[k.pkg]
		fmt.Fprintf(w, "%s\t%d\t%d\t%d/%d\n", k.pkg, s.tests, s.failing, s.failedRuns, s.runs)
	}
	return failed
}

func main() {
	n := flag.Int("n", 20, "runs of each test (go test -count)")
	race := flag.Bool("race", true, "run under the race detector")
	run := flag.String("run", "", "go test -run pattern (default every test)")
	timeout := flag.Duration("timeout", 0, "go test -timeout, per package binary, which runs all n runs (default 10m a run)")
	verbose := flag.Bool("v", true, "print the output of each failing test's first failure")
	flag.Parse()
	pkgs := flag.Args()
	if len(pkgs) == 0 {
		pkgs = []string{"./..."}
	}
	if *timeout == 0 {
		// One binary runs every run of its package: the slowest package
		// (cmd/aerostat, ~3 min a run under -race on 2 cores) would hit
		// a fixed limit at large n.
		*timeout = time.Duration(max(*n, 1)) * 10 * time.Minute
	}
	args := []string{"test", "-json", fmt.Sprintf("-count=%d", *n), "-timeout=" + timeout.String()}
	if *race {
		args = append(args, "-race")
	}
	if *run != "" {
		args = append(args, "-run="+*run)
	}
	cmd := exec.Command("go", append(args, pkgs...)...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "flake:", err)
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "flake: go %s\n", strings.Join(cmd.Args[1:], " "))
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "flake: starting go test:", err)
		os.Exit(2)
	}
	results, err := tally(stdout)
	waitErr := cmd.Wait()
	if err != nil {
		fmt.Fprintln(os.Stderr, "flake: reading go test output:", err)
		os.Exit(2)
	}
	if report(os.Stdout, results, *verbose) {
		os.Exit(1)
	}
	if waitErr != nil { // e.g. a build failure, which has no test events
		fmt.Fprintln(os.Stderr, "flake: go test:", waitErr)
		os.Exit(1)
	}
	fmt.Printf("\nno failures in %d runs\n", *n)
}
