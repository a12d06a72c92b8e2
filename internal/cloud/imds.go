package cloud

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// IMDSOptions configure SelfIdentity.
type IMDSOptions struct {
	// Endpoint overrides the metadata service address (tests); without it
	// the SDK honours AWS_EC2_METADATA_SERVICE_ENDPOINT, else 169.254.169.254.
	Endpoint string
}

// Identity is the running instance as its metadata service describes it.
type Identity struct {
	InstanceID string
	PrivateIP  string
	Region     string
}

// SelfIdentity asks the instance metadata service (IMDSv2: the SDK client
// fetches the session token) who this machine is. It fails when any field
// is missing or malformed, e.g. off EC2.
func SelfIdentity(ctx context.Context, opts IMDSOptions) (Identity, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return Identity{}, fmt.Errorf("loading aws config: %w", err)
	}
	client := imds.NewFromConfig(cfg, func(o *imds.Options) {
		if opts.Endpoint != "" {
			o.Endpoint = opts.Endpoint
		}
	})
	var id Identity
	if id.InstanceID, err = metadata(ctx, client, "instance-id"); err != nil {
		return Identity{}, err
	}
	if !strings.HasPrefix(id.InstanceID, "i-") {
		return Identity{}, fmt.Errorf("reading instance metadata: instance-id %q is not an instance id", id.InstanceID)
	}
	if id.PrivateIP, err = metadata(ctx, client, "local-ipv4"); err != nil {
		return Identity{}, err
	}
	if _, err := netip.ParseAddr(id.PrivateIP); err != nil {
		return Identity{}, fmt.Errorf("reading instance metadata: local-ipv4 %q is not an IP address", id.PrivateIP)
	}
	region, err := client.GetRegion(ctx, &imds.GetRegionInput{})
	if err != nil {
		return Identity{}, fmt.Errorf("reading instance metadata region: %w", err)
	}
	if region.Region == "" {
		return Identity{}, fmt.Errorf("reading instance metadata: empty region")
	}
	id.Region = region.Region
	return id, nil
}

func metadata(ctx context.Context, client *imds.Client, path string) (string, error) {
	out, err := client.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
	if err != nil {
		return "", fmt.Errorf("reading instance metadata %s: %w", path, err)
	}
	defer out.Content.Close()
	b, err := io.ReadAll(io.LimitReader(out.Content, 4096))
	if err != nil {
		return "", fmt.Errorf("reading instance metadata %s: %w", path, err)
	}
	return strings.TrimSpace(string(b)), nil
}
