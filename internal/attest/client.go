package attest

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

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// Evidence reads this instance's signed identity document from IMDSv2
// (endpoint "" : AWS_EC2_METADATA_SERVICE_ENDPOINT, else 169.254.169.254).
func Evidence(ctx context.Context, endpoint string) (string, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return "", fmt.Errorf("loading aws config: %w", err)
	}
	client := imds.NewFromConfig(cfg, func(o *imds.Options) {
		if endpoint != "" {
			o.Endpoint = endpoint
		}
	})
	out, err := client.GetDynamicData(ctx, &imds.GetDynamicDataInput{Path: "instance-identity/rsa2048"})
	if err != nil {
		return "", fmt.Errorf("reading the signed identity document from instance metadata: %w", err)
	}
	defer out.Content.Close()
	b, err := io.ReadAll(io.LimitReader(out.Content, maxSigned+1))
	if err != nil {
		return "", fmt.Errorf("reading the signed identity document: %w", err)
	}
	if len(b) > maxSigned {
		return "", fmt.Errorf("signed identity document larger than %d bytes", maxSigned)
	}
	return strings.TrimSpace(string(b)), nil
}

// Nonce returns the nonce kept at path, making one (32 random bytes, hex,
// mode 0600, never overwriting) on first use. The controller binds it to
// the instance on the first attested request; keep the file for the
// instance's life.
func Nonce(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		n := strings.TrimSpace(string(b))
		if len(n) < minNonce || len(n) > maxNonce {
			return "", fmt.Errorf("nonce file %s: %d characters, want %d to %d", path, len(n), minNonce, maxNonce)
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
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&out); err != nil {
		return "", &StatusError{Status: resp.StatusCode, Message: fmt.Sprintf("unreadable answer: %v", err)}
	}
	if resp.StatusCode != http.StatusOK || out.Name == "" {
		return "", &StatusError{Status: resp.StatusCode, Message: out.Error}
	}
	return out.Name, nil
}
