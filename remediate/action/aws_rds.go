package action

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/aws/smithy-go"
	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/params"
)

// Values and defaults of the aws.rds.* actions.
const (
	// RestoreLastKnownGood is the restore_time that means "the last
	// passing integrity check, minus margin".
	RestoreLastKnownGood = "last_known_good"
	// RestoreLatest is the restore_time that means the source's latest
	// restorable time.
	RestoreLatest = "latest"
	// LastKnownGoodAnnotation is the detection annotation (RFC 3339) that
	// says when the service's integrity check last passed.
	LastKnownGoodAnnotation = "last_known_good"
	// DefaultRestoreMargin is subtracted from the last known good time.
	DefaultRestoreMargin = 5 * time.Minute
)

// rdsBase is an awsBase that makes RDS clients.
type rdsBase struct{ awsBase }

func (b *rdsBase) client(ctx context.Context, req Request, common awsCommon) (*rds.Client, config.AWSTarget, error) {
	t, err := b.awsTarget(req, common.Target)
	if err != nil {
		return nil, t, err
	}
	c, err := b.sdkConfig(ctx, t)
	if err != nil {
		return nil, t, err
	}
	return rds.NewFromConfig(c, func(o *rds.Options) {
		if t.Endpoint != "" {
			o.BaseEndpoint = aws.String(t.Endpoint)
		}
	}), t, nil
}

// describe returns one DB instance.
func describeInstance(ctx context.Context, c *rds.Client, id string) (types.DBInstance, error) {
	out, err := c.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(id)})
	if err != nil {
		return types.DBInstance{}, awsError(ctx, "rds DescribeDBInstances", id, err)
	}
	if len(out.DBInstances) == 0 {
		return types.DBInstance{}, fmt.Errorf("aws rds DescribeDBInstances %s: no such DB instance", id)
	}
	return out.DBInstances[0], nil
}

// RDSPromoteReadReplica promotes an RDS read replica to a standalone
// instance: the plan's `aws rds promote-read-replica`.
//
// Params: instance (required), backup_retention_days (0–35), target.
//
// Result: instance, status, source_instance, already_promoted.
type RDSPromoteReadReplica struct{ rdsBase }

// promoteReplicaInfo declares promotion destructive (replication ends for
// good) and idempotent (an instance that is no longer a replica is left
// alone).
var promoteReplicaInfo = Info{Destructive: true, Idempotent: true}

// promoteReplicaParams is the params of aws.rds.promote_read_replica.
type promoteReplicaParams struct {
	awsCommon
	Instance string `param:"instance"`
	// BackupRetentionDays sets the promoted instance's backup retention
	// (0–35; default: unchanged).
	BackupRetentionDays *int `param:"backup_retention_days"`
}

func (p *promoteReplicaParams) check(t params.Templates) error {
	if strings.TrimSpace(p.Instance) == "" {
		return params.Required("instance", "")
	}
	if d := p.BackupRetentionDays; d != nil && (*d < 0 || *d > 35) {
		return params.Errorf("backup_retention_days", "must be 0–35, got %d", *d)
	}
	return nil
}

func newRDSPromoteReadReplica(d Deps) (RunFunc[promoteReplicaParams], error) {
	return (&RDSPromoteReadReplica{rdsBase{newAWSBase(d)}}).run, nil
}

