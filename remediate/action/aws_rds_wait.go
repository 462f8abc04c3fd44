package action

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// DefaultRDSPollInterval is how often aws.rds.wait_available polls.
const DefaultRDSPollInterval = 30 * time.Second

// rdsFailedStates are DB instance states that never become available by
// waiting.
var rdsFailedStates = map[string]bool{
	"failed": true, "incompatible-restore": true, "incompatible-parameters": true,
	"incompatible-network": true, "incompatible-option-group": true, "storage-full": true,
	"inaccessible-encryption-credentials": true, "deleting": true, "deleted": true,
}

// RDSWaitAvailable polls an RDS instance until it is available: the
// plan's `aws rds wait db-instance-available`. The step's timeout bounds
// the wait; a state that never becomes available fails it at once.
//
// Params: instance (required), poll_interval (default 30s), target.
//
// Result: instance, status, endpoint, port, polls, waited_seconds.
type RDSWaitAvailable struct{ rdsBase }

var _ Action = (*RDSWaitAvailable)(nil)

// NewRDSWaitAvailable builds the aws.rds.wait_available action.
func NewRDSWaitAvailable(d Deps) (Action, error) {
	return &RDSWaitAvailable{rdsBase{newAWSBase(d)}}, nil
}

// Info declares the wait read-only: not destructive, idempotent.
func (*RDSWaitAvailable) Info() Info { return Info{Idempotent: true} }

// Validate checks the unrendered params.
func (*RDSWaitAvailable) Validate(params map[string]any) error {
	if err := checkKnown(params, "target", "instance", "poll_interval"); err != nil {
		return err
	}
	if _, err := requireString(params, "instance"); err != nil {
		return err
	}
	d, err := durationParam(params, "poll_interval", DefaultRDSPollInterval, true)
	if err == nil && d <= 0 {
		err = errors.New(`param "poll_interval" must be positive`)
	}
	return err
}

// Run polls DescribeDBInstances until the instance is available.
func (a *RDSWaitAvailable) Run(ctx context.Context, req Request) (Outcome, error) {
	id, err := requireString(req.Params, "instance")
	if err != nil {
		return Outcome{}, err
	}
	every, err := durationParam(req.Params, "poll_interval", DefaultRDSPollInterval, false)
	if err != nil {
		return Outcome{}, err
	}
	c, _, err := a.client(ctx, req)
	if err != nil {
		return Outcome{}, err
	}
	start := time.Now()
	status := "unknown"
	for polls := 1; ; polls++ {
		inst, err := describeInstance(ctx, c, id)
		if err != nil {
			if ctx.Err() != nil {
				return Outcome{}, fmt.Errorf("aws rds: %s not available after %s (last status %s)", id, time.Since(start).Round(time.Second), status)
			}
			return Outcome{}, err
		}
		status = aws.ToString(inst.DBInstanceStatus)
		if status == "available" {
			res := map[string]any{"instance": id, "status": status, "polls": polls, "waited_seconds": time.Since(start).Seconds()}
			if ep := inst.Endpoint; ep != nil {
				res["endpoint"], res["port"] = aws.ToString(ep.Address), aws.ToInt32(ep.Port)
			}
			return Outcome{Output: fmt.Sprintf("RDS instance %s is available after %d polls (%s); endpoint %v", id, polls, time.Since(start).Round(time.Second), res["endpoint"]), Result: res}, nil
		}
		if rdsFailedStates[status] {
			return Outcome{}, fmt.Errorf("aws rds: %s is %s; it will not become available by waiting", id, status)
		}
		if err := sleepCtx(ctx, every); err != nil {
			return Outcome{}, fmt.Errorf("aws rds: %s not available after %s (last status %s)", id, time.Since(start).Round(time.Second), status)
		}
	}
}
