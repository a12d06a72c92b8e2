//go:build unix

package naming

import (
	"syscall"
	"time"
)

// processCPU is user+system CPU time of the test process. Benchmarks report
// it next to wall time because the shared build machine is often busy.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
