// Package s3client builds S3 clients for drguard's s3 targets and describes
// S3 errors briefly. Probes and the backup pipeline share it, so every
// client gets the same settings that these stores need.
package s3client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/fruitfulplanet/drguard/internal/config"
)

// New builds a client for t with the SDK's default credential chain, the
// target's region (us-east-1 when none is known) and endpoint (path-style,
// for S3-compatible stores), checksums only when required (trailing
// checksums are stored as object bytes by some stores), and an HTTP client
// of its own set on the S3 options, so that AWS_CA_BUNDLE handling does not
// replace it. A nil hc gets a transport with connection timeouts.
func New(ctx context.Context, t config.S3Target, hc *http.Client) (*s3.Client, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if t.Region != "" {
		opts = append(opts, awsconfig.WithRegion(t.Region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aws config for s3 target %s: %w", t.Name, err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 2 * time.Minute,
			ForceAttemptHTTP2:     true,
		}}
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if t.Endpoint != "" {
			o.BaseEndpoint = aws.String(t.Endpoint)
			o.UsePathStyle = true
		}
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.HTTPClient = hc
	}), nil
}

// ErrorCode returns the API error code of err, or "".
func ErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// ErrorMessage describes err briefly: the API code and message when the
// store answered, "timed out" or "cancelled", the error otherwise.
func ErrorMessage(err error) string {
	var ae smithy.APIError
	switch {
	case errors.As(err, &ae):
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	return err.Error()
}
