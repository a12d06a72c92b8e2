package controllers_test

import (
	"context"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/healthz"

	"github.com/aerostat-io/aerostat/controllers"
	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/store/embedded"
)

// /readyz follows the ledger: ready while the embedded store answers, not
// ready once it is stopped, ready again when it is back on the same
// address, through the real driver and controller-runtime's handler.
func TestLedgerReadyFollowsTheStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	srv, err := embedded.Start(ctx, embedded.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(srv.URI())
	if err != nil {
		t.Fatal(err)
	}
	addr := u.Host
	store, err := ledger.Open(ctx, srv.URI(), ledger.Options{Database: "readyz"})
	if err != nil {
		_ = srv.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(context.Background()) })
	handler := &healthz.Handler{Checks: map[string]healthz.Checker{
		"ping": healthz.Ping, "ledger": controllers.LedgerReady(store, time.Second)}}
	readyz := func() int {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		return rec.Code
	}

	if code := readyz(); code != 200 {
		t.Fatalf("store up: /readyz = %d, want 200", code)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if code := readyz(); code != 500 {
		t.Fatalf("store stopped: /readyz = %d, want 500", code)
	}
	srv, err = embedded.Start(ctx, embedded.Options{DataDir: dir, Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	if code := readyz(); code != 200 {
		t.Fatalf("store back: /readyz = %d, want 200", code)
	}
}
