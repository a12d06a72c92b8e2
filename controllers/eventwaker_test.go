package controllers_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	v1alpha1 "github.com/aerostat-io/aerostat/api/v1alpha1"
	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/cloud/fake"
	"github.com/aerostat-io/aerostat/internal/events"
	"github.com/aerostat-io/aerostat/internal/naming"
)

// wakerRig is the Kubernetes-mode event path: a fake SQS queue (following
// the fake EC2 fleet once the test says so), an event source and an
// EventWaker over envtest.
type wakerRig struct {
	*rig
	sqs   *fake.SQSServer
	src   *events.Source
	waker *controllers.EventWaker
}

func newWakerRig(t *testing.T, c client.Client) *wakerRig {
	t.Helper()
	w := &wakerRig{rig: newRig(t)}
	w.sqs = fake.NewSQSServer(clocktesting.NewFakeClock(epoch), "aerostat-events")
	t.Cleanup(w.sqs.Close)
	q, err := events.NewSQS(context.Background(), events.SQSOptions{QueueURL: w.sqs.QueueURL(), Region: fake.SQSRegion, Endpoint: w.sqs.URL,
		MaxAttempts: 1, Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")})
	if err != nil {
		t.Fatal(err)
	}
	if w.src, err = events.NewSource(events.SourceOptions{Queue: q, Registerer: prometheus.NewRegistry(), Clock: clocktesting.NewFakeClock(epoch)}); err != nil {
		t.Fatal(err)
	}
	w.waker, err = controllers.NewEventWaker(controllers.EventWakerOptions{Events: w.src, Cloud: w.ec2, Reader: c, Clock: w.clock, Debounce: -1, Gap: -1})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// run starts the waker (and with it the source) until the test ends.
func (w *wakerRig) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.waker.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// woken waits for the next NamingService the waker enqueues.
func (w *wakerRig) woken(t *testing.T) string {
	t.Helper()
	select {
	case ev := <-w.waker.Requests():
		return ev.Object
	case <-time.After(3 * time.Minute):
		t.Fatal("no service woken")
		return ""
	}
}

func pending(src *events.Source, id string) bool { return slices.Contains(src.Pending().IDs, id) }

// TestEventWakerReconcilesNamedService: a launch event wakes exactly the
// service the instance is tagged for; its message is deleted only once a
// pass that began after the event was taken committed: not by a pass
// already running, not by a failed one.
func TestEventWakerReconcilesNamedService(t *testing.T) {
	_, c := envtestClient(t)
	w := newWakerRig(t, c)
	const svc, other = "wakeweb", "wakeother"
	w.launch(2, svc)
	w.launch(1, other)
	createService(t, c, v1alpha1.NamingServiceSpec{Service: svc})
	createService(t, c, v1alpha1.NamingServiceSpec{Service: other})
	rc := w.reconciler(c, w.store)
	rc.Events = w.waker
	rc.pass(t, svc)
	rc.pass(t, other)
	w.sqs.Follow(w.fleet)
	w.run(t)

	early := w.waker.BeginPass(svc) // a pass already running when the event comes
	w.clock.Step(time.Second)
	added := w.launch(1, svc)[0]
	if got := w.woken(t); got != svc {
		t.Fatalf("woke %q, want %q", got, svc)
	}
	early(context.Background(), controllers.Pass{}, nil)
	if !pending(w.src, added) {
		t.Fatal("a pass begun before the event was taken acknowledged it")
	}
	failed := w.waker.BeginPass(svc)
	failed(context.Background(), controllers.Pass{}, errors.New("ledger down"))
	if !pending(w.src, added) {
		t.Fatal("a failed pass acknowledged the event")
	}
	if w.sqs.Deleted() != 0 {
		t.Fatalf("%d messages deleted before any pass covered them", w.sqs.Deleted())
	}

	rc.pass(t, svc)
	if got := w.bound(svc); len(got) != 3 || !slices.Contains(slices.Collect(maps.Values(got)), added) {
		t.Fatalf("after the woken pass: %v, want 3 names including %s", got, added)
	}
	if pending(w.src, added) {
		t.Fatal("the committed pass did not acknowledge the event")
	}
	until(t, "the launch message deleted", func() bool { return w.sqs.Deleted() == 1 && w.sqs.Len() == 0 })
	ns := getService(t, c, svc)
	if cond := condition(ns, v1alpha1.ConditionEventsHealthy); cond.Status != metav1.ConditionTrue || cond.Reason != v1alpha1.ReasonEventsReceived {
		t.Errorf("EventsHealthy = %+v, want True/%s", cond, v1alpha1.ReasonEventsReceived)
	}
}

// TestEventWakerForgedMessages: a "terminated" for a running instance
// wakes its service, whose pass (on a complete listing) releases nothing;
// a message for an id EC2 does not know wakes nothing and is deleted.
func TestEventWakerForgedMessages(t *testing.T) {
	_, c := envtestClient(t)
	w := newWakerRig(t, c)
	const svc = "wakeforged"
	ids := w.launch(2, svc)
	createService(t, c, v1alpha1.NamingServiceSpec{Service: svc})
	rc := w.reconciler(c, w.store)
	rc.Events = w.waker
	rc.pass(t, svc)
	w.sqs.Follow(w.fleet)
	want := w.bound(svc)
	w.run(t)

	w.sqs.Send(fake.StateChangeBody("i-00000000000000bad", naming.StateTerminated, epoch))
	until(t, "the unknown id's message deleted", func() bool { return w.sqs.Deleted() == 1 })
	select {
	case ev := <-w.waker.Requests():
		t.Fatalf("an unknown instance woke %q", ev.Object)
	default:
	}

	w.sqs.Send(fake.StateChangeBody(ids[0], naming.StateTerminated, epoch))
	if got := w.woken(t); got != svc {
		t.Fatalf("woke %q, want %q", got, svc)
	}
	rc.pass(t, svc)
	if got := w.bound(svc); !maps.Equal(got, want) {
		t.Fatalf("a forged termination changed names: %v, want %v", got, want)
	}
	until(t, "the forged message deleted", func() bool { return w.sqs.Deleted() == 2 })
}

// TestEventsWakeManager: with the waker in a manager, a launch is named
// without any poll tick (the poll clock never moves).
func TestEventsWakeManager(t *testing.T) {
	cfg, c := envtestClient(t)
	w := newWakerRig(t, c)
	const svc = "wakemgr"
	w.sqs.Follow(w.fleet)
	w.launch(1, svc)
	createService(t, c, v1alpha1.NamingServiceSpec{Service: svc})
	mgr := newTestManager(t, cfg, ctrl.Options{})
	poller := controllers.NewPoller(time.Hour, w.clock).WithEvents(w.src, 0)
	rc := w.reconciler(mgr.GetClient(), w.store)
	rc.Events = w.waker
	if err := mgr.Add(poller); err != nil {
		t.Fatal(err)
	}
	if err := mgr.Add(w.waker); err != nil {
		t.Fatal(err)
	}
	if err := rc.SetupWithManager(mgr, poller.Ticks()); err != nil {
		t.Fatal(err)
	}
	startManager(t, mgr)
	until(t, "the existing instance named at start", func() bool { return len(w.bound(svc)) == 1 })

	w.clock.Step(time.Second)
	added := w.launch(1, svc)[0]
	until(t, "the launched instance named through its event", func() bool { return w.bound(svc)[svc+"-1"] == added })
	until(t, "every message deleted", func() bool { return w.sqs.Len() == 0 && len(w.src.Pending().IDs) == 0 })
}

// TestEventStormWithinBudgetInKubernetes: in a manager, 10,000 messages
// (a few real replacements among them) over 100 s of fake time cost no
// more DescribeInstances calls, counted at the fake EC2 server through
// the real SDK, than polling every 10 s would have over the same time
// plus the banked safety-net minute; without the budget each 1 s batch
// would describe and sweep again (some 200 calls). Every message is
// still deleted and every change named.
func TestEventStormWithinBudgetInKubernetes(t *testing.T) {
	cfg, c := envtestClient(t)
	w := newWakerRig(t, c)
	const interval, bank = 10 * time.Second, time.Minute
	services := []string{"stormk-a", "stormk-b", "stormk-c"}
	var ids []string
	for _, svc := range services {
		ids = append(ids, w.launch(50, svc)...)
		createService(t, c, v1alpha1.NamingServiceSpec{Service: svc})
	}
	mgr := newTestManager(t, cfg, ctrl.Options{})
	// As the controller wires it: the passes read one metered sweep, the
	// waker describes through the same budget and drops the sweep when it
	// takes a batch.
	budget := controllers.NewCallBudget(w.clock, interval, bank)
	shared := cloud.NewShared(budget.Meter(w.ec2), cloud.SharedOptions{TagKey: controllers.TagService, MaxAge: interval / 2, Clock: w.clock})
	waker, err := controllers.NewEventWaker(controllers.EventWakerOptions{Events: w.src, Cloud: w.ec2, Reader: mgr.GetClient(), Clock: w.clock,
		Debounce: -1, Gap: time.Second, Budget: budget, Cache: shared})
	if err != nil {
		t.Fatal(err)
	}
	m, err := controllers.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	rc := &controllers.NamingServiceReconciler{Client: mgr.GetClient(), Clock: w.clock, Events: waker,
		Syncer: controllers.NewSyncer(controllers.SyncerOptions{Cloud: shared, Store: w.store, Clock: w.clock, Metrics: m})}
	poller := controllers.NewPoller(interval, w.clock).WithEvents(w.src, bank)
	for _, r := range []manager.Runnable{poller, waker} {
		if err := mgr.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := rc.SetupWithManager(mgr, poller.Ticks()); err != nil {
		t.Fatal(err)
	}
	startManager(t, mgr)
	named := func() map[string]bool {
		out := map[string]bool{}
		for _, svc := range services {
			for _, id := range w.bound(svc) {
				out[id] = true
			}
		}
		return out
	}
	until(t, "the first passes named every instance", func() bool { return len(named()) == len(ids) })
	w.sqs.Follow(w.fleet)
	calls0, t0 := w.server.Calls("DescribeInstances"), w.clock.Now()

	var gone, added []string
	sent := w.src.Pending().Seq
	for round := range 100 {
		if round%10 == 0 { // a real replacement, announced by the fleet
			id := ids[round]
			if err := w.fleet.Terminate(id); err != nil {
				t.Fatal(err)
			}
			gone = append(gone, id)
			added = append(added, w.launch(1, services[round/50])...) // its own service
		}
		for i := range 100 {
			w.sqs.Send(fake.StateChangeBody(ids[(round*100+i)%len(ids)], naming.StateRunning, epoch))
		}
		sent += 100
		until(t, "the round's messages received", func() bool { return w.src.Pending().Seq >= sent })
		w.clock.Step(time.Second)
	}
	changed := func(got map[string]bool) bool {
		for _, id := range gone {
			if got[id] {
				return false
			}
		}
		for _, id := range added {
			if !got[id] {
				return false
			}
		}
		return true
	}
	until(t, "every message deleted and every change named", func() bool {
		if w.sqs.Len() == 0 && len(w.src.Pending().IDs) == 0 && changed(named()) {
			return true
		}
		w.clock.Step(time.Second)
		return false
	})
	calls, elapsed := w.server.Calls("DescribeInstances")-calls0, w.clock.Since(t0)
	// 150 instances: a sweep is one call, and so is a describe by id. The
	// budget may be overdrawn by one batch (a describe and a sweep).
	allowed := int(bank/interval) + int(elapsed/interval) + 2
	t.Logf("10,000 messages over %v of fake time: %d DescribeInstances calls, budget %d (polling every %v: %d)",
		elapsed, calls, allowed, interval, int(elapsed/interval))
	if calls > allowed {
		t.Errorf("%d DescribeInstances calls over %v, want at most %d", calls, elapsed, allowed)
	}
	if !changed(named()) {
		t.Error("names changed back after the storm")
	}
}
