package feed

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/go-logr/logr"
)

// ErrUnauthenticated is returned by an Authenticator for a credential it
// does not accept (unknown, expired, wrong audience, wrong account).
var ErrUnauthenticated = errors.New("unauthenticated")

// Identity is who a feed request comes from.
type Identity struct {
	// Name is the authenticated user, e.g.
	// system:serviceaccount:aerostat-system:aerostat-agent or a token
	// file's name.
	Name string
	// Node is the node the credential is bound to (a projected
	// ServiceAccount token's node, a token file's node); empty when the
	// credential is not bound to one, and then it may not report as a node.
	Node string
}

// key is what the per-client cap counts by.
func (id Identity) key() string { return id.Name + "\x00" + id.Node }

// Authenticator checks a bearer token.
//
// Error contract: an error wrapping ErrUnauthenticated means the token is
// refused (the client gets 401); any other error means the check could not
// be made (the client gets 503 and retries), and is logged.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Identity, error)
}

// TokenFile authenticates the bearer tokens listed in a file, one a line:
// `<token> <name> [<node>]` (blank lines and lines starting with # are
// skipped). A line with a node binds the token to that node; without, the
// token may read but not report as a node. For standalone controllers.
type TokenFile struct {
	ids map[[sha256.Size]byte]Identity
}

// LoadTokenFile reads a token file. Errors name the file and line.
func LoadTokenFile(path string) (*TokenFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("feed token file: %w", err)
	}
	return ParseTokenFile(path, data)
}

// minTokenLen keeps guessable tokens out.
const minTokenLen = 32

// ParseTokenFile parses token file content; name is used in errors.
func ParseTokenFile(name string, data []byte) (*TokenFile, error) {
	tf := &TokenFile{ids: map[[sha256.Size]byte]Identity{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || len(f) > 3 {
			return nil, fmt.Errorf("%s line %d: want `<token> <name> [<node>]`", name, n)
		}
		if len(f[0]) < minTokenLen {
			return nil, fmt.Errorf("%s line %d: token of %d characters, want at least %d (e.g. `openssl rand -hex 32`)", name, n, len(f[0]), minTokenLen)
		}
		id := Identity{Name: f[1]}
		if len(f) == 3 {
			if !ValidNodeName(f[2]) {
				return nil, fmt.Errorf("%s line %d: node %.64q: not a node name", name, n, f[2])
			}
			id.Node = f[2]
		}
		sum := sha256.Sum256([]byte(f[0]))
		if _, dup := tf.ids[sum]; dup {
			return nil, fmt.Errorf("%s line %d: token listed twice", name, n)
		}
		tf.ids[sum] = id
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(tf.ids) == 0 {
		return nil, fmt.Errorf("%s: no tokens", name)
	}
	return tf, nil
}

// Authenticate implements Authenticator. Tokens are compared by their
// SHA-256 in constant time, so timing tells nothing about a valid token.
func (tf *TokenFile) Authenticate(_ context.Context, token string) (Identity, error) {
	sum := sha256.Sum256([]byte(token))
	var found Identity
	ok := false
	for k, id := range tf.ids {
		if subtle.ConstantTimeCompare(k[:], sum[:]) == 1 {
			found, ok = id, true
		}
	}
	if !ok {
		return Identity{}, fmt.Errorf("%w: unknown token", ErrUnauthenticated)
	}
	return found, nil
}

// GuardOptions configure Guard.
type GuardOptions struct {
	Auth Authenticator
	// MaxPerClient bounds the requests one identity may have in flight
	// (an agent needs one long-poll); default 4. Past it: 429.
	MaxPerClient int
	Logger       logr.Logger
}

// Guard puts authentication, a per-client in-flight cap and the node
// check in front of a feed handler: a request without a valid bearer
// token gets 401; one whose Aerostat-Node header names another node than
// its credential is bound to gets 403, so a node can report only itself;
// one identity holding MaxPerClient requests gets 429 on the next, so it
// cannot take the handler's global slots from other agents.
func Guard(next http.Handler, opts GuardOptions) http.Handler {
	if opts.MaxPerClient <= 0 {
		opts.MaxPerClient = 4
	}
	return &guard{next: next, opts: opts, inFlight: map[string]int{}}
}

type guard struct {
	next     http.Handler
	opts     GuardOptions
	mu       sync.Mutex
	inFlight map[string]int
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" || len(token) > 16<<10 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="aerostat-feed"`)
		http.Error(w, "a bearer token is required", http.StatusUnauthorized)
		return
	}
	id, err := g.opts.Auth.Authenticate(r.Context(), token)
	if errors.Is(err, ErrUnauthenticated) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="aerostat-feed", error="invalid_token"`)
		http.Error(w, "token refused", http.StatusUnauthorized)
		return
	}
	if err != nil {
		g.opts.Logger.Error(err, "feed: checking a token")
		w.Header().Set("Retry-After", "5")
		http.Error(w, "cannot check the token now", http.StatusServiceUnavailable)
		return
	}
	if node := r.Header.Get(NodeHeader); node != "" && node != id.Node {
		http.Error(w, fmt.Sprintf("%s %.64q: the credential of %q is not bound to that node", NodeHeader, node, id.Name), http.StatusForbidden)
		return
	}
	if !g.acquire(id.key()) {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "too many requests in flight for this client", http.StatusTooManyRequests)
		return
	}
	defer g.release(id.key())
	g.next.ServeHTTP(w, r)
}

func (g *guard) acquire(k string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inFlight[k] >= g.opts.MaxPerClient {
		return false
	}
	g.inFlight[k]++
	return true
}

func (g *guard) release(k string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inFlight[k]--; g.inFlight[k] <= 0 {
		delete(g.inFlight, k)
	}
}
