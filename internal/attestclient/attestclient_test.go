package attestclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aerostat-io/aerostat/internal/attest"
	"github.com/aerostat-io/aerostat/internal/attestclient"
	"github.com/aerostat-io/aerostat/internal/cloud"
	"github.com/aerostat-io/aerostat/internal/cloud/fake"
)

// TestEvidence reads the signed document from a wire-level IMDSv2 (token
// first, as the real service demands) and checks it with the controller's
// own verifier, so the node sends exactly what the server can verify.
func TestEvidence(t *testing.T) {
	const region = "eu-west-1"
	signer, err := fake.NewIdentitySigner(region)
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := attest.ParseBundle(signer.Bundle())
	if err != nil {
		t.Fatal(err)
	}
	id := cloud.Identity{InstanceID: "i-0123456789abcdef0", PrivateIP: "10.1.2.3", Region: region}
	signed := fake.NewIMDS(id)
	signed.Sign(signer, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	tests := map[string]struct {
		handler  http.Handler
		url      string
		wantErr  string
		wantURLE bool // a transport failure the caller retries
	}{
		"signed":               {handler: signed},
		"not signed (off EC2)": {handler: fake.NewIMDS(id), wantErr: "instance-identity/rsa2048: 404"},
		"unreachable":          {url: gone.URL, wantErr: "session token", wantURLE: true},
		"oversized": {handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(strings.Repeat("A", attestclient.MaxSigned+1)))
		}), wantErr: "larger than 16384 bytes"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.handler != nil {
				srv := httptest.NewServer(tc.handler)
				defer srv.Close()
				tc.url = srv.URL
			}
			got, err := attestclient.Evidence(context.Background(), tc.url)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Evidence = %.40q, %v; want an error naming %q", got, err, tc.wantErr)
				}
				var ue *url.Error
				if errors.As(err, &ue) != tc.wantURLE {
					t.Fatalf("Evidence error %v: wraps *url.Error = %v, want %v", err, !tc.wantURLE, tc.wantURLE)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			doc, err := attest.Verify(bundle, []byte(got))
			if err != nil {
				t.Fatalf("the controller refuses what Evidence read: %v", err)
			}
			if doc.InstanceID != id.InstanceID || doc.PrivateIP != id.PrivateIP {
				t.Errorf("document = %+v, want %s at %s", doc, id.InstanceID, id.PrivateIP)
			}
		})
	}
}

func TestNonceFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "nonce")
	n1, err := attestclient.Nonce(path)
	if err != nil || len(n1) != 64 {
		t.Fatalf("first nonce %q, %v", n1, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("nonce file mode: %v, %v; want 0600 (it is a secret)", fi, err)
	}
	n2, err := attestclient.Nonce(path)
	if err != nil || n2 != n1 {
		t.Fatalf("second read %q, %v; want %q", n2, err, n1)
	}
	short := filepath.Join(t.TempDir(), "short")
	if err := os.WriteFile(short, []byte("abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := attestclient.Nonce(short); err == nil || !strings.Contains(err.Error(), short) || !strings.Contains(err.Error(), "3 characters") {
		t.Fatalf("3-character nonce file: %q, %v; want refused naming the file and length", n, err)
	}
	if b, _ := os.ReadFile(short); string(b) != "abc\n" {
		t.Fatalf("a refused nonce file was rewritten: %q", b)
	}
}

// TestPost: what the node sends and how it reads each kind of answer.
func TestPost(t *testing.T) {
	req := attestclient.Request{Signed: "c2lnbmVk", Nonce: strings.Repeat("ab", 32), InstanceID: "i-1", Info: "db masterful"}
	tests := map[string]struct {
		promote   bool
		status    int
		body      string
		want      string
		wantErr   string
		transient bool
	}{
		"register":        {status: 200, body: `{"name":"db-slave-1"}`, want: "db-slave-1"},
		"promote":         {promote: true, status: 200, body: `{"name":"db-master"}`, want: "db-master"},
		"refused":         {status: 403, body: `{"error":"instance not tagged"}`, wantErr: "403: instance not tagged"},
		"busy":            {status: 503, body: `{"error":"ec2 unavailable"}`, wantErr: "503", transient: true},
		"ok without name": {status: 200, body: `{}`, wantErr: "controller answered 200"},
		"not json":        {status: 502, body: `<html>bad gateway`, wantErr: "unreadable answer", transient: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var gotPath string
			var got attestclient.Request
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotPath = r.URL.Path
				if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
					t.Errorf("request body: %v", err)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			name, err := attestclient.Post(context.Background(), srv.Client(), srv.URL+"/", req, tc.promote)
			wantPath := attestclient.RegisterPath
			if tc.promote {
				wantPath = attestclient.PromotePath
			}
			if gotPath != wantPath || got != req {
				t.Errorf("controller got %s %+v, want %s %+v", gotPath, got, wantPath, req)
			}
			if tc.wantErr == "" {
				if err != nil || name != tc.want {
					t.Fatalf("Post = %q, %v; want %q", name, err, tc.want)
				}
				return
			}
			var se *attestclient.StatusError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.wantErr) || se.Transient() != tc.transient {
				t.Fatalf("Post = %q, %v; want a StatusError naming %q, transient %v", name, err, tc.wantErr, tc.transient)
			}
		})
	}
}

// TestPostRefusesPlainHTTP: the nonce is a secret; nothing is sent
// unless the URL is https.
func TestPostRefusesPlainHTTP(t *testing.T) {
	sent := false
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { sent = true }))
	defer srv.Close()
	_, err := attestclient.Post(context.Background(), srv.Client(), srv.URL, attestclient.Request{Nonce: "secret"}, false)
	if err == nil || !strings.Contains(err.Error(), "must be https://") {
		t.Fatalf("plain HTTP: %v, want refused", err)
	}
	if sent {
		t.Fatal("the request reached a plain-HTTP server")
	}
}
