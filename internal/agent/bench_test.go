package agent

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/feed"
	"github.com/aerostat-io/aerostat/internal/hostsfile"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIdleMinute is one minute of an idle agent polling the ledger
// once a second (60 Rev reads). cpu-ms/min counts the whole process, so it
// includes the embedded store serving the reads: an upper bound.
func BenchmarkIdleMinute(b *testing.B) {
	store := ledgertest.New(b)
	fc := clocktesting.NewFakeClock(t0)
	a, err := New(Options{
		Source:  NewLedgerSource(store, feed.FollowerOptions{Clock: fc, Overlap: time.Second, ResyncEvery: time.Hour}),
		Writer:  &hostsfile.Writer{Path: filepath.Join(b.TempDir(), "hosts")},
		Clock:   fc,
		Metrics: prometheus.NewRegistry(),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for range 5 { // settle: first full read, follow-up read, overlap window
		fc.Step(time.Second)
		if err := a.SyncOnce(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := cpuTime()
	for b.Loop() {
		for range 60 {
			fc.Step(time.Second)
			if err := a.SyncOnce(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64((cpuTime()-start).Milliseconds())/float64(b.N), "cpu-ms/min")
}
