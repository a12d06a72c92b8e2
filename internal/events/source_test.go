package events

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/aerostat-io/aerostat/internal/cloud/fake"
	"github.com/aerostat-io/aerostat/internal/fakeclock"
	"github.com/aerostat-io/aerostat/internal/naming"
)

const (
	idA = "i-0000000000000000a"
	idB = "i-0000000000000000b"
)

// startSource runs a Source on q with its own fake clock, which records
// the back-off pauses it arms (its only timers).
func startSource(t *testing.T, q Queue, o SourceOptions) (*Source, *fakeclock.Clock, *prometheus.Registry) {
	t.Helper()
	clk := fakeclock.New(at)
	reg := prometheus.NewRegistry()
	o.Queue, o.Clock, o.Registerer = q, clk, reg
	s, err := NewSource(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, clk, reg
}

func waitWake(t *testing.T, s *Source) {
	t.Helper()
	select {
	case <-s.Wake():
	case <-time.After(10 * time.Second):
		t.Fatal("no wake-up")
	}
}

// TestSourcePendingUntilAck: instance ids stay pending, and their
// messages undeleted, until Ack; duplicates coalesce; messages that can
// wake nothing are deleted at once; an id named again after the batch
// was taken stays pending.
func TestSourcePendingUntilAck(t *testing.T) {
	srv, q, _ := newQueue(t, 1)
	srv.DuplicateNext(1)
	srv.Send(fake.StateChangeBody(idA, naming.StateTerminated, at))
	srv.Send(fake.StateChangeBody(idB, naming.StateRunning, at))
	srv.Send("not an event")
	srv.Send(`{"detail-type":"AWS API Call via CloudTrail","source":"aws.ec2"}`)
	s, _, reg := startSource(t, q, SourceOptions{})
	waitWake(t, s)
	for s.Pending().Seq < 3 { // three event messages (one a duplicate), maybe over two receives
		waitWake(t, s)
	}
	b := s.Pending()
	if !slices.Equal(b.IDs, []string{idA, idB}) {
		t.Fatalf("pending ids = %v, want [%s %s]", b.IDs, idA, idB)
	}
	waitFor(t, "the 2 messages that wake nothing deleted", func() bool { return srv.Deleted() == 2 })
	if srv.Len() != 3 {
		t.Errorf("before Ack: %d left, want 3 kept", srv.Len())
	}
	if v := testutil.ToFloat64(s.m.messages.WithLabelValues("malformed")); v != 1 {
		t.Errorf("malformed messages = %v, want 1", v)
	}
	srv.Send(fake.StateChangeBody(idB, naming.StateTerminated, at))
	waitWake(t, s)
	s.Ack(context.Background(), b)
	if got := s.Pending().IDs; !slices.Equal(got, []string{idB}) {
		t.Errorf("pending after Ack = %v, want [%s] (named again after the batch)", got, idB)
	}
	waitFor(t, "the acknowledged messages deleted", func() bool { return srv.Deleted() == 5 })
	if srv.Len() != 1 {
		t.Errorf("after Ack: %d left, want 1", srv.Len())
	}
	waitFor(t, "aerostat_events_deleted_total 5", func() bool { return testutil.ToFloat64(s.m.deleted) == 5 })
	_ = reg
}

// TestSourceBrokenQueue: receives that keep failing make the source
// unhealthy (the controller then polls as without events), say so in the
// metric, and recover once the queue answers.
func TestSourceBrokenQueue(t *testing.T) {
	srv, q, _ := newQueue(t, 1)
	srv.Break(fake.SQSCodeInternal, http.StatusInternalServerError)
	s, clk, _ := startSource(t, q, SourceOptions{FailAfter: 2})
	// The n-th failed receive in a row arms a pause of DefaultBackoff
	// doubled n-1 times (then judges health before it waits): step each
	// pause only once it is armed, and stop at the one armed after the
	// failure that made the source unhealthy.
	pause := DefaultBackoff
	for n := 1; ; n++ {
		clk.WaitArmed(t, pause)
		if ok, _ := s.Health(); !ok {
			if n != 2 {
				t.Fatalf("unhealthy after %d failed receives, want 2 (FailAfter)", n)
			}
			break
		}
		clk.Step(pause)
		pause = min(2*pause, DefaultMaxBackoff)
	}
	if _, why := s.Health(); why == "" {
		t.Error("unhealthy without a reason")
	}
	if testutil.ToFloat64(s.m.healthy) != 0 || testutil.ToFloat64(s.m.fallbacks) != 1 {
		t.Errorf("aerostat_events_healthy = %v, fallbacks = %v; want 0, 1", testutil.ToFloat64(s.m.healthy), testutil.ToFloat64(s.m.fallbacks))
	}
	// The queue answers again; the pause armed after the second failure
	// ends, and the next receive takes the event.
	srv.Break("", 0)
	srv.Send(fake.StateChangeBody(idA, naming.StateRunning, at))
	clk.Step(pause)
	waitWake(t, s)
	if ok, why := s.Health(); !ok {
		t.Errorf("unhealthy after a successful receive: %s", why)
	}
	if testutil.ToFloat64(s.m.healthy) != 1 {
		t.Error("aerostat_events_healthy stayed 0 after the queue answered")
	}
	if n := clk.Waiters(); n != 0 {
		t.Errorf("%d timers still armed after the successful receive, want none", n)
	}
}

// TestSourceSilentQueue: a poll that keeps making changes no event
// announced marks the queue silent; an event arriving restores it.
func TestSourceSilentQueue(t *testing.T) {
	srv, q, _ := newQueue(t, 1)
	srv.Send(fake.StateChangeBody(idA, naming.StateRunning, at))
	s, _, _ := startSource(t, q, SourceOptions{MissLimit: 2})
	waitWake(t, s)
	ctx := context.Background()
	s.Observed(ctx, []string{idA}) // announced: a hit
	if ok, _ := s.Health(); !ok {
		t.Fatal("unhealthy after an announced change")
	}
	s.Observed(ctx, []string{idB})
	if ok, _ := s.Health(); !ok {
		t.Fatal("unhealthy after one miss (limit 2)")
	}
	s.Observed(ctx, []string{"i-0000000000000000c"})
	if ok, _ := s.Health(); ok {
		t.Fatal("healthy after two unannounced changes in a row")
	}
	if testutil.ToFloat64(s.m.misses) != 2 {
		t.Errorf("aerostat_events_missed_total = %v, want 2", testutil.ToFloat64(s.m.misses))
	}
	srv.Send(fake.StateChangeBody(idB, naming.StateTerminated, at))
	waitWake(t, s)
	if ok, why := s.Health(); !ok {
		t.Errorf("still unhealthy after an event arrived: %s", why)
	}
}

// waitFor waits for cond, which the source's goroutines make true.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPendingStarted: an id is Started only while every pending message
// about it says it started (pending or running); any other message about
// it (terminated, stopped, a spot or rebalance warning) keeps it out
// until a pass acknowledges it.
func TestPendingStarted(t *testing.T) {
	tests := map[string]struct {
		bodies []string
		want   bool
	}{
		"pending":               {[]string{fake.StateChangeBody(idA, naming.StatePending, at)}, true},
		"pending then running":  {[]string{fake.StateChangeBody(idA, naming.StatePending, at), fake.StateChangeBody(idA, naming.StateRunning, at)}, true},
		"terminated":            {[]string{fake.StateChangeBody(idA, naming.StateTerminated, at)}, false},
		"running then stopping": {[]string{fake.StateChangeBody(idA, naming.StateRunning, at), fake.StateChangeBody(idA, naming.StateStopping, at)}, false},
		"terminated then running (reordered or forged)": {[]string{fake.StateChangeBody(idA, naming.StateTerminated, at), fake.StateChangeBody(idA, naming.StateRunning, at)}, false},
		"spot interruption":                             {[]string{fake.SpotInterruptionBody(idA, at)}, false},
		"running then rebalance":                        {[]string{fake.StateChangeBody(idA, naming.StateRunning, at), fake.RebalanceBody(idA, at)}, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := NewSource(SourceOptions{Queue: idleQueue{}, Registerer: prometheus.NewRegistry()})
			if err != nil {
				t.Fatal(err)
			}
			for i, body := range tt.bodies {
				s.received(context.Background(), []Message{{ID: fmt.Sprint(i), Receipt: fmt.Sprint(i), Body: body}})
			}
			b := s.Pending()
			if !slices.Equal(b.IDs, []string{idA}) || b.Started[idA] != tt.want {
				t.Fatalf("Pending() = %v started %v, want [%s] started %v", b.IDs, b.Started, idA, tt.want)
			}
			s.Ack(context.Background(), b)
			s.received(context.Background(), []Message{{ID: "late", Receipt: "late", Body: fake.StateChangeBody(idA, naming.StateRunning, at)}})
			if b := s.Pending(); !b.Started[idA] {
				t.Errorf("after Ack, a new running message: started %v, want true (acknowledged messages forgotten)", b.Started)
			}
		})
	}
}

// idleQueue is a Queue for tests that feed the source directly (Run is
// not started, so nothing calls it).
type idleQueue struct{}

func (idleQueue) Receive(context.Context) ([]Message, error) { return nil, nil }
func (idleQueue) Delete(context.Context, []string) error     { return nil }
