package backup

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"

	"github.com/fruitfulplanet/drguard/internal/awsclient"
	"github.com/fruitfulplanet/drguard/internal/config"
)

// RDSClientFunc returns the RDS client for an aws target.
type RDSClientFunc func(ctx context.Context, t config.AWSTarget) (*rds.Client, error)

// NewRDSClient builds an RDS client for t (see awsclient.Config) with the
// target's endpoint override.
func NewRDSClient(ctx context.Context, t config.AWSTarget) (*rds.Client, error) {
	cfg, err := awsclient.Config(ctx, t)
	if err != nil {
		return nil, err
	}
	hc := awsclient.HTTPClient(30 * time.Second)
	return rds.NewFromConfig(cfg, func(o *rds.Options) {
		if t.Endpoint != "" {
			o.BaseEndpoint = aws.String(t.Endpoint)
		}
		o.HTTPClient = hc
	}), nil
}

// pitrTimeout bounds one DescribeDBInstances call.
const pitrTimeout = 30 * time.Second

// refreshPITR reads LatestRestorableTime of every pitr recovery source and
// records it as the source's recovery point. A failed call leaves the old
// point, so the exposure keeps growing while RDS cannot be asked.
func (s *Service) refreshPITR(ctx context.Context) {
	for svc, o := range s.cfg.Objectives {
		for _, src := range o.RecoverySources {
			if src.Type != config.RecoverySourcePITR {
				continue
			}
			t, err := s.latestRestorable(ctx, src)
			if err != nil {
				s.log.Warn("cannot read the PITR recovery point", "service", svc, "rds_instance", src.RDSInstance, "err", err)
				continue
			}
			s.SetRecoveryPoint(svc, SourcePITR, src.RDSInstance, t)
		}
	}
}

// latestRestorable asks RDS for an instance's LatestRestorableTime.
func (s *Service) latestRestorable(ctx context.Context, src config.RecoverySource) (time.Time, error) {
	var target *config.AWSTarget
	for i := range s.cfg.Targets.AWS {
		if s.cfg.Targets.AWS[i].Name == src.Target {
			target = &s.cfg.Targets.AWS[i]
		}
	}
	if target == nil {
		return time.Time{}, fmt.Errorf("undefined aws target %q", src.Target)
	}
	ctx, cancel := context.WithTimeout(ctx, pitrTimeout)
	defer cancel()
	s.mu.Lock()
	client := s.rdsClients[target.Name]
	s.mu.Unlock()
	if client == nil {
		c, err := s.rdsFunc(ctx, *target)
		if err != nil {
			return time.Time{}, err
		}
		s.mu.Lock()
		s.rdsClients[target.Name] = c
		s.mu.Unlock()
		client = c
	}
	out, err := client.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(src.RDSInstance)})
	if err != nil {
		return time.Time{}, fmt.Errorf("describe DB instance %s: %s", src.RDSInstance, awsclient.ErrorMessage(err))
	}
	for _, db := range out.DBInstances {
		if aws.ToString(db.DBInstanceIdentifier) == src.RDSInstance {
			if db.LatestRestorableTime == nil {
				return time.Time{}, fmt.Errorf("DB instance %s reports no LatestRestorableTime (automated backups off?)", src.RDSInstance)
			}
			return db.LatestRestorableTime.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("DB instance %s not found", src.RDSInstance)
}
