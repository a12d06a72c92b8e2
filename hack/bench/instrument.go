package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// countingStore wraps the real ledger to count what a caller asks of it.
// Apply validates everything first and then applies the changes one at a
// time, exactly as ledger.Mongo.Apply does, so that each change's commit
// time is known (onCommit) and not just the end of the batch.
type countingStore struct {
	inner ledger.Store
	// The release log and policies are not counted; they are passed
	// through so the controller runs with its release budget and
	// publishes policies, as it does on the real ledger.
	ledger.ReleaseLog
	ledger.PolicyStore
	onCommit func(c naming.Change, at time.Time)

	mu                                sync.Mutex
	reads, docsRead, revReads, deltas int
	writes, conflicts                 int
	readTime, deltaTime, writeTime    time.Duration
}

type storeCounts struct {
	Reads, DocsRead, RevReads, Deltas, Writes, Conflicts int
}

// counting wraps db; onCommit may be nil.
func counting(db *ledger.Mongo, onCommit func(c naming.Change, at time.Time)) *countingStore {
	return &countingStore{inner: db, ReleaseLog: db, PolicyStore: db, onCommit: onCommit}
}

func (s *countingStore) counts() storeCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return storeCounts{s.reads, s.docsRead, s.revReads, s.deltas, s.writes, s.conflicts}
}

// opTimes is the mean time of one read of records, one delta read and
// one applied change (rev counter + compare-and-set), and how many of each.
type opTimes struct {
	ReadMs  float64 `json:"records_read_ms"`
	Reads   int     `json:"records_reads"`
	DeltaMs float64 `json:"delta_read_ms"`
	Deltas  int     `json:"delta_reads"`
	WriteMs float64 `json:"write_ms"`
	Writes  int     `json:"writes"`
}

func meanOps(stores ...*countingStore) opTimes {
	var t opTimes
	var rd, dd, wd time.Duration
	for _, s := range stores {
		s.mu.Lock()
		t.Reads += s.reads
		t.Deltas += s.deltas
		t.Writes += s.writes + s.conflicts
		rd, dd, wd = rd+s.readTime, dd+s.deltaTime, wd+s.writeTime
		s.mu.Unlock()
	}
	mean := func(d time.Duration, n int) float64 {
		if n == 0 {
			return 0
		}
		return float64(d.Microseconds()) / 1000 / float64(n)
	}
	t.ReadMs, t.DeltaMs, t.WriteMs = mean(rd, t.Reads), mean(dd, t.Deltas), mean(wd, t.Writes)
	return t
}

func (a storeCounts) sub(b storeCounts) storeCounts {
	return storeCounts{a.Reads - b.Reads, a.DocsRead - b.DocsRead, a.RevReads - b.RevReads,
		a.Deltas - b.Deltas, a.Writes - b.Writes, a.Conflicts - b.Conflicts}
}

func (s *countingStore) Records(ctx context.Context, service string) ([]naming.Record, error) {
	t0 := time.Now()
	recs, err := s.inner.Records(ctx, service)
	s.mu.Lock()
	s.readTime += time.Since(t0)
	s.reads++
	s.docsRead += len(recs)
	s.mu.Unlock()
	return recs, err
}

// WalkRecords passes a full read through as the controller's copy asks
// for it (ledger.RecordWalker), counted as Records counts one.
func (s *countingStore) WalkRecords(ctx context.Context, service string, fn func(naming.Record)) error {
	w, ok := s.inner.(ledger.RecordWalker)
	if !ok {
		return fmt.Errorf("walking records: %T does not walk them", s.inner)
	}
	t0, n := time.Now(), 0
	err := w.WalkRecords(ctx, service, func(r naming.Record) { n++; fn(r) })
	s.mu.Lock()
	s.readTime += time.Since(t0)
	s.reads++
	s.docsRead += n
	s.mu.Unlock()
	return err
}

func (s *countingStore) Apply(ctx context.Context, changes []naming.Change) (int, error) {
	if err := ledger.Validate(changes); err != nil {
		return 0, err
	}
	for i := 0; i < len(changes); {
		// A run of new names goes in one call, as the ledger batches it
		// (bootstrap); its commit time is the end of the call.
		n := max(1, newNames(changes[i:]))
		t0 := time.Now()
		done, err := s.inner.Apply(ctx, changes[i:i+n])
		at := time.Now()
		s.mu.Lock()
		s.writeTime += at.Sub(t0)
		s.writes += done
		if errors.Is(err, ledger.ErrConflict) {
			s.conflicts++
		}
		s.mu.Unlock()
		if s.onCommit != nil {
			for _, c := range changes[i : i+done] {
				s.onCommit(c, at)
			}
		}
		if err != nil {
			return i + done, err
		}
		i += n
	}
	return len(changes), nil
}

// newNames counts the leading changes that create a record.
func newNames(changes []naming.Change) int {
	for i, c := range changes {
		if c.Type != naming.Bind || c.ExpectExists {
			return i
		}
	}
	return len(changes)
}

func (s *countingStore) Changes(ctx context.Context, since int64) ([]naming.Record, int64, error) {
	t0 := time.Now()
	recs, rev, err := s.inner.Changes(ctx, since)
	s.mu.Lock()
	s.deltaTime += time.Since(t0)
	s.deltas++
	s.docsRead += len(recs)
	s.mu.Unlock()
	return recs, rev, err
}

func (s *countingStore) Rev(ctx context.Context) (int64, error) {
	s.mu.Lock()
	s.revReads++
	s.mu.Unlock()
	return s.inner.Rev(ctx)
}

// procMem is a process's resident memory from /proc/<pid>/status, in
// bytes: the peak (VmHWM), the current RSS and its two parts. The file
// part is mostly the binary's own pages (shared with the page cache and
// reclaimable); the anonymous part is the heap, stacks and runtime.
type procMem struct {
	PeakRSS, RSS, Anon, File int64
}

// procStatus reads the resident memory of a process ("self" for this one);
// zeros when it cannot.
func procStatus(pid string) procMem {
	var m procMem
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return m
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmHWM:":
			m.PeakRSS = n << 10
		case "VmRSS:":
			m.RSS = n << 10
		case "RssAnon:":
			m.Anon = n << 10
		case "RssFile:":
			m.File = n << 10
		}
	}
	return m
}

// procCPU is the user+system CPU time a process has used.
func procCPU(pid string) time.Duration {
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	s := string(data)
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz
}

// dist summarises durations.
type dist struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_s"`
	P99 float64 `json:"p99_s"`
	Max float64 `json:"max_s"`
}

func summarize(ds []time.Duration) dist {
	if len(ds) == 0 {
		return dist{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(p float64) float64 {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))].Seconds()
	}
	return dist{N: len(s), P50: q(0.5), P99: q(0.99), Max: s[len(s)-1].Seconds()}
}
