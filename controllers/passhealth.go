package controllers

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// PassHealth is the /readyz check "passes are not failing": it fails once
// a service's passes have failed, with no success in between, for longer
// than its window. LedgerReady alone would call a controller ready whose
// every pass fails (EC2 access denied, every write refused) as long as the
// ledger answers a rev read, while it names and reaps nothing.
//
// A replica that runs no passes (a standby in Kubernetes mode) stays
// ready: it has not failed, and it serves the feed as well as the leader.
// A lost compare-and-set is not a failure: the pass runs again at once.
type PassHealth struct {
	clock  clock.PassiveClock
	window time.Duration

	mu      sync.Mutex
	failing map[string]passFailure // by service; "" is a standalone pass
}

type passFailure struct {
	since time.Time
	err   error
}

// NewPassHealth returns a PassHealth that fails after passes have failed
// for window (see PassFailureWindow).
func NewPassHealth(c clock.PassiveClock, window time.Duration) *PassHealth {
	return &PassHealth{clock: c, window: window, failing: map[string]passFailure{}}
}

// PassFailureWindow is how long passes polled every interval may fail
// before readiness says so: three polls, so one throttled listing or a
// replica set election does not flap it, and at least a minute.
func PassFailureWindow(interval time.Duration) time.Duration {
	return max(3*interval, time.Minute)
}

// Observe records the outcome of one pass of service.
func (h *PassHealth) Observe(service string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		delete(h.failing, service)
		return
	}
	f, ok := h.failing[service]
	if !ok {
		f.since = h.clock.Now()
	}
	f.err = err
	h.failing[service] = f
}

// Forget drops a service that no longer exists.
func (h *PassHealth) Forget(service string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.failing, service)
}

// Check is the healthz.Checker. Its error names the services failing past
// the window, since when, and their last error.
func (h *PassHealth) Check(*http.Request) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.clock.Now()
	var stale []string
	for svc, f := range h.failing {
		if d := now.Sub(f.since); d > h.window {
			name := "passes"
			if svc != "" {
				name = fmt.Sprintf("passes of service %q", svc)
			}
			stale = append(stale, fmt.Sprintf("%s failing for %s (since %s): %v", name, d.Round(time.Second), f.since.UTC().Format(time.RFC3339), f.err))
		}
	}
	if len(stale) == 0 {
		return nil
	}
	sort.Strings(stale)
	return errors.New(strings.Join(stale, "; "))
}
