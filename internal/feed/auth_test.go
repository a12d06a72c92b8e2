package feed

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/aerostat-io/aerostat/internal/feed/feedtest"
)

const (
	tokenA     = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	tokenB     = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	tokenCLI   = "cccccccccccccccccccccccccccccccccccccccc"
	tokensFile = tokenA + " agent-a node-a\n" + tokenB + " agent-b node-b\n# operators\n" + tokenCLI + " ops\n"
)

// guardedFeed serves a synced feed behind Guard over TLS with a
// self-signed certificate, and returns its URL and a client that trusts it.
func guardedFeed(t *testing.T, maxInFlight, perClient int, wrap func(http.Handler) http.Handler) (string, *tls.Config, *Handler) {
	t.Helper()
	st := feedtest.New()
	st.Bind("web-0", "web", "i-0", "10.0.0.1")
	h := NewHandler(st, Options{Clock: clocktesting.NewFakeClock(t0), MaxInFlight: maxInFlight})
	if err := h.SyncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	tf, err := ParseTokenFile("tokens", []byte(tokensFile))
	if err != nil {
		t.Fatal(err)
	}
	var next http.Handler = h
	if wrap != nil {
		next = wrap(h)
	}
	dir := t.TempDir()
	srvTLS, err := ServerTLS(ServerTLSOptions{Hosts: []string{"127.0.0.1"}, WriteCert: filepath.Join(dir, "feed.crt")})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(Guard(next, GuardOptions{Auth: tf, MaxPerClient: perClient}))
	srv.TLS = srvTLS
	srv.StartTLS()
	t.Cleanup(srv.Close)
	clientTLS, err := ClientTLS(filepath.Join(dir, "feed.crt"))
	if err != nil {
		t.Fatal(err)
	}
	return srv.URL, clientTLS, h
}

func authGet(t *testing.T, c *http.Client, url, token, node string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if node != "" {
		req.Header.Set(NodeHeader, node)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// Each attack on the feed, tried and refused: no token, a wrong token, a
// node reporting as another node, a reader's token reporting as a node.
func TestGuardRefuses(t *testing.T) {
	url, clientTLS, h := guardedFeed(t, 0, 0, nil)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS}}
	tests := map[string]struct {
		path, token, node string
		want              int
	}{
		"no token":                {Path, "", "", http.StatusUnauthorized},
		"unknown token":           {Path, strings.Repeat("x", 40), "", http.StatusUnauthorized},
		"no token, nodes table":   {NodesPath, "", "", http.StatusUnauthorized},
		"spoofed node":            {Path, tokenA, "node-b", http.StatusForbidden},
		"reader token reporting":  {Path, tokenCLI, "node-a", http.StatusForbidden},
		"own node":                {Path, tokenA, "node-a", http.StatusOK},
		"reader token, no node":   {Path, tokenCLI, "", http.StatusOK},
		"node token, nodes table": {NodesPath, tokenB, "", http.StatusOK},
		"prefix of a token":       {Path, tokenA[:35], "", http.StatusUnauthorized},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, body := authGet(t, c, url+tc.path, tc.token, tc.node)
			if code != tc.want {
				t.Fatalf("GET %s = %d %q, want %d", tc.path, code, body, tc.want)
			}
		})
	}
	// Only the authenticated node's own report reached the table.
	conv := h.Convergence()
	if len(conv.Nodes) != 1 || conv.Nodes[0].Name != "node-a" {
		t.Errorf("node table %+v, want node-a only", conv.Nodes)
	}
	// Plain HTTP to the TLS port is refused; a client that does not trust
	// the feed's certificate gets no answer.
	if resp, err := http.Get(strings.Replace(url, "https://", "http://", 1) + Path); err == nil {
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP served the feed")
		}
		resp.Body.Close()
	}
	if _, err := http.Get(url + Path); err == nil {
		t.Error("a client without the feed's CA connected")
	}
}

