package feed

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// TestTokenReviewEnvtest runs the feed's TokenReview authenticator against
// a real API server (envtest): a projected-style token of the agents'
// ServiceAccount, for the feed's audience and bound to a pod on node-a,
// is accepted as node-a; a token for another audience, a token of another
// ServiceAccount and garbage are refused.
func TestTokenReviewEnvtest(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS unset: run with KUBEBUILDER_ASSETS=\"$(hack/setup-envtest.sh)\" (make test does)")
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() }) // a second Stop is a no-op
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const ns = "aerostat-system"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, sa := range []string{"aerostat-agent", "intruder"} {
		if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods := map[string]*corev1.Pod{}
	for _, sa := range []string{"aerostat-agent", "intruder"} {
		pod, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: sa + "-x"},
			Spec: corev1.PodSpec{NodeName: "node-a", ServiceAccountName: sa,
				Containers: []corev1.Container{{Name: "c", Image: "aerostat"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pods[sa] = pod
	}
	// What the kubelet does for a projected serviceAccountToken volume.
	token := func(sa, audience string) string {
		t.Helper()
		pod := pods[sa]
		tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{
			Audiences:         []string{audience},
			ExpirationSeconds: ptr.To[int64](3600),
			BoundObjectRef:    &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("token for %s (%s): %v", sa, audience, err)
		}
		return tr.Status.Token
	}
	fc := clocktesting.NewFakeClock(t0)
	a, err := NewTokenReview(TokenReviewOptions{Client: cs.AuthenticationV1().TokenReviews(),
		Users: []string{"system:serviceaccount:" + ns + ":aerostat-agent"}, Clock: fc})
	if err != nil {
		t.Fatal(err)
	}

	good := token("aerostat-agent", DefaultAudience)
	id, err := a.Authenticate(ctx, good)
	if err != nil {
		t.Fatalf("agent token refused: %v", err)
	}
	if id.Name != "system:serviceaccount:"+ns+":aerostat-agent" || id.Node != "node-a" {
		t.Errorf("identity %+v, want the agent ServiceAccount on node-a", id)
	}
	for name, tok := range map[string]string{
		"wrong audience":          token("aerostat-agent", "https://kubernetes.default.svc"),
		"other ServiceAccount":    token("intruder", DefaultAudience),
		"garbage":                 "eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
		"agent token, truncated":  good[:len(good)-4],
		"agent token for the API": token("aerostat-agent", "api"),
	} {
		if id, err := a.Authenticate(ctx, tok); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s: Authenticate = %+v, %v; want ErrUnauthenticated", name, id, err)
		} else {
			t.Logf("%s: refused: %v", name, err)
		}
	}

	// Answers are cached for a minute; past that an API server that cannot
	// be reached is "cannot check now" (503 to the agent), never a refusal
	// that would look like a bad token.
	if err := env.Stop(); err != nil {
		t.Fatal(err)
	}
	if id, err := a.Authenticate(ctx, good); err != nil || id.Node != "node-a" {
		t.Errorf("cached answer with the API server down: %+v, %v", id, err)
	}
	fc.Step(2 * time.Minute)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := a.Authenticate(cctx, good); err == nil || errors.Is(err, ErrUnauthenticated) {
		t.Errorf("API server down, cache expired: %v; want an error that is not ErrUnauthenticated", err)
	}
}
