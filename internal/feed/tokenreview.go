package feed

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
)

// NodeNameExtra is the TokenReview user extra that names the node a
// projected ServiceAccount token's pod runs on (Kubernetes 1.30+).
const NodeNameExtra = "authentication.kubernetes.io/node-name"

// DefaultAudience is the audience agents' projected tokens are made for.
// A token for another audience (the API server's own, say) is refused, so
// a token stolen from the feed cannot be replayed against the API server
// and the other way round.
const DefaultAudience = "aerostat-feed"

// TokenReviewer creates TokenReviews: client-go's
// AuthenticationV1().TokenReviews(). The feed names only the method it
// calls, so the node agent's build, which links the feed's client, leaves
// client-go's typed clients out. Errors are the API server's.
type TokenReviewer interface {
	Create(ctx context.Context, tr *authnv1.TokenReview, opts metav1.CreateOptions) (*authnv1.TokenReview, error)
}

// TokenReviewOptions configure NewTokenReview.
type TokenReviewOptions struct {
	Client TokenReviewer
	// Audience the token must be issued for; DefaultAudience when empty.
	Audience string
	// Users who may read the feed, e.g.
	// system:serviceaccount:aerostat-system:aerostat-agent. Required: any
	// pod can mint a token with any audience for its own ServiceAccount.
	Users []string
	// CacheTTL is how long a review's answer is reused (default 1 min;
	// refusals for 10 s), so thousands of long-polling agents cost a
	// TokenReview a minute each, not one a request.
	CacheTTL time.Duration
	// MaxCache bounds the cache (default 20,000 tokens).
	MaxCache int
	Clock    clock.PassiveClock
}

// TokenReview authenticates Kubernetes ServiceAccount tokens with the
// TokenReview API.
type TokenReview struct {
	opts  TokenReviewOptions
	mu    sync.Mutex
	cache map[[sha256.Size]byte]reviewed
}

type reviewed struct {
	id      Identity
	err     error
	expires time.Time
}

// NewTokenReview returns a TokenReview authenticator.
func NewTokenReview(o TokenReviewOptions) (*TokenReview, error) {
	if o.Client == nil {
		return nil, fmt.Errorf("token review: no client")
	}
	if len(o.Users) == 0 {
		return nil, fmt.Errorf("token review: no users allowed (name the agents' ServiceAccount)")
	}
	if o.Audience == "" {
		o.Audience = DefaultAudience
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = time.Minute
	}
	if o.MaxCache <= 0 {
		o.MaxCache = 20000
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return &TokenReview{opts: o, cache: map[[sha256.Size]byte]reviewed{}}, nil
}

// Authenticate implements Authenticator.
func (a *TokenReview) Authenticate(ctx context.Context, token string) (Identity, error) {
	sum := sha256.Sum256([]byte(token))
	now := a.opts.Clock.Now()
	a.mu.Lock()
	c, ok := a.cache[sum]
	a.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.id, c.err
	}
	id, err := a.review(ctx, token)
	ttl := a.opts.CacheTTL
	switch {
	case err == nil:
	case errors.Is(err, ErrUnauthenticated):
		ttl = min(ttl, 10*time.Second)
	default:
		return Identity{}, err // not cached: the API may be back next time
	}
	a.mu.Lock()
	if len(a.cache) >= a.opts.MaxCache {
		for k, v := range a.cache {
			if !now.Before(v.expires) || len(a.cache) >= a.opts.MaxCache {
				delete(a.cache, k)
			}
		}
	}
	a.cache[sum] = reviewed{id: id, err: err, expires: now.Add(ttl)}
	a.mu.Unlock()
	return id, err
}

func (a *TokenReview) review(ctx context.Context, token string) (Identity, error) {
	tr, err := a.opts.Client.Create(ctx, &authnv1.TokenReview{
		Spec: authnv1.TokenReviewSpec{Token: token, Audiences: []string{a.opts.Audience}},
	}, metav1.CreateOptions{})
	if err != nil {
		return Identity{}, fmt.Errorf("token review: %w", err)
	}
	st := tr.Status
	if !st.Authenticated {
		return Identity{}, fmt.Errorf("%w: %s", ErrUnauthenticated, st.Error)
	}
	// An API server that ignores audiences answers without them.
	if !slices.Contains(st.Audiences, a.opts.Audience) {
		return Identity{}, fmt.Errorf("%w: token not issued for audience %q", ErrUnauthenticated, a.opts.Audience)
	}
	if !slices.Contains(a.opts.Users, st.User.Username) {
		return Identity{}, fmt.Errorf("%w: %q may not read the feed", ErrUnauthenticated, st.User.Username)
	}
	id := Identity{Name: st.User.Username}
	if nodes := st.User.Extra[NodeNameExtra]; len(nodes) == 1 {
		id.Node = nodes[0]
	}
	return id, nil
}