// run checks the instance and promotes it unless it is no longer a
// replica.
func (a *RDSPromoteReadReplica) run(ctx context.Context, req Request, spec *promoteReplicaParams) (Outcome, error) {
	id := spec.Instance
	c, _, err := a.client(ctx, req, spec.awsCommon)
	if err != nil {
		return Outcome{}, err
	}
	inst, err := describeInstance(ctx, c, id)
	if err != nil {
		return Outcome{}, err
	}
	source := aws.ToString(inst.ReadReplicaSourceDBInstanceIdentifier)
	res := map[string]any{"instance": id, "status": aws.ToString(inst.DBInstanceStatus), "source_instance": source, "already_promoted": false}
	if source == "" {
		res["already_promoted"] = true
		return Outcome{Output: fmt.Sprintf("RDS instance %s is not a read replica (status %s); nothing to promote", id, res["status"]), Result: res}, nil
	}
	in := &rds.PromoteReadReplicaInput{DBInstanceIdentifier: aws.String(id)}
	if d := spec.BackupRetentionDays; d != nil {
		in.BackupRetentionPeriod = aws.Int32(int32(*d))
	}
	out, err := c.PromoteReadReplica(ctx, in)
	if err != nil {
		return Outcome{Result: res}, awsError(ctx, "rds PromoteReadReplica", id, err)
	}
	if out.DBInstance != nil {
		res["status"] = aws.ToString(out.DBInstance.DBInstanceStatus)
	}
	a.log.Warn("rds read replica promoted", "run", req.RunID, "step", req.Step, "instance", id, "source", source)
	return Outcome{Output: fmt.Sprintf("RDS read replica %s (of %s) is being promoted; status %s", id, source, res["status"]), Result: res}, nil
}

// RDSRestoreToPointInTime restores an RDS instance to a new instance as of
// a point in time: the plan's `aws rds restore-db-instance-to-point-in-time`.
//
// restore_time is an RFC 3339 time, "latest", or "last_known_good": the
// time the service's integrity check last passed minus margin. That time
// comes from param known_good_at (typically templated from the detection,
// "{{ .Annotations.last_known_good }}", so the approver sees it), else from
// the detection's last_known_good annotation; without either the step
// fails rather than guess.
//
// Params: source_instance, target_instance (required), restore_time
// (required), known_good_at, margin (default 5m), instance_class,
// subnet_group, security_group_ids, multi_az, target.
//
// Result: source_instance, target_instance, restore_time,
// restore_time_source, known_good_at, margin_seconds, status.
type RDSRestoreToPointInTime struct{ rdsBase }

// pitrInfo declares the restore not destructive (it creates a new
// instance and leaves the source alone) and not idempotent (a second call
// fails because the target exists, or restores to a different time).
var pitrInfo = Info{}

// pitrParams is the params of aws.rds.restore_to_point_in_time.
type pitrParams struct {
	awsCommon
	Source string `param:"source_instance"`
	Target string `param:"target_instance"`
	// When is restore_time: an RFC 3339 time, "latest" or
	// "last_known_good"; at holds the parsed time.
	When      string         `param:"restore_time"`
	KnownGood Time           `param:"known_good_at"`
	Margin    model.Duration `param:"margin"`
	Class     string         `param:"instance_class"`
	Subnet    string         `param:"subnet_group"`
	Groups    []string       `param:"security_group_ids"`
	MultiAZ   bool           `param:"multi_az"`

	at time.Time
}

func (p *pitrParams) defaults() { p.Margin = model.Duration(DefaultRestoreMargin) }

func (p *pitrParams) check(t params.Templates) error {
	switch {
	case strings.TrimSpace(p.Source) == "":
		return params.Required("source_instance", "")
	case strings.TrimSpace(p.Target) == "":
		return params.Required("target_instance", "")
	case strings.TrimSpace(p.When) == "":
		return params.Required("restore_time", `an RFC 3339 time, "latest" or "last_known_good"`)
	}
	p.When = strings.TrimSpace(p.When)
	if p.When != RestoreLatest && p.When != RestoreLastKnownGood && t.Literal("restore_time") {
		at, err := parseTime(p.When)
		if err != nil {
			return params.Errorf("restore_time", `%v, "latest" or "last_known_good"`, err)
		}
		p.at = at
	}
	return nil
}

func newRDSRestoreToPointInTime(d Deps) (RunFunc[pitrParams], error) {
	return (&RDSRestoreToPointInTime{rdsBase{newAWSBase(d)}}).run, nil
}

