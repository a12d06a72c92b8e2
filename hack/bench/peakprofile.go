package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime/metrics"
	"runtime/pprof"
	"time"
)

// peakProfiler keeps the heap profile taken at the highest live heap a
// child reached, for -memprofile: peak RSS is set by the heap at its
// peak (the first full read and listing), not by the idle state the
// after-passes profile shows. A heap profile's in-use figures are those of
// the last completed GC, so the watcher snapshots one each time a GC
// finishes with a live heap above every earlier one.
type peakProfiler struct {
	path string
	stop chan struct{}
	done chan struct{}
	peak uint64
	prof bytes.Buffer
}

// watchPeak starts a peakProfiler writing to path on stop; nil when path
// is empty (no -memprofile).
func watchPeak(path string) *peakProfiler {
	if path == "" {
		return nil
	}
	p := &peakProfiler{path: path, stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

func (p *peakProfiler) run() {
	defer close(p.done)
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}
	var cycles uint64
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		metrics.Read(sample)
		live, n := sample[0].Value.Uint64(), sample[1].Value.Uint64()
		if n == cycles || live <= p.peak {
			cycles = n
			continue
		}
		cycles, p.peak = n, live
		p.prof.Reset()
		_ = pprof.Lookup("heap").WriteTo(&p.prof, 0)
	}
}

// finish stops the watcher and writes the peak's profile; it reports the
// peak live heap on stderr.
func (p *peakProfiler) finish() {
	if p == nil {
		return
	}
	close(p.stop)
	<-p.done
	if err := os.WriteFile(p.path, p.prof.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "bench: memprofile:", err)
		return
	}
	fmt.Fprintf(os.Stderr, "bench: heap profile at the live peak (%d MiB after a GC) in %s\n", p.peak>>20, p.path)
}
