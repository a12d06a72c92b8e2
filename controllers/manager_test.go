package controllers_test

import (
	"context"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// newTestManager is a manager on the envtest API server: the suite's
// scheme, no metrics or probe listener, and controller name validation
// off (every test registers a controller of the same name). opts carries
// what a test adds (leader election).
func newTestManager(t *testing.T, cfg *rest.Config, opts ctrl.Options) manager.Manager {
	t.Helper()
	opts.Scheme = kube.scheme
	opts.Metrics = metricsserver.Options{BindAddress: "0"}
	opts.HealthProbeBindAddress = "0"
	opts.Controller = config.Controller{SkipNameValidation: ptr.To(true)}
	mgr, err := ctrl.NewManager(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return mgr
}

// startManager runs mgr until cancel is called or the test ends; done is
// closed once it returned. A start error fails the test.
func startManager(t *testing.T, mgr manager.Manager) (cancel context.CancelFunc, done <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-stopped })
	return cancel, stopped
}
