package awsclient

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/fruitfulplanet/drguard/internal/config"
)

// S3 builds a client for t with the SDK's default credential chain, the
// target's region (us-east-1 when none is known) and endpoint (path-style,
// for S3-compatible stores), checksums only when required (trailing
// checksums are stored as object bytes by some stores), and an HTTP client
// of its own set on the S3 options, so that AWS_CA_BUNDLE handling does not
// replace it. A nil hc gets a transport with connection timeouts.
func S3(ctx context.Context, t config.S3Target, hc *http.Client) (*s3.Client, error) {
	cfg, err := load(ctx, "s3 target "+t.Name, t.Region)
	if err != nil {
		return nil, err
	}
	if hc == nil {
		hc = HTTPClient(2 * time.Minute)
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
