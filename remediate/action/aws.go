package action

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/fruitfulplanet/drguard/internal/awsclient"
	"github.com/fruitfulplanet/drguard/internal/config"
)

// awsBase is what every aws.* action shares: the configuration and an SDK
// configuration per aws target (region, credentials from the default
// chain, a standard retryer), loaded on first use and cached.
type awsBase struct {
	cfg *config.Config
	log *slog.Logger

	mu   sync.Mutex
	sdks map[string]aws.Config
}

func newAWSBase(d Deps) awsBase {
	return awsBase{cfg: d.Config, log: d.Logger, sdks: map[string]aws.Config{}}
}

// awsCommon is the param every aws.* action takes: target names an aws
// target (default: the run's target when it is one, else the only one).
type awsCommon struct {
	Target string `param:"target"`
}

// awsTarget picks the aws target of a step: param "target", else the
// run's target when it is an aws target, else the only one.
func (b *awsBase) awsTarget(req Request, param string) (config.AWSTarget, error) {
	ts := b.cfg.Targets.AWS
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Name
	}
	i, err := pickTarget(config.KindAWS, names, param, req.Target)
	if err != nil {
		return config.AWSTarget{}, fmt.Errorf("aws: %w", err)
	}
	return ts[i], nil
}

// sdkConfig returns t's SDK configuration. Throttling errors, 5xx answers
// and transient network errors are retried by the SDK's standard retryer
// with jittered exponential backoff, up to t.MaxAttempts attempts.
func (b *awsBase) sdkConfig(ctx context.Context, t config.AWSTarget) (aws.Config, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.sdks[t.Name]; ok {
		return c, nil
	}
	c, err := awsclient.Config(ctx, t)
	if err != nil {
		return aws.Config{}, err
	}
	b.sdks[t.Name] = c
	return c, nil
}

// awsError words an SDK error for the journal: the call, what it was
// about, the AWS error code and message, the HTTP status and how many
// attempts were made.
func awsError(ctx context.Context, call, about string, err error) error {
	attempts := ""
	var mae *retry.MaxAttemptsError
	if errors.As(err, &mae) {
		attempts = fmt.Sprintf(" after %d attempts", mae.Attempt)
	}
	status := 0
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var ae smithy.APIError
	hasAPI := errors.As(err, &ae)
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("aws %s %s: timed out%s", call, about, attempts)
	case status >= 500:
		detail := ""
		if hasAPI {
			detail = fmt.Sprintf(" %s: %s", ae.ErrorCode(), ae.ErrorMessage())
		}
		return fmt.Errorf("aws %s %s: AWS answered HTTP %d%s%s; a persistent server-side error, retry later or act by hand", call, about, status, attempts, detail)
	case hasAPI:
		if status > 0 {
			return fmt.Errorf("aws %s %s: %s (HTTP %d%s): %s", call, about, ae.ErrorCode(), status, attempts, ae.ErrorMessage())
		}
		return fmt.Errorf("aws %s %s: %s%s: %s", call, about, ae.ErrorCode(), attempts, ae.ErrorMessage())
	}
	return fmt.Errorf("aws %s %s%s: %v", call, about, attempts, err)
}

// preflightCredentials checks an aws.* step's target and that the SDK's
// default chain finds credentials for it. It reports false when the step
// cannot be checked further. Whether AWS accepts the credentials shows in
// the Describe or Get call the action then makes.
func (b *awsBase) preflightCredentials(ctx context.Context, req Request, common awsCommon, pf *Preflight) (config.AWSTarget, aws.Config, bool) {
	t, err := b.awsTarget(req, common.Target)
	if err != nil {
		pf.fail("target", common.Target, "%v", err)
		return t, aws.Config{}, false
	}
	sdk, err := b.sdkConfig(ctx, t)
	if err != nil {
		pf.fail("credentials", t.Name, "%v", err)
		return t, sdk, false
	}
	creds, err := sdk.Credentials.Retrieve(ctx)
	if err != nil {
		pf.fail("credentials", t.Name, "the SDK's default chain found no credentials: %v", err)
		return t, sdk, false
	}
	pf.pass("credentials", t.Name, "credentials found (%s), region %s", creds.Source, t.Region)
	return t, sdk, true
}

// AWS error codes a preflight classifies: an object that does not exist,
// and credentials AWS refuses.
var (
	awsNotFound = map[string]bool{"DBInstanceNotFound": true, "DBInstanceNotFoundFault": true, "NoSuchHostedZone": true}
	awsDenied   = map[string]bool{"AccessDenied": true, "AccessDeniedException": true, "InvalidClientTokenId": true,
		"SignatureDoesNotMatch": true, "UnrecognizedClientException": true, "ExpiredToken": true, "AuthFailure": true}
)

// preflightCall records the outcome of a Describe or Get call about an
// object: it exists, it is missing (key names it for Check.Missing), AWS
// refused the credentials, or the call failed.
func preflightCall(ctx context.Context, pf *Preflight, call, about, key string, err error) bool {
	var ae smithy.APIError
	switch {
	case err == nil:
		pf.pass("exists", about, "%s answered: it exists", call)
		return true
	case errors.As(err, &ae) && awsNotFound[ae.ErrorCode()]:
		pf.fail("exists", about, "%s: not found", call).Missing = key
	case errors.As(err, &ae) && awsDenied[ae.ErrorCode()]:
		pf.fail("credentials", about, "AWS refused the credentials or the call: %v", awsError(ctx, call, about, err))
	default:
		pf.fail("exists", about, "%v", awsError(ctx, call, about, err))
	}
	return false
}