// resolveRestoreTime turns restore_time into a time (zero for latest) and
// says where it came from.
func resolveRestoreTime(s *pitrParams, req Request, now time.Time) (time.Time, string, time.Time, error) {
	margin := time.Duration(s.Margin)
	switch s.When {
	case RestoreLatest:
		return time.Time{}, "latest restorable time", time.Time{}, nil
	case RestoreLastKnownGood:
		kg, from := s.KnownGood.Time, "param known_good_at"
		if kg.IsZero() {
			raw := req.Annotations[LastKnownGoodAnnotation]
			if raw == "" {
				return time.Time{}, "", time.Time{}, errors.New(`restore_time last_known_good: the detection carries no last_known_good annotation and the step sets no known_good_at; drguard does not guess a restore point (set restore_time to an RFC 3339 time)`)
			}
			t, err := parseTime(raw)
			if err != nil {
				return time.Time{}, "", time.Time{}, fmt.Errorf("restore_time last_known_good: annotation last_known_good: %w", err)
			}
			kg, from = t, "annotation last_known_good"
		}
		at := kg.Add(-margin)
		if at.After(now) {
			return time.Time{}, "", kg, fmt.Errorf("restore_time last_known_good: %s minus %s is in the future", kg.Format(time.RFC3339), model.Duration(margin))
		}
		return at, fmt.Sprintf("last known good %s (%s) minus margin %s", kg.Format(time.RFC3339), from, model.Duration(margin)), kg, nil
	}
	if s.at.After(now) {
		return time.Time{}, "", time.Time{}, fmt.Errorf("restore_time %s is in the future", s.at.Format(time.RFC3339))
	}
	return s.at, "explicit", time.Time{}, nil
}

// run resolves the restore time, checks it against the source's latest
// restorable time, and starts the restore.
func (a *RDSRestoreToPointInTime) run(ctx context.Context, req Request, s *pitrParams) (Outcome, error) {
	at, how, kg, err := resolveRestoreTime(s, req, time.Now())
	if err != nil {
		return Outcome{}, err
	}
	c, _, err := a.client(ctx, req, s.awsCommon)
	if err != nil {
		return Outcome{}, err
	}
	src, err := describeInstance(ctx, c, s.Source)
	if err != nil {
		return Outcome{}, err
	}
	if lrt := src.LatestRestorableTime; !at.IsZero() && lrt != nil && at.After(*lrt) {
		return Outcome{}, fmt.Errorf("aws rds: restore time %s is after %s's latest restorable time %s", at.Format(time.RFC3339), s.Source, lrt.UTC().Format(time.RFC3339))
	}
	in := &rds.RestoreDBInstanceToPointInTimeInput{
		SourceDBInstanceIdentifier: aws.String(s.Source),
		TargetDBInstanceIdentifier: aws.String(s.Target),
		Tags: []types.Tag{
			{Key: aws.String("drguard:run"), Value: aws.String(req.RunID)},
			{Key: aws.String("drguard:policy"), Value: aws.String(req.Policy)},
		},
	}
	if at.IsZero() {
		in.UseLatestRestorableTime = aws.Bool(true)
	} else {
		in.RestoreTime = aws.Time(at)
	}
	if s.Class != "" {
		in.DBInstanceClass = aws.String(s.Class)
	}
	if s.Subnet != "" {
		in.DBSubnetGroupName = aws.String(s.Subnet)
	}
	if len(s.Groups) > 0 {
		in.VpcSecurityGroupIds = s.Groups
	}
	if s.MultiAZ {
		in.MultiAZ = aws.Bool(true)
	}
	out, err := c.RestoreDBInstanceToPointInTime(ctx, in)
	if err != nil {
		return Outcome{}, awsError(ctx, "rds RestoreDBInstanceToPointInTime", s.Source+" → "+s.Target, err)
	}
	res := map[string]any{"source_instance": s.Source, "target_instance": s.Target, "restore_time_source": how,
		"margin_seconds": time.Duration(s.Margin).Seconds(), "restore_time": RestoreLatest}
	if !at.IsZero() {
		res["restore_time"] = at.UTC().Format(time.RFC3339)
	}
	if !kg.IsZero() {
		res["known_good_at"] = kg.UTC().Format(time.RFC3339)
	}
	if out.DBInstance != nil {
		res["status"] = aws.ToString(out.DBInstance.DBInstanceStatus)
	}
	a.log.Warn("rds point-in-time restore started", "run", req.RunID, "step", req.Step, "source", s.Source, "target", s.Target, "restore_time", res["restore_time"])
	return Outcome{
		Output: fmt.Sprintf("restoring RDS instance %s as %s to %s (%s); status %v", s.Source, s.Target, res["restore_time"], how, res["status"]),
		Result: res,
	}, nil
}

