package feed

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/aerostat-io/aerostat/internal/feed/feedtest"
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
