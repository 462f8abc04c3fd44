package action

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/smithy-go"
	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/internal/params"
)

// DefaultRDSPollInterval is how often aws.rds.wait_available polls.
const DefaultRDSPollInterval = 30 * time.Second

// maxWaitWithoutDeadline bounds a wait whose context has no deadline (the
// engine always gives a step one: its timeout).
const maxWaitWithoutDeadline = 24 * time.Hour

// RDSWaitAvailable waits until an RDS instance is available: the plan's
// `aws rds wait db-instance-available`, with the SDK's own waiter
// (rds.NewDBInstanceAvailableWaiter), which also fails at once on a state
// that never becomes available (failed, incompatible-restore, deleting…).
// The step's timeout bounds the wait.
//
// Params: instance (required), poll_interval (default 30s), target.
//
// Result: instance, status, endpoint, port, polls, waited_seconds.
type RDSWaitAvailable struct{ rdsBase }

// waitAvailableInfo declares the wait read-only: not destructive,
// idempotent.
var waitAvailableInfo = Info{Idempotent: true}

// waitAvailableParams is the params of aws.rds.wait_available.
type waitAvailableParams struct {
	awsCommon
	Instance     string         `param:"instance"`
	PollInterval model.Duration `param:"poll_interval"`
}

func (p *waitAvailableParams) defaults() { p.PollInterval = model.Duration(DefaultRDSPollInterval) }

func (p *waitAvailableParams) check(t params.Templates) error {
	if strings.TrimSpace(p.Instance) == "" {
		return params.Required("instance", "")
	}
	if p.PollInterval <= 0 && t.Literal("poll_interval") {
		return params.Errorf("poll_interval", "must be positive")
	}
	return nil
}

func newRDSWaitAvailable(d Deps) (RunFunc[waitAvailableParams], error) {
	return (&RDSWaitAvailable{rdsBase{newAWSBase(d)}}).run, nil
}

// run waits with the SDK's waiter, polling every poll_interval.
func (a *RDSWaitAvailable) run(ctx context.Context, req Request, spec *waitAvailableParams) (Outcome, error) {
	id, every := spec.Instance, time.Duration(spec.PollInterval)
	c, _, err := a.client(ctx, req, spec.awsCommon)
	if err != nil {
		return Outcome{}, err
	}
	start, polls, status := time.Now(), 0, "unknown"
	waiter := rds.NewDBInstanceAvailableWaiter(c, func(o *rds.DBInstanceAvailableWaiterOptions) {
		o.MinDelay, o.MaxDelay = every, every
		retryable := o.Retryable
		o.Retryable = func(ctx context.Context, in *rds.DescribeDBInstancesInput, out *rds.DescribeDBInstancesOutput, err error) (bool, error) {
			polls++
			if out != nil && len(out.DBInstances) > 0 {
				status = aws.ToString(out.DBInstances[0].DBInstanceStatus)
			}
			return retryable(ctx, in, out, err)
		}
	})
	out, err := waiter.WaitForOutput(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(id)}, waitBudget(ctx))
	waited := time.Since(start)
	switch {
	case err == nil && len(out.DBInstances) > 0:
	case err == nil:
		return Outcome{}, fmt.Errorf("aws rds DescribeDBInstances %s: no such DB instance", id)
	case rdsFailedStates[status]:
		return Outcome{}, fmt.Errorf("aws rds: %s is %s; it will not become available by waiting", id, status)
	case ctx.Err() == nil && isAPIError(err):
		return Outcome{}, awsError(ctx, "rds DescribeDBInstances", id, err)
	default: // the step's deadline passed, or the waiter gave up at it
		return Outcome{}, fmt.Errorf("aws rds: %s not available after %s (last status %s)", id, waited.Round(time.Second), status)
	}
	inst := out.DBInstances[0]
	res := map[string]any{"instance": id, "status": aws.ToString(inst.DBInstanceStatus), "polls": polls, "waited_seconds": waited.Seconds()}
	if ep := inst.Endpoint; ep != nil {
		res["endpoint"], res["port"] = aws.ToString(ep.Address), aws.ToInt32(ep.Port)
	}
	return Outcome{Output: fmt.Sprintf("RDS instance %s is available after %d polls (%s); endpoint %v", id, polls, waited.Round(time.Second), res["endpoint"]), Result: res}, nil
}

// rdsFailedStates are DB instance states that never become available by
// waiting (the waiter's own failure states, and a few more).
var rdsFailedStates = map[string]bool{
	"failed": true, "incompatible-restore": true, "incompatible-parameters": true,
	"incompatible-network": true, "incompatible-option-group": true, "storage-full": true,
	"inaccessible-encryption-credentials": true, "deleting": true, "deleted": true,
}

// waitBudget is how long a waiter may wait: until ctx's deadline.
func waitBudget(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return maxWaitWithoutDeadline
}

// isAPIError reports whether AWS answered with an error (rather than the
// waiter giving up at its maximum wait, which has no type of its own).
func isAPIError(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae)
}

// preflightRDSWait checks that the instance exists, or that an earlier
// step creates it.
func preflightRDSWait(d Deps) PreflightFunc[waitAvailableParams] {
	b := &rdsBase{newAWSBase(d)}
	return func(ctx context.Context, req Request, p *waitAvailableParams) Preflight {
		var pf Preflight
		b.rdsPreflight(ctx, req, p.awsCommon, p.Instance, &pf)
		return pf
	}
}
