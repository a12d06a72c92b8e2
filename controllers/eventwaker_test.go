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
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/aerostat-io/aerostat/api/v1alpha1"
	"github.com/aerostat-io/aerostat/controllers"
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
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 kube.scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	until(t, "the existing instance named at start", func() bool { return len(w.bound(svc)) == 1 })

	w.clock.Step(time.Second)
	added := w.launch(1, svc)[0]
	until(t, "the launched instance named through its event", func() bool { return w.bound(svc)[svc+"-1"] == added })
	until(t, "every message deleted", func() bool { return w.sqs.Len() == 0 && len(w.src.Pending().IDs) == 0 })
}
