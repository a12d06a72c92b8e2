//go:build !agentonly

package main

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// TestMetricsNeedAuthorization starts a manager with the controller's
// metrics options against envtest and scrapes /metrics: without a token
// it is refused (401), with the token of a ServiceAccount not allowed get
// on /metrics it is forbidden (403), and with one bound to the
// metrics-reader ClusterRole it is served.
func TestMetricsNeedAuthorization(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is unset: run hack/setup-envtest.sh and export its output (make test does)")
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := "monitoring"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, sa := range []string{"prometheus", "nosy"} {
		if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "aerostat-metrics-reader"},
		Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "prometheus"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "aerostat-metrics-reader"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "prometheus", Namespace: ns}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	token := func(sa string) string {
		tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authnv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // the manager binds it again; nothing else asks for a port here
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Metrics: metricsOptions(addr, true)})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() { started <- mgr.Start(ctx) }()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		// controller-runtime's self-signed serving certificate.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // a test against a self-signed certificate
	}}
	scrape := func(token string) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	// Wait for the server: the manager reports nothing when it is up, so
	// retry connection errors only (never a status).
	var code int
	for {
		code, err = scrape("")
		if err == nil {
			break
		}
		select {
		case err := <-started:
			t.Fatalf("manager stopped: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if code != http.StatusUnauthorized {
		t.Errorf("scrape without a token = %d, want 401", code)
	}
	for sa, want := range map[string]int{"nosy": http.StatusForbidden, "prometheus": http.StatusOK} {
		code, err := scrape(token(sa))
		if err != nil || code != want {
			t.Errorf("scrape as %s = %d, %v; want %d", sa, code, err, want)
		}
	}
	// controller-runtime's filter answers a token TokenReview rejects with
	// an error status (401 or 500 depending on the rejection): refused.
	if code, err := scrape("not-a-token"); err != nil || code == http.StatusOK {
		t.Errorf("scrape with a bad token = %d, %v; want it refused", code, err)
	} else {
		t.Logf("bad token: %d", code)
	}
}
