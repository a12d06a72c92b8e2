package agent

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http/httptest"

	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/fakeclock"
	"github.com/aerostat-io/aerostat/internal/feed"
	"github.com/aerostat-io/aerostat/internal/feed/feedtest"
	"github.com/aerostat-io/aerostat/internal/hostsfile"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
	"github.com/aerostat-io/aerostat/internal/naming"
)

const benchNames = 10000

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// seed10k inserts 10,000 bound names into db, as 1.x-style documents with
// a rev each, and sets the rev counter.
func seed10k(b *testing.B, m *ledger.Mongo) {
	b.Helper()
	ctx := context.Background()
	docs := make([]any, benchNames)
	for i := range docs {
		docs[i] = bson.M{"hostname": fmt.Sprintf("web-%d", i), "ip": fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), "service": "web",
			"service_type": "iterative", "instance_id": fmt.Sprintf("i-%08d", i), "aliases": bson.A{}, "rev": int64(i + 1)}
	}
	db := m.Client().Database(m.Database())
	if _, err := db.Collection("servers").InsertMany(ctx, docs); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Collection("meta").UpdateOne(ctx, bson.M{"_id": "rev"}, bson.M{"$set": bson.M{"n": int64(benchNames)}},
		options.UpdateOne().SetUpsert(true)); err != nil {
		b.Fatal(err)
	}
}

