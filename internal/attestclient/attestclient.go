// Package attestclient is the node's side of attestation and the wire
// format it shares with the controller's attest.Handler: read this
// instance's signed identity document from IMDSv2, keep the node's nonce,
// post both over HTTPS. It does no verification (that is the controller's,
// in internal/attest) and so imports neither the AWS SDK nor the ledger:
// register and promote --controller stay in the node agent's build.
package attestclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/aerostat-io/aerostat/internal/imds"
)

// Paths the controller serves beside the feed.
const (
	RegisterPath = "/attest/v1/register"
	PromotePath  = "/attest/v1/promote"
)

// Limits both sides apply.
const (
	// MaxSigned bounds the signed document (AWS's is about 1.5 KiB).
	MaxSigned = 16 << 10
	// MaxBody bounds a request or an answer (a signed document is ~2 KiB).
	MaxBody = 64 << 10
	// MinNonce and MaxNonce bound the nonce: a node makes 32 random
	// bytes, hex.
	MinNonce, MaxNonce = 32, 256
)

// identityPath is IMDS's PKCS7 SignedData holding the identity document
// (base64), which the controller checks against AWS's per-Region
// certificates.
const identityPath = "dynamic/instance-identity/rsa2048"

// Request is what a node posts.
type Request struct {
	// Signed is IMDS's /latest/dynamic/instance-identity/rsa2048 answer.
	Signed string `json:"signed"`
	// Nonce is the node's secret, bound to its instance on first use.
	Nonce string `json:"nonce"`
	// InstanceID is who the node believes it is; it must match the
	// signed document (a clear error for a node sending the wrong one).
	InstanceID string `json:"instanceId"`
	// Info is the node's 1.x info file: service [type [alias...]].
	Info string `json:"info"`
}

// Response is the controller's answer: the name, or why not.
type Response struct {
	Name  string `json:"name,omitempty"`
	Error string `json:"error,omitempty"`
}

// Evidence reads this instance's signed identity document from IMDSv2
// (endpoint "": AWS_EC2_METADATA_SERVICE_ENDPOINT, else 169.254.169.254).
//
// Errors: the metadata service unreachable (wrapping the *url.Error, so a
// caller may retry), a status other than 200 (e.g. 404 off EC2), an
// answer over MaxSigned.
func Evidence(ctx context.Context, endpoint string) (string, error) {
	signed, err := imds.New(endpoint).Get(ctx, identityPath)
	if err != nil {
		return "", fmt.Errorf("reading the signed identity document: %w", err)
	}
	if len(signed) > MaxSigned {
		return "", fmt.Errorf("signed identity document larger than %d bytes", MaxSigned)
	}
	return signed, nil
}

// Nonce returns the nonce kept at path, making one (32 random bytes, hex,
// mode 0600, never overwriting) on first use. The controller binds it to
// the instance on the first attested request; keep the file for the
// instance's life.
func Nonce(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		n := strings.TrimSpace(string(b))
		if len(n) < MinNonce || len(n) > MaxNonce {
			return "", fmt.Errorf("nonce file %s: %d characters, want %d to %d", path, len(n), MinNonce, MaxNonce)
		}
		return n, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("reading nonce file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("creating nonce file: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	n := hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return Nonce(path) // another register made it first
	}
	if err != nil {
		return "", fmt.Errorf("creating nonce file: %w", err)
	}
	if _, err := f.WriteString(n + "\n"); err != nil {
		_ = f.Close()
		return "", fmt.Errorf("writing nonce file: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return "", fmt.Errorf("writing nonce file: %w", err)
	}
	return n, f.Close()
}

// StatusError is the controller's refusal or failure.
type StatusError struct {
	Status  int
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("controller answered %d: %s", e.Status, e.Message)
}

// Transient reports a failure worth retrying (controller or EC2 briefly
// unavailable), as opposed to a refusal or bad input.
func (e *StatusError) Transient() bool {
	return e.Status == http.StatusServiceUnavailable || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// Post sends req to the controller at base (https://host:port) and returns
// the name held. promote selects PromotePath.
//
// Errors: base not https:// (the nonce is a secret); transport failures
// wrapping *url.Error; a *StatusError for any answer without a name.
func Post(ctx context.Context, client *http.Client, base string, req Request, promote bool) (string, error) {
	if !strings.HasPrefix(base, "https://") {
		return "", fmt.Errorf("controller URL %q: must be https:// (the nonce is a secret)", base)
	}
	path := RegisterPath
	if promote {
		path = PromotePath
	}
	body, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+path, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("controller URL %q: %w", base, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(hreq)
	if err != nil {
		return "", fmt.Errorf("asking the controller: %w", err)
	}
	defer resp.Body.Close()
	var out Response
	if err := json.NewDecoder(io.LimitReader(resp.Body, MaxBody)).Decode(&out); err != nil {
		return "", &StatusError{Status: resp.StatusCode, Message: fmt.Sprintf("unreadable answer: %v", err)}
	}
	if resp.StatusCode != http.StatusOK || out.Name == "" {
		return "", &StatusError{Status: resp.StatusCode, Message: out.Error}
	}
	return out.Name, nil
}
