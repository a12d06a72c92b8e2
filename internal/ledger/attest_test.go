package ledger_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aerostat-io/aerostat/internal/ledger"
	"github.com/aerostat-io/aerostat/internal/ledger/ledgertest"
)

func TestBindAttestation(t *testing.T) {
	ctx := context.Background()
	m := ledgertest.New(t)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	first, err := m.BindAttestation(ctx, ledger.Attestation{InstanceID: "i-1", NonceHash: "aa", PendingTime: t0})
	if err != nil || first.NonceHash != "aa" || !first.PendingTime.Equal(t0) || first.FirstSeen.IsZero() {
		t.Fatalf("first binding = %+v, %v", first, err)
	}
	// A later request with another nonce gets the first binding back.
	again, err := m.BindAttestation(ctx, ledger.Attestation{InstanceID: "i-1", NonceHash: "bb", PendingTime: t0.Add(time.Hour)})
	if err != nil || again.NonceHash != "aa" || !again.PendingTime.Equal(t0) {
		t.Fatalf("second binding = %+v, %v; want the first kept", again, err)
	}
	// Only the matching nonce advances pendingTime, and only forward.
	if err := m.AdvanceAttestation(ctx, "i-1", "bb", t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := m.AdvanceAttestation(ctx, "i-1", "aa", t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.BindAttestation(ctx, ledger.Attestation{InstanceID: "i-1", NonceHash: "aa"}); !got.PendingTime.Equal(t0) {
		t.Fatalf("pending after wrong nonce / older time = %v, want %v", got.PendingTime, t0)
	}
	if err := m.AdvanceAttestation(ctx, "i-1", "aa", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.BindAttestation(ctx, ledger.Attestation{InstanceID: "i-1", NonceHash: "aa"}); !got.PendingTime.Equal(t0.Add(time.Hour)) {
		t.Fatalf("pending after advance = %v, want %v", got.PendingTime, t0.Add(time.Hour))
	}

	// Racing first requests: exactly one nonce wins and all see it.
	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := m.BindAttestation(ctx, ledger.Attestation{InstanceID: "i-race", NonceHash: string(rune('a' + i)), PendingTime: t0})
			if err != nil {
				t.Error(err)
			}
			got[i] = a.NonceHash
		}()
	}
	wg.Wait()
	for _, g := range got {
		if g != got[0] || g == "" {
			t.Fatalf("racing binds saw %q: want one winner", got)
		}
	}

	ro := ledgertest.Open(t, ledger.Options{Database: m.Database(), ReadOnly: true})
	if _, err := ro.BindAttestation(ctx, ledger.Attestation{InstanceID: "i-2", NonceHash: "cc", PendingTime: t0}); err == nil {
		t.Fatal("read-only ledger bound an attestation")
	}
}