// change moves one name's IP through the ledger's compare-and-set, as the
// controller does, so the write also lands in the change log a delta poll
// reads (a raw update by hostname is a 1.x write, which only a resync
// sees). Its expected holder and rev come from the follower's own view.
func change(b *testing.B, m *ledger.Mongo, f *ledger.Follower, i int) {
	b.Helper()
	host := fmt.Sprintf("web-%d", i%benchNames)
	recs := f.Records()
	idx := slices.IndexFunc(recs, func(r naming.Record) bool { return r.Hostname == host })
	if idx < 0 {
		b.Fatalf("the follower has no %s", host)
	}
	cur := recs[idx]
	if _, err := m.Apply(context.Background(), []naming.Change{{Type: naming.SetIP, Hostname: host, Service: cur.Service,
		IP: fmt.Sprintf("10.1.%d.%d", i>>8&255, i&255+1), ExpectExists: true, ExpectInstanceID: cur.InstanceID, ExpectRev: cur.Rev}}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkIdleMinute is one idle minute of an agent following the ledger
// by polling the rev counter every second (the embedded FerretDB has no
// change streams), with 10,000 names and the default overlap (30 s) and
// full resync (every 5 min, so a fifth of one per minute). One iteration
// is five minutes; cpu-ms/min counts the whole process, so it includes the
// in-process store answering: an upper bound for the agent alone.
func BenchmarkIdleMinute(b *testing.B) {
	db := ledgertest.Database(b)
	seed10k(b, ledgertest.Open(b, ledger.Options{Database: db}))
	store := ledgertest.Open(b, ledger.Options{Database: db, ReadOnly: true})
	fc := clocktesting.NewFakeClock(t0)
	a, err := New(Options{
		Source:  NewLedgerSource(store, ledger.FollowerOptions{Clock: fc}),
		Writer:  &hostsfile.Writer{Path: filepath.Join(b.TempDir(), "hosts")},
		Clock:   fc,
		Metrics: prometheus.NewRegistry(),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for range 40 { // settle: first full read, follow-up read after the overlap
		fc.Step(time.Second)
		if err := a.SyncOnce(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := cpuTime()
	for b.Loop() {
		for range 5 * 60 {
			fc.Step(time.Second)
			if err := a.SyncOnce(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(cpuTime()-start)/1e6/float64(b.N)/5, "cpu-ms/min")
}

// BenchmarkIdleMinuteFeed is one idle minute of an agent long-polling the
// controller's feed (?wait=30s: two requests a minute) with 10,000 names;
// the periodic re-check of the file (every 60 s) re-renders it. The feed
// handler runs in the same process (its share is two empty answers).
func BenchmarkIdleMinuteFeed(b *testing.B) {
	ctx := context.Background()
	st := feedtest.New()
	for i := range benchNames {
		st.Bind(fmt.Sprintf("web-%d", i), "web", fmt.Sprintf("i-%d", i), fmt.Sprintf("10.0.%d.%d", i/250, i%250+1))
	}
	fc := fakeclock.New(t0)
	h := feed.NewHandler(st, feed.Options{Clock: fc})
	if err := h.SyncOnce(ctx); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	c, err := feed.NewClient(srv.URL, srv.Client(), 30*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	a, err := New(Options{Source: c, Writer: &hostsfile.Writer{Path: filepath.Join(b.TempDir(), "hosts")},
		Clock: fc, Metrics: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	if err := a.SyncOnce(ctx); err != nil { // the first, full answer
		b.Fatal(err)
	}
	longPoll := func() {
		done := make(chan error, 1)
		go func() { done <- a.SyncOnce(ctx) }()
		fc.WaitArmed(b, 30*time.Second) // the handler is holding the request
		fc.Step(30 * time.Second)
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start, startBytes := cpuTime(), c.BytesRead
	for b.Loop() {
		longPoll()
		longPoll()
	}
	b.ReportMetric(float64(cpuTime()-start)/1e6/float64(b.N), "cpu-ms/min")
	b.ReportMetric(float64(c.BytesRead-startBytes)/float64(b.N), "B/min")
}

// countingProxy forwards TCP to a store and counts the bytes it sends back.
type countingProxy struct {
	ln   net.Listener
	read atomic.Int64
}

func startCountingProxy(b *testing.B, target string) *countingProxy {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	p := &countingProxy{ln: ln}
	b.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { _, _ = io.Copy(countingWriter{c, &p.read}, up); _ = c.Close() }()
		}
	}()
	return p
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// BenchmarkLedgerBytesPerChange10k reports the bytes an agent reading the
// ledger directly receives over the wire for one changed name at 10,000
// names: a delta poll (rev counter + records with rev > the safe mark) vs
// a full read of every record, as a reader without deltas (1.x) does.
func BenchmarkLedgerBytesPerChange10k(b *testing.B) {
	ctx := context.Background()
	db := ledgertest.Database(b)
	w := ledgertest.Open(b, ledger.Options{Database: db})
	seed10k(b, w)
	uri := ledgertest.URI(b)
	host := strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/")
	if strings.ContainsAny(host, "/?@,") {
		b.Skipf("cannot proxy %s", uri)
	}
	proxy := startCountingProxy(b, host)
	ro, err := ledger.Open(ctx, "mongodb://"+proxy.ln.Addr().String()+"/", ledger.Options{Database: db, ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = ro.Close(ctx) }()
	fc := clocktesting.NewFakeClock(t0)
	f := ledger.NewFollower(ro, ledger.FollowerOptions{Clock: fc, Overlap: time.Second, ResyncEvery: time.Hour})
	for range 4 {
		fc.Step(2 * time.Second)
		if _, err := f.Poll(ctx); err != nil {
			b.Fatal(err)
		}
	}
	var deltaBytes, fullBytes int64
	for i := 0; b.Loop(); i++ {
		change(b, w, f, i)
		fc.Step(2 * time.Second) // past the overlap: only the new rev is re-read
		n := proxy.read.Load()
		changed, err := f.Poll(ctx)
		if err != nil || len(changed) != 1 {
			b.Fatalf("delta poll: %v changed, %v", changed, err)
		}
		deltaBytes += proxy.read.Load() - n
		n = proxy.read.Load()
		if recs, err := ro.Records(ctx, ""); err != nil || len(recs) != benchNames {
			b.Fatalf("full read: %d records, %v", len(recs), err)
		}
		fullBytes += proxy.read.Load() - n
	}
	b.ReportMetric(float64(deltaBytes)/float64(b.N), "delta-B/change")
	b.ReportMetric(float64(fullBytes)/float64(b.N), "full-B/change")
}
