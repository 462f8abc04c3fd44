// Package awsclient builds AWS SDK configurations and clients for
// drguard's aws and s3 targets, and describes AWS errors briefly. Probes,
// the backup pipeline and the aws.* actions share it, so every client gets
// the same credentials chain, region, endpoint, retry and HTTP settings.
package awsclient

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/fruitfulplanet/drguard/internal/config"
)

// Config loads the SDK configuration of an aws target: the default
// credential chain (or the target's shared-config profile), its region
// (us-east-1 when none is known), and the SDK's standard retryer, which
// retries throttling, 5xx answers and transient network errors with
// jittered exponential backoff up to the target's max_attempts.
func Config(ctx context.Context, t config.AWSTarget) (aws.Config, error) {
	attempts, backoff := t.MaxAttempts, time.Duration(t.MaxBackoff)
	if attempts <= 0 {
		attempts = config.DefaultAWSMaxAttempts
	}
	if backoff <= 0 {
		backoff = time.Duration(config.DefaultAWSMaxBackoff)
	}
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = attempts
				o.MaxBackoff = backoff
			})
		}),
	}
	if t.Profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(t.Profile))
	}
	return load(ctx, "aws target "+t.Name, t.Region, opts...)
}

func load(ctx context.Context, what, region string, opts ...func(*awsconfig.LoadOptions) error) (aws.Config, error) {
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("%s: load AWS SDK configuration: %w", what, err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	return cfg, nil
}

// HTTPClient returns a client with connection timeouts and the given bound
// on waiting for response headers, for setting on an SDK client's options
// (so that AWS_CA_BUNDLE handling does not replace it).
func HTTPClient(responseHeaderTimeout time.Duration) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: responseHeaderTimeout,
		ForceAttemptHTTP2:     true,
	}}
}
