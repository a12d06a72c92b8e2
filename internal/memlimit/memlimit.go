// Package memlimit sets the Go runtime's soft memory limit from the
// container's memory limit, which the Helm chart passes in
// AEROSTAT_MEMORY_LIMIT (the downward API's limits.memory, in bytes).
//
// Without a soft limit the garbage collector lets the heap grow to twice
// what was live after the last collection (GOGC=100). A controller whose
// live heap is 60 MB at 50,000 names but which allocates a whole listing
// and a full ledger read per pass then peaks far above its live heap, and
// near a container limit the kernel kills it instead of the collector
// working harder. With GOMEMLIMIT at 90 % of the container's limit the
// collector runs more often as the heap nears it; the other 10 % is room
// for what the runtime's limit does not see (memory the kernel charges to
// the container outside the Go runtime, such as page cache).
package memlimit

import (
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
)

// Env is the variable the chart fills from the container's memory limit.
const Env = "AEROSTAT_MEMORY_LIMIT"

// Fraction of the container limit the soft limit is set to.
const Fraction = 0.9

// Limit returns the soft limit to set, from getenv: 90 % of Env's bytes.
// ok is false when there is nothing to set: GOMEMLIMIT is set (the user's
// choice, which the runtime already applied) or Env is empty. The error
// names the variable and value when Env is not a positive whole number of
// bytes.
func Limit(getenv func(string) string) (limit int64, ok bool, err error) {
	if getenv("GOMEMLIMIT") != "" {
		return 0, false, nil
	}
	v := strings.TrimSpace(getenv(Env))
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, false, fmt.Errorf("%s=%q: want the container's memory limit in bytes (a positive integer)", Env, v)
	}
	return int64(float64(n) * Fraction), true, nil
}

// Apply sets the runtime's soft memory limit from getenv (see Limit) and
// returns the limit now in force (math.MaxInt64: none).
func Apply(getenv func(string) string) (int64, error) {
	limit, ok, err := Limit(getenv)
	if err != nil {
		return debug.SetMemoryLimit(-1), err
	}
	if ok {
		debug.SetMemoryLimit(limit)
	}
	return debug.SetMemoryLimit(-1), nil
}
