package feed

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/aerostat-io/aerostat/internal/feed/feedtest"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// BenchmarkFeedBytesPerChange10k reports the bytes an agent reads for one
// changed name at 10,000 names: full response vs delta (?since=).
func BenchmarkFeedBytesPerChange10k(b *testing.B) {
	ctx := context.Background()
	st := feedtest.New()
	for i := range 10000 {
		st.Bind(fmt.Sprintf("web-%d", i), "web", fmt.Sprintf("i-%d", i), fmt.Sprintf("10.0.%d.%d", i/250, i%250+1))
	}
	h := NewHandler(st, Options{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	if err := h.SyncOnce(ctx); err != nil {
		b.Fatal(err)
	}
	full, _ := NewClient(srv.URL, srv.Client(), 0)
	delta, _ := NewClient(srv.URL, srv.Client(), 0)
	if _, err := delta.Poll(ctx); err != nil {
		b.Fatal(err)
	}
	start := delta.BytesRead
	for i := 0; b.Loop(); i++ {
		st.Bind(fmt.Sprintf("web-%d", i%10000), "web", "i-x", fmt.Sprintf("10.1.%d.%d", i>>8&255, i&255))
		if err := h.SyncOnce(ctx); err != nil {
			b.Fatal(err)
		}
		full.synced = false // ask for everything, as a reader without deltas would
		if _, err := full.Poll(ctx); err != nil {
			b.Fatal(err)
		}
		if _, err := delta.Poll(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(full.BytesRead)/float64(b.N), "full-B/change")
	b.ReportMetric(float64(delta.BytesRead-start)/float64(b.N), "delta-B/change")
}

// BenchmarkFeedFirstSync10k is a feed's first sync of 10,000 names: its
// table of names, built once and kept (B/op is about what it holds).
func BenchmarkFeedFirstSync10k(b *testing.B) {
	ctx := context.Background()
	st := feedtest.New()
	for i := range 10000 {
		st.Bind(fmt.Sprintf("web-%d", i), "web", fmt.Sprintf("i-%d", i), fmt.Sprintf("10.0.%d.%d", i/250, i%250+1))
	}
	f := ledger.NewFollower(st, ledger.FollowerOptions{})
	hosts, err := f.Poll(ctx)
	if err != nil {
		b.Fatal(err)
	}
	src := everyName{f: f, hosts: hosts}
	for b.Loop() {
		h := NewHandler(st, Options{Source: src})
		if err := h.SyncOnce(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// everyName reports every name of a synced Follower as changed at each
// Poll, reading nothing.
type everyName struct {
	f     *ledger.Follower
	hosts []string
}

func (e everyName) Poll(context.Context) ([]string, error) { return e.hosts, nil }
func (e everyName) Record(h string) (naming.Record, bool)  { return e.f.Record(h) }
func (e everyName) Rev() int64                             { return e.f.Rev() }
func (e everyName) Settled() int64                         { return e.f.Settled() }