// rdsPreflight checks an aws.rds.* step's credentials and describes
// instance id; it returns the instance when it exists.
func (b *rdsBase) rdsPreflight(ctx context.Context, req Request, common awsCommon, id string, pf *Preflight) (*types.DBInstance, *rds.Client, bool) {
	t, _, ok := b.preflightCredentials(ctx, req, common, pf)
	if !ok {
		return nil, nil, false
	}
	c, _, err := b.client(ctx, req, common)
	if err != nil {
		pf.fail("credentials", t.Name, "%v", err)
		return nil, nil, false
	}
	out, err := c.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(id)})
	if err == nil && len(out.DBInstances) == 0 {
		err = &smithy.GenericAPIError{Code: "DBInstanceNotFound", Message: "no such DB instance"}
	}
	if !preflightCall(ctx, pf, "rds DescribeDBInstances", t.Name+": rds instance "+id, "aws rds instance "+id, err) {
		return nil, c, true
	}
	return &out.DBInstances[0], c, true
}

// preflightRDSPromote checks that the instance exists and is a read
// replica.
func preflightRDSPromote(d Deps) PreflightFunc[promoteReplicaParams] {
	b := &rdsBase{newAWSBase(d)}
	return func(ctx context.Context, req Request, p *promoteReplicaParams) Preflight {
		var pf Preflight
		inst, _, _ := b.rdsPreflight(ctx, req, p.awsCommon, p.Instance, &pf)
		if inst != nil {
			if src := aws.ToString(inst.ReadReplicaSourceDBInstanceIdentifier); src != "" {
				pf.pass("replica", p.Instance, "a read replica of %s (status %s)", src, aws.ToString(inst.DBInstanceStatus))
			} else {
				pf.warn("replica", p.Instance, "not a read replica: the step would find nothing to promote")
			}
		}
		return pf
	}
}

// preflightRDSRestore checks that the source instance exists (and how far
// back it can be restored) and that the target instance does not yet.
func preflightRDSRestore(d Deps) PreflightFunc[pitrParams] {
	b := &rdsBase{newAWSBase(d)}
	return func(ctx context.Context, req Request, p *pitrParams) Preflight {
		pf := Preflight{Creates: []string{"aws rds instance " + p.Target}}
		src, c, ok := b.rdsPreflight(ctx, req, p.awsCommon, p.Source, &pf)
		if src != nil && src.LatestRestorableTime != nil {
			pf.pass("restorable", p.Source, "restorable up to %s", src.LatestRestorableTime.UTC().Format(time.RFC3339))
		}
		if !ok || c == nil {
			return pf
		}
		_, err := c.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(p.Target)})
		var ae smithy.APIError
		switch {
		case errors.As(err, &ae) && awsNotFound[ae.ErrorCode()]:
			pf.pass("target_free", p.Target, "does not exist yet: the restore creates it")
		case err == nil:
			pf.fail("target_free", p.Target, "already exists: the restore would fail; delete or rename it first")
		default:
			pf.fail("target_free", p.Target, "%v", awsError(ctx, "rds DescribeDBInstances", p.Target, err))
		}
		return pf
	}
}
