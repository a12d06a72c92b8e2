package feed

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/aerostat-io/aerostat/internal/naming"
)

// FuzzClientRecordsOrder: whatever sequence of full and delta responses a
// client takes in, Records holds exactly the names a plain model holds,
// in naming.CompareHostnames order (the client keeps that order by
// binary-search updates instead of sorting on every call).
func FuzzClientRecordsOrder(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{200, 3, 3, 131, 7, 255, 12, 1, 140, 2})
	f.Add([]byte{5, 133, 5, 5, 133, 250, 40, 9, 99})
	long := make([]byte, 500)
	for i := range long {
		long[i] = byte(i*i*31 + i*7) // deterministic, every kind of op
	}
	f.Add(long)
	f.Fuzz(func(t *testing.T, ops []byte) {
		c := &Client{entries: map[string]Entry{}, released: map[string]bool{}}
		model := map[string]string{}
		for i, op := range ops {
			// Names that sort differently by bytes and by number, with
			// and without leading zeros.
			host := fmt.Sprintf("web-%d", op%16)
			if op%5 == 0 {
				host = fmt.Sprintf("web-0%d", op%16)
			}
			ip := fmt.Sprintf("10.0.0.%d", i%250)
			switch {
			case op >= 240: // a full response: the model's names, this one replaced
				var es []Entry
				for _, h := range slices.Sorted(maps.Keys(model)) {
					es = append(es, Entry{Hostname: h, IP: model[h]})
				}
				es = append(es, Entry{Hostname: host, IP: ip})
				model[host] = ip
				c.apply(Response{Full: true, Entries: es})
			case op >= 128: // a delta releasing host
				delete(model, host)
				c.apply(Response{Entries: []Entry{{Hostname: host, Released: true}}})
			default: // a delta binding or moving host
				model[host] = ip
				c.apply(Response{Entries: []Entry{{Hostname: host, IP: ip}}})
			}
			got := c.Records()
			want := slices.SortedFunc(maps.Keys(model), naming.CompareHostnames)
			if len(got) != len(want) {
				t.Fatalf("after op %d: %d records, want %d", i, len(got), len(want))
			}
			for k, r := range got {
				if r.Hostname != want[k] || r.IP != model[want[k]] {
					t.Fatalf("after op %d: record %d = %s %s, want %s %s", i, k, r.Hostname, r.IP, want[k], model[want[k]])
				}
			}
		}
	})
}

// BenchmarkClientDeltaRecords10k: an agent's cost per change at 10,000
// names, past the HTTP read: take in a one-name delta, list the records.
func BenchmarkClientDeltaRecords10k(b *testing.B) {
	c := &Client{entries: map[string]Entry{}, released: map[string]bool{}}
	es := make([]Entry, 10000)
	for i := range es {
		es[i] = Entry{Hostname: fmt.Sprintf("web-%d", i), IP: fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255)}
	}
	c.apply(Response{Full: true, Entries: es})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		h := fmt.Sprintf("web-%d", (i/2)%10000) // released, then back
		if i%2 == 0 {
			c.apply(Response{Entries: []Entry{{Hostname: h, Released: true}}})
		} else {
			c.apply(Response{Entries: []Entry{{Hostname: h, IP: "10.9.9.9"}}})
		}
		if n := len(c.Records()); n < 9999 {
			b.Fatalf("%d records", n)
		}
	}
}
