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

	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// The standalone probes serve the readiness check they are given, as the
// manager does in Kubernetes mode: /readyz fails with the check's name
// while it fails, /healthz stays ok.
func TestStandaloneProbesServeReadiness(t *testing.T) {
	var down atomic.Bool
	ready := func(*http.Request) error {
		if down.Load() {
			return errors.New("ledger unreachable")
		}
		return nil
	}
	endpoints, err := standaloneEndpoints(controllerFlags{probeAddr: "127.0.0.1:0"}, ready)
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
		path       string
		wantCode   int
		wantInBody string
	}{
		{false, "/readyz", 200, "ok"},
		{false, "/readyz/ledger", 200, "ok"},
		{true, "/readyz", 500, "[-]ledger failed"},
		{true, "/readyz/ledger", 500, "internal server error"},
		{true, "/healthz", 200, "ok"},
		{false, "/readyz", 200, "ok"},
	}
	for _, tt := range tests {
		down.Store(tt.down)
		code, body := get(tt.path + "?verbose")
		if code != tt.wantCode || !strings.Contains(body, tt.wantInBody) {
			t.Errorf("ledger down %v: GET %s = %d %q, want %d containing %q", tt.down, tt.path, code, body, tt.wantCode, tt.wantInBody)
		}
	}
}
