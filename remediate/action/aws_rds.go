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

	"github.com/fruitfulplanet/drguard/internal/config"
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

func (b *rdsBase) client(ctx context.Context, req Request) (*rds.Client, config.AWSTarget, error) {
	t, err := b.awsTarget(req)
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

var _ Action = (*RDSPromoteReadReplica)(nil)

// NewRDSPromoteReadReplica builds the aws.rds.promote_read_replica action.
func NewRDSPromoteReadReplica(d Deps) (Action, error) {
	return &RDSPromoteReadReplica{rdsBase{newAWSBase(d)}}, nil
}

// Info declares promotion destructive (replication ends for good) and
// idempotent (an instance that is no longer a replica is left alone).
func (*RDSPromoteReadReplica) Info() Info { return Info{Destructive: true, Idempotent: true} }

// Validate checks the unrendered params.
func (*RDSPromoteReadReplica) Validate(params map[string]any) error {
	if err := checkKnown(params, "target", "instance", "backup_retention_days"); err != nil {
		return err
	}
	_, _, err := promoteReplicaParams(params, true)
	return err
}

func promoteReplicaParams(params map[string]any, unrendered bool) (string, int, error) {
	id, err := requireString(params, "instance")
	if err != nil {
		return "", 0, err
	}
	days, err := intParam(params, "backup_retention_days", -1, unrendered)
	if err == nil && (days < -1 || days > 35) {
		err = fmt.Errorf(`param "backup_retention_days" must be 0–35, got %d`, days)
	}
	return id, days, err
}

// Run checks the instance and promotes it unless it is no longer a
// replica.
func (a *RDSPromoteReadReplica) Run(ctx context.Context, req Request) (Outcome, error) {
	id, days, err := promoteReplicaParams(req.Params, false)
	if err != nil {
		return Outcome{}, err
	}
	c, _, err := a.client(ctx, req)
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
	if days >= 0 {
		in.BackupRetentionPeriod = aws.Int32(int32(days))
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

var _ Action = (*RDSRestoreToPointInTime)(nil)

// NewRDSRestoreToPointInTime builds the aws.rds.restore_to_point_in_time
// action.
func NewRDSRestoreToPointInTime(d Deps) (Action, error) {
	return &RDSRestoreToPointInTime{rdsBase{newAWSBase(d)}}, nil
}

// Info declares the restore not destructive (it creates a new instance
// and leaves the source alone) and not idempotent (a second call fails
// because the target exists, or restores to a different time).
func (*RDSRestoreToPointInTime) Info() Info { return Info{} }

type pitrSpec struct {
	source, target, when string
	at, knownGood        time.Time
	margin               time.Duration
	class, subnetGroup   string
	securityGroups       []string
	multiAZ              bool
}

// Validate checks the unrendered params.
func (*RDSRestoreToPointInTime) Validate(params map[string]any) error {
	if err := checkKnown(params, "target", "source_instance", "target_instance", "restore_time", "known_good_at",
		"margin", "instance_class", "subnet_group", "security_group_ids", "multi_az"); err != nil {
		return err
	}
	_, err := pitrParams(params, true)
	return err
}

func pitrParams(params map[string]any, unrendered bool) (pitrSpec, error) {
	var s pitrSpec
	var err error
	if s.source, err = requireString(params, "source_instance"); err != nil {
		return s, err
	}
	if s.target, err = requireString(params, "target_instance"); err != nil {
		return s, err
	}
	if s.when, err = requireString(params, "restore_time"); err != nil {
		return s, fmt.Errorf(`%w: an RFC 3339 time, "latest" or "last_known_good"`, err)
	}
	s.when = strings.TrimSpace(s.when)
	if s.when != RestoreLatest && s.when != RestoreLastKnownGood && !(unrendered && isTemplate(s.when)) {
		if s.at, err = parseTime(s.when); err != nil {
			return s, fmt.Errorf(`param "restore_time": %w, "latest" or "last_known_good"`, err)
		}
	}
	if s.knownGood, err = timeParam(params, "known_good_at", unrendered); err != nil {
		return s, err
	}
	if s.margin, err = durationParam(params, "margin", DefaultRestoreMargin, unrendered); err != nil {
		return s, err
	}
	if s.class, err = stringParam(params, "instance_class", ""); err != nil {
		return s, err
	}
	if s.subnetGroup, err = stringParam(params, "subnet_group", ""); err != nil {
		return s, err
	}
	if s.securityGroups, err = stringListParam(params, "security_group_ids"); err != nil {
		return s, err
	}
	s.multiAZ, err = boolParam(params, "multi_az", false, unrendered)
	return s, err
}

// resolveRestoreTime turns restore_time into a time (zero for latest) and
// says where it came from.
func resolveRestoreTime(s pitrSpec, req Request, now time.Time) (time.Time, string, time.Time, error) {
	switch s.when {
	case RestoreLatest:
		return time.Time{}, "latest restorable time", time.Time{}, nil
	case RestoreLastKnownGood:
		kg, from := s.knownGood, "param known_good_at"
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
		at := kg.Add(-s.margin)
		if at.After(now) {
			return time.Time{}, "", kg, fmt.Errorf("restore_time last_known_good: %s minus %s is in the future", kg.Format(time.RFC3339), s.margin)
		}
		return at, fmt.Sprintf("last known good %s (%s) minus margin %s", kg.Format(time.RFC3339), from, s.margin), kg, nil
	}
	if s.at.After(now) {
		return time.Time{}, "", time.Time{}, fmt.Errorf("restore_time %s is in the future", s.at.Format(time.RFC3339))
	}
	return s.at, "explicit", time.Time{}, nil
}

// Run resolves the restore time, checks it against the source's latest
// restorable time, and starts the restore.
func (a *RDSRestoreToPointInTime) Run(ctx context.Context, req Request) (Outcome, error) {
	s, err := pitrParams(req.Params, false)
	if err != nil {
		return Outcome{}, err
	}
	at, how, kg, err := resolveRestoreTime(s, req, time.Now())
	if err != nil {
		return Outcome{}, err
	}
	c, _, err := a.client(ctx, req)
	if err != nil {
		return Outcome{}, err
	}
	src, err := describeInstance(ctx, c, s.source)
	if err != nil {
		return Outcome{}, err
	}
	if lrt := src.LatestRestorableTime; !at.IsZero() && lrt != nil && at.After(*lrt) {
		return Outcome{}, fmt.Errorf("aws rds: restore time %s is after %s's latest restorable time %s", at.Format(time.RFC3339), s.source, lrt.UTC().Format(time.RFC3339))
	}
	in := &rds.RestoreDBInstanceToPointInTimeInput{
		SourceDBInstanceIdentifier: aws.String(s.source),
		TargetDBInstanceIdentifier: aws.String(s.target),
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
	if s.class != "" {
		in.DBInstanceClass = aws.String(s.class)
	}
	if s.subnetGroup != "" {
		in.DBSubnetGroupName = aws.String(s.subnetGroup)
	}
	if len(s.securityGroups) > 0 {
		in.VpcSecurityGroupIds = s.securityGroups
	}
	if s.multiAZ {
		in.MultiAZ = aws.Bool(true)
	}
	out, err := c.RestoreDBInstanceToPointInTime(ctx, in)
	if err != nil {
		return Outcome{}, awsError(ctx, "rds RestoreDBInstanceToPointInTime", s.source+" → "+s.target, err)
	}
	res := map[string]any{"source_instance": s.source, "target_instance": s.target, "restore_time_source": how,
		"margin_seconds": s.margin.Seconds(), "restore_time": RestoreLatest}
	if !at.IsZero() {
		res["restore_time"] = at.UTC().Format(time.RFC3339)
	}
	if !kg.IsZero() {
		res["known_good_at"] = kg.UTC().Format(time.RFC3339)
	}
	if out.DBInstance != nil {
		res["status"] = aws.ToString(out.DBInstance.DBInstanceStatus)
	}
	a.log.Warn("rds point-in-time restore started", "run", req.RunID, "step", req.Step, "source", s.source, "target", s.target, "restore_time", res["restore_time"])
	return Outcome{
		Output: fmt.Sprintf("restoring RDS instance %s as %s to %s (%s); status %v", s.source, s.target, res["restore_time"], how, res["status"]),
		Result: res,
	}, nil
}
