package controllers

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1alpha1 "github.com/aerostat-io/aerostat/api/v1alpha1"
)

// TestReconcileDeletedForgets: a reconcile of a NamingService that no
// longer exists drops what the Syncer remembers of it, and only of it.
func TestReconcileDeletedForgets(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	s := NewSyncer(SyncerOptions{})
	for _, svc := range []string{"gone", "kept"} {
		s.missing[svc] = map[string]time.Time{"i-1": time.Unix(0, 0)}
		s.refused[svc] = "www: taken"
	}
	r := &NamingServiceReconciler{Client: c, Syncer: s}
	if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Name: "gone"}}); err != nil {
		t.Fatalf("reconcile of a deleted NamingService: %v", err)
	}
	if _, ok := s.missing["gone"]; ok {
		t.Error("missing-since times of the deleted service kept")
	}
	if _, ok := s.refused["gone"]; ok {
		t.Error("refused aliases of the deleted service kept")
	}
	if _, ok := s.missing["kept"]; !ok {
		t.Error("another service's memory dropped")
	}
}
