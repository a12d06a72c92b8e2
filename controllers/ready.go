package controllers

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/aerostat-io/aerostat/internal/ledger"
)

// DefaultReadyTimeout bounds the readiness check's ledger read: below the
// kubelet's probe timeout would be ideal, but a replica set election can
// take a few seconds and should not flap every replica out of service.
const DefaultReadyTimeout = 2 * time.Second

// LedgerReady is the /readyz check of both modes (a healthz.Checker): the
// ledger answers a rev read within timeout. A controller that cannot reach
// its ledger can neither plan nor serve the feed, so it says so instead of
// reporting ready. The error names the ledger read that failed.
func LedgerReady(store ledger.Store, timeout time.Duration) func(*http.Request) error {
	return func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), timeout)
		defer cancel()
		if _, err := store.Rev(ctx); err != nil {
			return fmt.Errorf("reading the ledger rev: %w", err)
		}
		return nil
	}
}
