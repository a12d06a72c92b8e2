package hostsfile

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/aerostat-io/aerostat/internal/naming"
)

func records(n int) []naming.Record {
	out := make([]naming.Record, n)
	for i := range out {
		out[i] = naming.Record{Hostname: fmt.Sprintf("web-%d", i), InstanceID: fmt.Sprintf("i-%d", i),
			IP: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)}
	}
	return out
}

// BenchmarkRenderWrite10k is one agent update at 10,000 names: entries
// from records, render, atomic write (one name changes each iteration).
func BenchmarkRenderWrite10k(b *testing.B) {
	recs := records(10000)
	w := &Writer{Path: filepath.Join(b.TempDir(), "hosts")}
	if err := os.WriteFile(w.Path, []byte(userHead), 0o644); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		recs[i%len(recs)].IP = fmt.Sprintf("10.200.%d.%d", i>>8&255, i&255)
		entries, _ := FromRecords(recs)
		if _, err := w.Sync(entries, nil, SyncOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRender10k is the CPU part of BenchmarkRenderWrite10k: entries
// from records and render, no file I/O (the rest is read, write, fsync).
func BenchmarkRender10k(b *testing.B) {
	recs := records(10000)
	f, err := Parse([]byte(userHead))
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		recs[i%len(recs)].IP = fmt.Sprintf("10.200.%d.%d", i>>8&255, i&255)
		entries, _ := FromRecords(recs)
		if _, err := f.Render(entries, nil); err != nil {
			b.Fatal(err)
		}
	}
}