// One client holding its per-client cap of long-polls cannot take the
// rest of the global slots: its next request gets 429 while another
// agent is still served.
func TestGuardPerClientCap(t *testing.T) {
	entered := make(chan struct{}, 8)
	url, clientTLS, _ := guardedFeed(t, 4, 2, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			next.ServeHTTP(w, r)
		})
	})
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS}}
	// Long-polls that wait for a change: current epoch and rev.
	code, body := authGet(t, c, url+Path, tokenA, "")
	if code != http.StatusOK {
		t.Fatalf("first GET = %d %s", code, body)
	}
	<-entered
	var resp Response
	if err := jsonDecode(body, &resp); err != nil {
		t.Fatal(err)
	}
	poll := fmt.Sprintf("%s%s?since=%d&epoch=%s&wait=60s", url, Path, resp.Rev, resp.Epoch)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 2)
	for range 2 {
		go func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, poll, nil)
			req.Header.Set("Authorization", "Bearer "+tokenA)
			resp, err := c.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			done <- err
		}()
	}
	<-entered
	<-entered // both of A's long-polls are inside the handler
	if code, body := authGet(t, c, url+Path, tokenA, ""); code != http.StatusTooManyRequests {
		t.Errorf("A's third request = %d %q, want 429", code, body)
	}
	if code, body := authGet(t, c, url+Path, tokenB, ""); code != http.StatusOK {
		t.Errorf("B while A holds its cap = %d %q, want 200", code, body)
	}
	cancel()
	for range 2 {
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("long-poll ended: %v", err)
		}
	}
}

// A slow-loris client that sends half a request line and stops is cut off
// once the server's header deadline passes.
func TestServerClosesSlowLoris(t *testing.T) {
	srv := NewServer("127.0.0.1:0", http.NotFoundHandler(), 0)
	// The production server must bound headers and bodies itself (Go's
	// zero values wait forever); the wait below then runs on a shorter
	// header deadline than its 5 s.
	if srv.ReadHeaderTimeout <= 0 || srv.ReadHeaderTimeout > 10*time.Second || srv.ReadTimeout <= 0 || srv.MaxHeaderBytes <= 0 {
		t.Fatalf("feed server limits: header %v, read %v, header bytes %d", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.MaxHeaderBytes)
	}
	srv.ReadHeaderTimeout = 300 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /v1/hosts HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	// Bound the test itself, far beyond the server's deadline.
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	_, err = io.ReadAll(bufio.NewReader(conn))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept a half-sent request open for a minute")
	}
}

func TestParseTokenFile(t *testing.T) {
	tests := map[string]struct {
		in      string
		wantErr string
	}{
		"ok":          {tokensFile, ""},
		"short token": {"abc agent node-a\n", "at least 32"},
		"no name":     {tokenA + "\n", "want `<token> <name> [<node>]`"},
		"bad node":    {tokenA + " a no/de\n", "not a node name"},
		"duplicate":   {tokenA + " a\n" + tokenA + " b\n", "listed twice"},
		"empty":       {"# nothing\n", "no tokens"},
		"extra field": {tokenA + " a b c\n", "line 1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ParseTokenFile("tokens", []byte(tc.in))
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func FuzzParseTokenFile(f *testing.F) {
	f.Add([]byte(tokensFile))
	f.Add([]byte("x y z w\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tf, err := ParseTokenFile("fuzz", data)
		if err != nil {
			return
		}
		for sum, id := range tf.ids {
			if id.Name == "" || (id.Node != "" && !ValidNodeName(id.Node)) {
				t.Fatalf("parsed %x to %+v", sum, id)
			}
		}
	})
}

func TestFileToken(t *testing.T) {
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(tokenA+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	read := FileToken(p)
	if got, err := read(); err != nil || got != tokenA {
		t.Fatalf("token = %q, %v", got, err)
	}
	// The kubelet rotates the projected token: the next read sees it.
	if err := os.WriteFile(p, []byte(tokenB), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := read(); got != tokenB {
		t.Errorf("after rotation token = %q", got)
	}
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := read(); err == nil {
		t.Error("empty token file accepted")
	}
}

func jsonDecode(body string, v any) error { return json.Unmarshal([]byte(body), v) }
