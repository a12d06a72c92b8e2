// Package imds reads the EC2 instance metadata service (IMDSv2) with
// net/http alone. The node agent's binary uses it instead of the AWS SDK,
// which it leaves out to keep the agent image small.
package imds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"
)

// DefaultEndpoint is the link-local metadata service of every instance.
const DefaultEndpoint = "http://169.254.169.254"

// EndpointEnv overrides DefaultEndpoint, as for the AWS SDKs.
const EndpointEnv = "AWS_EC2_METADATA_SERVICE_ENDPOINT"

// tokenTTL is the session token's life; one Client asks for one token per
// read, so a short life is enough.
const tokenTTL = "60"

// maxBody bounds a metadata answer (the signed identity document is the
// largest, about 2 KiB).
const maxBody = 64 << 10

// Client reads instance metadata. The zero value is not usable; use New.
type Client struct {
	endpoint string
	http     *http.Client
}

// New returns a client of endpoint ("" means $AWS_EC2_METADATA_SERVICE_ENDPOINT,
// else DefaultEndpoint). Each request is bounded by a 5 s timeout besides
// the caller's context: off EC2 the address does not answer at all.
func New(endpoint string) *Client {
	if endpoint == "" {
		endpoint = os.Getenv(EndpointEnv)
	}
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	return &Client{endpoint: strings.TrimSuffix(endpoint, "/"), http: &http.Client{Timeout: 5 * time.Second}}
}

// Get returns the trimmed body at /latest/<path>, e.g.
// "meta-data/instance-id" or "dynamic/instance-identity/rsa2048", after
// taking an IMDSv2 session token.
//
// Errors: the service unreachable, a status other than 200, a body over
// 64 KiB; each names the path.
func (c *Client) Get(ctx context.Context, path string) (string, error) {
	tok, err := c.do(ctx, http.MethodPut, "api/token", http.Header{"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": {tokenTTL}})
	if err != nil {
		return "", fmt.Errorf("reading instance metadata %s: session token: %w", path, err)
	}
	body, err := c.do(ctx, http.MethodGet, path, http.Header{"X-Aws-Ec2-Metadata-Token": {tok}})
	if err != nil {
		return "", fmt.Errorf("reading instance metadata %s: %w", path, err)
	}
	return body, nil
}

func (c *Client) do(ctx context.Context, method, path string, h http.Header) (string, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint+"/latest/"+path, nil)
	if err != nil {
		return "", err
	}
	req.Header = h
	resp, err := c.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if len(b) > maxBody {
		return "", errors.New("answer larger than 64 KiB")
	}
	return strings.TrimSpace(string(b)), nil
}

// Identity is the running instance as its metadata service describes it.
type Identity struct {
	InstanceID string
	PrivateIP  string
	Region     string
}

// Identity asks who this machine is. It fails when any field is missing
// or malformed, e.g. off EC2.
func (c *Client) Identity(ctx context.Context) (Identity, error) {
	var id Identity
	var err error
	if id.InstanceID, err = c.Get(ctx, "meta-data/instance-id"); err != nil {
		return Identity{}, err
	}
	if !strings.HasPrefix(id.InstanceID, "i-") {
		return Identity{}, fmt.Errorf("reading instance metadata: instance-id %q is not an instance id", id.InstanceID)
	}
	if id.PrivateIP, err = c.Get(ctx, "meta-data/local-ipv4"); err != nil {
		return Identity{}, err
	}
	if _, err := netip.ParseAddr(id.PrivateIP); err != nil {
		return Identity{}, fmt.Errorf("reading instance metadata: local-ipv4 %q is not an IP address", id.PrivateIP)
	}
	if id.Region, err = c.Get(ctx, "meta-data/placement/region"); err != nil {
		return Identity{}, err
	}
	if id.Region == "" {
		return Identity{}, errors.New("reading instance metadata: empty region")
	}
	return id, nil
}
