//go:build !agentonly

package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/aerostat-io/aerostat/controllers"
)

// The standalone probes serve the readiness checks they are given, as the
// manager does in Kubernetes mode: /readyz fails with the check's name
// while it fails (the ledger unreachable, passes failing past their
// window), /healthz stays ok.
func TestStandaloneProbesServeReadiness(t *testing.T) {
	var down atomic.Bool
	ready := func(*http.Request) error {
		if down.Load() {
			return errors.New("ledger unreachable")
		}
		return nil
	}
	clk := clocktesting.NewFakePassiveClock(time.Unix(0, 0))
	health := controllers.NewPassHealth(clk, time.Minute)
	checks := map[string]healthz.Checker{"ping": healthz.Ping, "ledger": ready, "passes": health.Check}
	endpoints, err := standaloneEndpoints(controllerFlags{probeAddr: "127.0.0.1:0"}, checks)
	if err != nil {
		t.Fatal(err)
	}
	if len(endpoints) != 1 {
		t.Fatalf("got %d endpoints, want the probes only", len(endpoints))
	}
	srv, ok := endpoints[0].(*manager.Server)
	if !ok {
		t.Fatalf("endpoint is a %T, want a *manager.Server", endpoints[0])
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	base := "http://" + srv.Listener.Addr().String()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		down       bool
		failingFor time.Duration // passes failing this long; 0: passing
		path       string
		wantCode   int
		wantInBody string
	}{
		{false, 0, "/readyz", 200, "ok"},
		{false, 0, "/readyz/ledger", 200, "ok"},
		{true, 0, "/readyz", 500, "[-]ledger failed"},
		{true, 0, "/readyz/ledger", 500, "internal server error"},
		{true, 0, "/healthz", 200, "ok"},
		{false, 0, "/readyz", 200, "ok"},
		{false, 30 * time.Second, "/readyz", 200, "[+]passes ok"},
		{false, 2 * time.Minute, "/readyz", 500, "[-]passes failed"},
		{false, 2 * time.Minute, "/healthz", 200, "ok"},
		{false, 0, "/readyz", 200, "ok"},
	}
	for _, tt := range tests {
		down.Store(tt.down)
		health.Observe("", nil)
		if tt.failingFor > 0 {
			health.Observe("", errors.New("describing instances: UnauthorizedOperation"))
			clk.SetTime(clk.Now().Add(tt.failingFor))
		}
		code, body := get(tt.path + "?verbose")
		if code != tt.wantCode || !strings.Contains(body, tt.wantInBody) {
			t.Errorf("ledger down %v, passes failing for %v: GET %s = %d %q, want %d containing %q", tt.down, tt.failingFor, tt.path, code, body, tt.wantCode, tt.wantInBody)
		}
	}
}
