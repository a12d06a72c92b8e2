package controllers_test

import (
	"context"
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/prometheus/client_golang/prometheus"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/cloud/fake"
	"github.com/aerostat-io/aerostat/internal/events"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// eventRig is a standalone controller woken by a fake SQS queue that
// hears of the fake EC2's launches and terminations, all through the
// real SDKs. Event passes run as soon as woken (no debounce or gap) unless
// a test asks for a gap; the poll ticks only when the test steps r.clock.
type eventRig struct {
	*rig
	sqs    *fake.SQSServer
	qclock *clocktesting.FakeClock // the queue's own clock
	src    *events.Source
	sa     *controllers.Standalone
	passes chan passDone
	reg    *prometheus.Registry
}

type passDone struct {
	trigger string
	err     error
	calls   int // DescribeInstances calls so far
}

type eventOpts struct {
	src      events.SourceOptions
	gap      time.Duration
	attempts int
}

func newEventRig(t *testing.T, o eventOpts) *eventRig {
	t.Helper()
	r := &eventRig{rig: newRig(t), passes: make(chan passDone, 1000), reg: prometheus.NewRegistry()}
	// The queue's clock never moves unless a test steps it: a long poll
	// then waits until a message arrives, as on a quiet real queue.
	r.qclock = clocktesting.NewFakeClock(epoch)
	r.sqs = fake.NewSQSServer(r.qclock, "aerostat-events")
	t.Cleanup(r.sqs.Close)
	r.sqs.Follow(r.fleet)
	if o.attempts == 0 {
		o.attempts = 1
	}
	q, err := events.NewSQS(context.Background(), events.SQSOptions{QueueURL: r.sqs.QueueURL(), Region: fake.SQSRegion, Endpoint: r.sqs.URL,
		MaxAttempts: o.attempts, Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")})
	if err != nil {
		t.Fatal(err)
	}
	o.src.Queue, o.src.Registerer = q, r.reg
	if o.src.Clock == nil {
		o.src.Clock = clocktesting.NewFakeClock(epoch) // back-off never ends unless stepped
	}
	if r.src, err = events.NewSource(o.src); err != nil {
		t.Fatal(err)
	}
	if o.gap == 0 {
		o.gap = -1
	}
	m, err := controllers.NewMetrics(r.reg)
	if err != nil {
		t.Fatal(err)
	}
	syncer := controllers.NewSyncer(controllers.SyncerOptions{Cloud: r.ec2, Store: r.store, Clock: r.clock, Metrics: m})
	r.sa = controllers.NewStandalone(controllers.StandaloneOptions{Syncer: syncer, Cloud: r.ec2, Store: r.store, Clock: r.clock,
		Events: r.src, EventDebounce: -1, EventGap: o.gap,
		OnPass: func(trigger string, err error) {
			r.passes <- passDone{trigger: trigger, err: err, calls: r.server.Calls("DescribeInstances")}
		}})
	return r
}

// start runs the source and the loop, and waits for the first (full)
// pass and, with settle, until the launch events of the instances started
// before are handled and deleted.
func (r *eventRig) start(t *testing.T, settle bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = r.src.Run(ctx); done <- struct{}{} }()
	go func() { _ = r.sa.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	if p := r.next(t); p.trigger != controllers.TriggerPoll || p.err != nil {
		t.Fatalf("first pass = %+v, want a successful full pass", p)
	}
	if !settle {
		return
	}
	until(t, "the queue settled", func() bool { return r.sqs.Len() == 0 && len(r.src.Pending().IDs) == 0 })
	for {
		select {
		case p := <-r.passes:
			if p.err != nil {
				t.Fatalf("settling pass failed: %v", p.err)
			}
		default:
			return
		}
	}
}

func (r *eventRig) next(t *testing.T) passDone {
	t.Helper()
	select {
	case p := <-r.passes:
		return p
	case <-time.After(3 * time.Minute):
		t.Fatal("no pass")
		return passDone{}
	}
}

// nextEventPass waits for the next successful event pass.
func (r *eventRig) nextEventPass(t *testing.T) passDone {
	t.Helper()
	for {
		p := r.next(t)
		if p.trigger == controllers.TriggerEvent && p.err == nil {
			return p
		}
	}
}

// until waits for cond, which other goroutines make true.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute) // a generous bound on a loaded machine, not a timing
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func holder(r *eventRig, service, host string) string { return r.bound(service)[host] }

// TestEventsNameAndReleaseWithoutPolling: a launch and a termination are
// acted on through events alone (the poll clock never moves), each with
// one DescribeInstances by id, and the messages are deleted once the pass
// committed.
func TestEventsNameAndReleaseWithoutPolling(t *testing.T) {
	r := newEventRig(t, eventOpts{})
	ids := r.launch(3, "web")
	r.start(t, true)
	if len(r.bound("web")) != 3 {
		t.Fatalf("first pass bound %v", r.bound("web"))
	}
	before := r.server.Calls("DescribeInstances")
	r.clock.Step(time.Second) // a later launch time, nothing else
	added := r.launch(1, "web")
	p := r.nextEventPass(t)
	if holder(r, "web", "web-3") != added[0] {
		t.Fatalf("after the launch event: %v, want web-3 on %s", r.bound("web"), added[0])
	}
	if n := p.calls - before; n != 1 {
		t.Errorf("event pass made %d DescribeInstances calls, want 1", n)
	}
	until(t, "the launch message deleted", func() bool { return r.sqs.Len() == 0 })

	if err := r.fleet.Terminate(ids[1]); err != nil {
		t.Fatal(err)
	}
	r.nextEventPass(t)
	if got := r.bound("web"); got["web-1"] != "" || len(got) != 3 {
		t.Fatalf("after the termination event: %v, want web-1 released", got)
	}
	until(t, "every message deleted", func() bool { return r.sqs.Len() == 0 })
}

// TestEventForRunningInstanceReapsNothing: forged or stale messages (a
// "terminated" for a running instance, spot and rebalance warnings, an
// unknown id) wake a pass that describes the instances, finds them
// running and releases nothing.
func TestEventForRunningInstanceReapsNothing(t *testing.T) {
	r := newEventRig(t, eventOpts{})
	ids := r.launch(2, "web")
	r.start(t, true)
	want := r.bound("web")
	rev := r.rev()
	at := epoch
	r.sqs.Send(fake.StateChangeBody(ids[0], naming.StateTerminated, at))
	r.sqs.Send(fake.SpotInterruptionBody(ids[1], at))
	r.sqs.Send(fake.RebalanceBody(ids[1], at))
	r.sqs.Send(fake.StateChangeBody("i-00000000000000bad", naming.StateTerminated, at))
	until(t, "all four received and acted on", func() bool {
		select {
		case p := <-r.passes:
			if p.trigger != controllers.TriggerEvent || p.err != nil {
				t.Fatalf("pass %+v, want successful event passes", p)
			}
		default:
		}
		return r.sqs.Len() == 0
	})
	if got := r.bound("web"); len(got) != 2 || got["web-0"] != want["web-0"] || got["web-1"] != want["web-1"] {
		t.Fatalf("names after forged events = %v, want %v", got, want)
	}
	if r.rev() != rev {
		t.Errorf("forged events moved the rev from %d to %d", rev, r.rev())
	}
}

// TestEventFaults: duplicated, reordered, delayed, dropped and throttled
// messages leave the names exactly as EC2 has them; a dropped one is
// caught by the safety-net poll.
func TestEventFaults(t *testing.T) {
	tests := map[string]struct {
		attempts int
		inject   func(r *eventRig)
		// act changes the fleet and waits until the change is applied.
		act func(t *testing.T, r *eventRig, ids []string) (gone string, added string)
	}{
		"duplicates": {inject: func(r *eventRig) { r.sqs.DuplicateFraction(1, 1) }, act: replace},
		"reordered": {inject: func(r *eventRig) { r.sqs.Reorder(true) },
			act: func(t *testing.T, r *eventRig, ids []string) (string, string) {
				// A stale "running" lands beside the "terminated": the
				// pass goes by what EC2 says now. Both are held until the
				// queue's clock steps, so one receive sees both and the
				// shuffle really happens (else the controller may take
				// the first alone before the second is sent).
				r.sqs.Delay(time.Second)
				if err := r.fleet.Terminate(ids[0]); err != nil {
					t.Fatal(err)
				}
				r.sqs.Send(fake.StateChangeBody(ids[0], naming.StateRunning, epoch))
				held := r.sqs.Injected() // the two delays
				r.qclock.Step(time.Second)
				until(t, "both messages handled", func() bool { return r.sqs.Len() == 0 && r.bound("web")["web-0"] == "" })
				if r.sqs.Injected() <= held {
					t.Error("no receive saw both messages to reorder")
				}
				return ids[0], ""
			}},
		"throttled": {attempts: 3, inject: func(r *eventRig) { r.sqs.ThrottleNext(1) }, act: replace},
		"dropped, caught by the poll": {inject: func(r *eventRig) { r.sqs.DropNext(2) },
			act: func(t *testing.T, r *eventRig, ids []string) (string, string) {
				if err := r.fleet.Terminate(ids[0]); err != nil {
					t.Fatal(err)
				}
				added := r.launch(1, "web")[0]
				r.clock.Step(controllers.DefaultEventsPollInterval)
				for p := r.next(t); p.trigger != controllers.TriggerPoll || p.err != nil; p = r.next(t) {
				}
				return ids[0], added
			}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := newEventRig(t, eventOpts{attempts: tc.attempts})
			ids := r.launch(3, "web")
			r.start(t, true)
			tc.inject(r)
			gone, added := tc.act(t, r, ids)
			got := r.bound("web")
			for h, id := range got {
				if id == gone {
					t.Errorf("%s still holds %s after it terminated", id, h)
				}
			}
			if added != "" && !hasValue(got, added) {
				t.Errorf("launched %s has no name: %v", added, got)
			}
			if r.sqs.Injected() == 0 {
				t.Error("the fault never fired")
			}
			recs, _ := r.store.Records(context.Background(), "web")
			checkConsistent(t, recs)
		})
	}
}

// replace terminates one instance and launches one, and waits until both
// events were acted on and deleted.
func replace(t *testing.T, r *eventRig, ids []string) (string, string) {
	if err := r.fleet.Terminate(ids[0]); err != nil {
		t.Fatal(err)
	}
	r.clock.Step(time.Second)
	added := r.launch(1, "web")[0]
	until(t, "both events applied and deleted", func() bool {
		return r.sqs.Len() == 0 && r.bound("web")["web-0"] == "" && hasValue(r.bound("web"), added)
	})
	return ids[0], added
}

func hasValue(m map[string]string, v string) bool {
	for _, x := range m {
		if x == v {
			return true
		}
	}
	return false
}

// TestEventsKeptUntilCommit: an event pass that could not describe the
// instances (EC2 throttled) deletes no message and keeps the ids; the
// next tick retries them and only then are they deleted.
func TestEventsKeptUntilCommit(t *testing.T) {
	r := newEventRig(t, eventOpts{})
	r.launch(2, "web")
	r.start(t, true)
	r.server.ThrottleNext(1)
	added := r.launch(1, "web")[0]
	if p := r.next(t); p.trigger != controllers.TriggerEvent || p.err == nil {
		t.Fatalf("pass = %+v, want a failed event pass", p)
	}
	if r.sqs.Deleted() != 2 || r.sqs.Len() != 1 {
		t.Fatalf("after the failed pass: %d deleted, %d left; want the new message kept", r.sqs.Deleted(), r.sqs.Len())
	}
	r.clock.Step(controllers.DefaultPollInterval)
	r.nextEventPass(t)
	if !hasValue(r.bound("web"), added) {
		t.Fatalf("retried pass did not name %s: %v", added, r.bound("web"))
	}
	until(t, "the message deleted", func() bool { return r.sqs.Len() == 0 })
}

// TestBrokenQueueFallsBackToPolling: with the queue failing, the loop
// lists the fleet every poll interval as without events, and the metric
// says so; healthy, the same tick would not list.
func TestBrokenQueueFallsBackToPolling(t *testing.T) {
	r := newEventRig(t, eventOpts{src: events.SourceOptions{FailAfter: 1}})
	r.launch(2, "web")
	r.sqs.Break(fake.SQSCodeInternal, http.StatusInternalServerError)
	r.start(t, false)
	until(t, "the source unhealthy", func() bool { ok, _ := r.src.Health(); return !ok })
	if v := metricValue(t, r.reg, "aerostat_events_healthy"); v != 0 {
		t.Errorf("aerostat_events_healthy = %v, want 0", v)
	}
	added := r.launch(1, "web")[0]
	r.clock.Step(controllers.DefaultPollInterval)
	if p := r.next(t); p.trigger != controllers.TriggerPoll || p.err != nil {
		t.Fatalf("pass after one poll interval = %+v, want a full pass", p)
	}
	if !hasValue(r.bound("web"), added) {
		t.Errorf("fallback poll did not name %s", added)
	}
}

// TestSilentQueueFallsBackToPolling: a queue that answers but delivers
// nothing is found out by the safety-net poll making changes no event
// announced; the loop then polls at the normal interval.
func TestSilentQueueFallsBackToPolling(t *testing.T) {
	r := newEventRig(t, eventOpts{src: events.SourceOptions{MissLimit: 1}})
	r.launch(2, "web")
	// The launch messages of the first two are received and handled
	// before the queue goes silent: received after the poll below, they
	// would make the source healthy again (the pipeline delivers).
	r.start(t, true)
	if ok, why := r.src.Health(); !ok {
		t.Fatalf("unhealthy before the queue went silent: %s", why)
	}
	r.sqs.Silence(true)
	first := r.launch(1, "web")[0]
	r.clock.Step(controllers.DefaultPollInterval)
	r.clock.Step(controllers.DefaultEventsPollInterval - controllers.DefaultPollInterval)
	for p := r.next(t); p.trigger != controllers.TriggerPoll; p = r.next(t) {
	}
	if !hasValue(r.bound("web"), first) {
		t.Fatalf("safety-net poll did not name %s", first)
	}
	if ok, _ := r.src.Health(); ok {
		t.Fatal("healthy after the poll made a change no event announced")
	}
	second := r.launch(1, "web")[0]
	r.clock.Step(controllers.DefaultPollInterval)
	if p := r.next(t); p.trigger != controllers.TriggerPoll {
		t.Fatalf("pass one poll interval later = %+v, want a full pass", p)
	}
	if !hasValue(r.bound("web"), second) {
		t.Errorf("fallback poll did not name %s", second)
	}
}

// TestEventStorm: 10,000 messages (duplicates, stale states, warnings)
// about a fleet of 150 with 20 real replacements among them are coalesced
// into at most two event passes of one DescribeInstances call each, and
// every message is deleted.
func TestEventStorm(t *testing.T) {
	r := newEventRig(t, eventOpts{gap: time.Second})
	ids := r.launch(150, "web")
	r.start(t, true)
	calls, seq0 := r.server.Calls("DescribeInstances"), r.src.Pending().Seq
	r.sqs.Silence(true) // the storm below stands for the fleet's own events
	for _, id := range ids[:20] {
		if err := r.fleet.Terminate(id); err != nil {
			t.Fatal(err)
		}
	}
	r.clock.Step(time.Second)
	added := r.launch(20, "web")
	r.sqs.Silence(false)
	states := []naming.InstanceState{naming.StatePending, naming.StateRunning, naming.StateStopping, naming.StateTerminated}
	all := append(append([]string{}, ids...), added...)
	for i := range 10000 {
		id := all[i%len(all)]
		switch i % 7 {
		case 5:
			r.sqs.Send(fake.SpotInterruptionBody(id, epoch))
		case 6:
			r.sqs.Send(fake.RebalanceBody(id, epoch))
		default:
			r.sqs.Send(fake.StateChangeBody(id, states[i%len(states)], epoch))
		}
	}
	// The first wake-up runs a pass at once; the next waits out the gap
	// on the fake clock while the rest of the storm is received.
	until(t, "the whole storm received", func() bool { return r.src.Pending().Seq >= seq0+10000 })
	// Then time moves on until every message is deleted: the gap ends, one
	// pass covers the rest. (Moving it far enough also brings safety-net
	// polls; they are counted apart.)
	until(t, "every message deleted", func() bool {
		r.clock.Step(100 * time.Millisecond)
		return r.sqs.Len() == 0
	})
	// Calls are counted up to the last pass reported: the loop runs one
	// pass at a time, and one the last clock step may have started (a
	// safety-net poll, the event passes having waited out the call
	// budget) is neither counted nor its calls.
	eventPasses, polls, upTo := 0, 0, calls
	for done := false; !done; {
		select {
		case p := <-r.passes:
			if p.err != nil {
				t.Fatalf("pass failed: %v", p.err)
			}
			upTo = p.calls
			if p.trigger == controllers.TriggerEvent {
				eventPasses++
			} else {
				polls++
			}
		default:
			done = true
		}
	}
	if eventPasses < 1 || eventPasses > 2 {
		t.Errorf("storm took %d event passes, want 1 or 2", eventPasses)
	}
	// 170 instances: one call an event pass; a poll lists the tagged
	// fleet and may describe named instances it did not return.
	if n := upTo - calls; n > eventPasses+2*polls {
		t.Errorf("storm took %d DescribeInstances calls in %d event passes and %d polls, want one an event pass, two a poll", n, eventPasses, polls)
	}
	t.Logf("10,000 messages: %d event passes, %d safety-net polls, %d DescribeInstances calls", eventPasses, polls, upTo-calls)
	got := r.bound("web")
	for _, id := range ids[:20] {
		if hasValue(got, id) {
			t.Errorf("terminated %s still named", id)
		}
	}
	for _, id := range added {
		if !hasValue(got, id) {
			t.Errorf("launched %s unnamed", id)
		}
	}
	if r.sqs.Deleted() < 10000 {
		t.Errorf("%d messages deleted, want all 10,000", r.sqs.Deleted())
	}
}

func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			if g := mf.GetMetric()[0].GetGauge(); g != nil {
				return g.GetValue()
			}
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestStartedEventsOfNamedInstancesCostNoCall: a "running" message for an
// instance that already has a name (it registered at boot, or a pass named
// it) is acknowledged without describing anything; the same message
// beside a real termination still lets the termination release the name.
func TestStartedEventsOfNamedInstancesCostNoCall(t *testing.T) {
	r := newEventRig(t, eventOpts{})
	ids := r.launch(2, "web")
	r.start(t, true)
	want := r.bound("web")
	before := r.server.Calls("DescribeInstances")
	r.sqs.Send(fake.StateChangeBody(ids[0], naming.StateRunning, epoch))
	p := r.nextEventPass(t)
	if n := p.calls - before; n != 0 {
		t.Errorf("event pass for a named instance that started made %d DescribeInstances calls, want 0", n)
	}
	until(t, "the message deleted", func() bool { return r.sqs.Len() == 0 })
	if got := r.bound("web"); !maps.Equal(got, want) {
		t.Fatalf("names changed: %v, want %v", got, want)
	}

	if err := r.fleet.Terminate(ids[1]); err != nil {
		t.Fatal(err)
	}
	r.sqs.Send(fake.StateChangeBody(ids[1], naming.StateRunning, epoch)) // forged or reordered
	until(t, "the termination released web-1", func() bool {
		select {
		case p := <-r.passes:
			if p.err != nil {
				t.Fatalf("pass failed: %v", p.err)
			}
		case <-time.After(time.Millisecond):
		}
		return r.bound("web")["web-1"] == ""
	})
}
