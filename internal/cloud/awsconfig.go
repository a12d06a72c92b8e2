package cloud

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
)

// ErrNoRegion: neither the options nor the default chain name a region.
var ErrNoRegion = errors.New("no aws region")

// AWSOptions configure LoadAWSConfig. Zero values take the default AWS
// chain (env, shared config, IRSA web identity, instance role) and the
// defaults below.
type AWSOptions struct {
	// Region overrides AWS_REGION / the shared config.
	Region string
	// Credentials override the default chain.
	Credentials aws.CredentialsProvider
	HTTPClient  aws.HTTPClient
	// MaxAttempts per API call, first try included (SDK standard
	// retryer; default DefaultMaxAttempts).
	MaxAttempts int
	// MaxBackoff caps the retryer's jittered exponential back-off (zero:
	// the SDK's 20 s).
	MaxBackoff time.Duration
}

// LoadAWSConfig is the AWS configuration every client of ours (EC2, SQS)
// is built from, so they retry, authenticate and reach AWS alike. It does
// no network I/O; without a region it fails with ErrNoRegion.
func LoadAWSConfig(ctx context.Context, opts AWSOptions) (aws.Config, error) {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	loaders := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = opts.MaxAttempts
				if opts.MaxBackoff > 0 {
					o.MaxBackoff = opts.MaxBackoff
					o.Backoff = retry.NewExponentialJitterBackoff(opts.MaxBackoff)
				}
			})
		}),
	}
	if opts.Region != "" {
		loaders = append(loaders, config.WithRegion(opts.Region))
	}
	if opts.Credentials != nil {
		loaders = append(loaders, config.WithCredentialsProvider(opts.Credentials))
	}
	if opts.HTTPClient != nil {
		loaders = append(loaders, config.WithHTTPClient(opts.HTTPClient))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loaders...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading aws config: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, ErrNoRegion
	}
	return cfg, nil
}
