package cloud_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/aerostat-io/aerostat/internal/cloud"
)

// TestLoadAWSConfig: the options reach the config EC2 and SQS are built
// from, and a missing region is ErrNoRegion. The default chain reads
// nothing of the machine's (env and shared files point into a temp dir).
func TestLoadAWSConfig(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_PROFILE", "")
	tests := map[string]struct {
		opts         cloud.AWSOptions
		wantErr      error
		wantAttempts int
	}{
		"region and attempts": {opts: cloud.AWSOptions{Region: "eu-west-1", MaxAttempts: 5}, wantAttempts: 5},
		"default attempts":    {opts: cloud.AWSOptions{Region: "eu-west-1", MaxBackoff: time.Second}, wantAttempts: cloud.DefaultMaxAttempts},
		"no region":           {opts: cloud.AWSOptions{}, wantErr: cloud.ErrNoRegion},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.opts.Credentials = credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")
			cfg, err := cloud.LoadAWSConfig(context.Background(), tc.opts)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if cfg.Region != tc.opts.Region {
				t.Errorf("region = %q, want %q", cfg.Region, tc.opts.Region)
			}
			if got := cfg.Retryer().MaxAttempts(); got != tc.wantAttempts {
				t.Errorf("max attempts = %d, want %d", got, tc.wantAttempts)
			}
			creds, err := cfg.Credentials.Retrieve(context.Background())
			if err != nil || creds.AccessKeyID != "AKIDTEST" {
				t.Errorf("credentials = %+v, %v; want the static ones", creds, err)
			}
		})
	}
}
