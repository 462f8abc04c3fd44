// Package pitr reads the point-in-time-recovery window of the RDS
// instances that the objectives name as recovery sources: each instance's
// LatestRestorableTime is the newest point a PITR restore reaches, which
// it reports to the recovery objectives (metrics.Objectives) as the
// service's pitr recovery point.
package pitr

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"

	"github.com/fruitfulplanet/drguard/internal/awsclient"
	"github.com/fruitfulplanet/drguard/internal/config"
)

// callTimeout bounds one DescribeDBInstances call.
const callTimeout = 30 * time.Second

// DefaultInterval is how often Run reads the recovery points.
const DefaultInterval = time.Minute

// RDSClientFunc returns the RDS client for an aws target.
type RDSClientFunc func(ctx context.Context, t config.AWSTarget) (*rds.Client, error)

// NewRDSClient builds an RDS client for t (see awsclient.Config) with the
// target's endpoint override.
func NewRDSClient(ctx context.Context, t config.AWSTarget) (*rds.Client, error) {
	cfg, err := awsclient.Config(ctx, t)
	if err != nil {
		return nil, err
	}
	hc := awsclient.HTTPClient(callTimeout)
	return rds.NewFromConfig(cfg, func(o *rds.Options) {
		if t.Endpoint != "" {
			o.BaseEndpoint = aws.String(t.Endpoint)
		}
		o.HTTPClient = hc
	}), nil
}

// ReportFunc receives an instance's LatestRestorableTime as the pitr
// recovery point of service (metrics.Objectives.ObservePITR).
type ReportFunc func(service, instance string, latest time.Time)

// Options configure a Poller. Config and Report are required.
type Options struct {
	Config *config.Config
	Report ReportFunc
	Logger *slog.Logger
	// RDSClient builds RDS clients; nil means NewRDSClient.
	RDSClient RDSClientFunc
	// Interval is how often Run reads the recovery points; 0 means
	// DefaultInterval.
	Interval time.Duration
}

// Poller reads the pitr recovery sources of the configuration's
// objectives.
type Poller struct {
	o       Options
	mu      sync.Mutex
	clients map[string]*rds.Client // by aws target
}

// New returns a Poller. It does no I/O: clients are created on first use.
func New(o Options) *Poller {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.RDSClient == nil {
		o.RDSClient = NewRDSClient
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	return &Poller{o: o, clients: map[string]*rds.Client{}}
}

// hasSources reports whether the objectives name any pitr recovery source.
func (p *Poller) hasSources() bool {
	for _, o := range p.o.Config.Objectives {
		for _, src := range o.RecoverySources {
			if src.Type == config.RecoverySourcePITR {
				return true
			}
		}
	}
	return false
}

// Run reads the recovery points at once and then every Interval until ctx
// ends; it returns nil at once when there is no pitr source.
func (p *Poller) Run(ctx context.Context) error {
	if !p.hasSources() {
		return nil
	}
	t := time.NewTicker(p.o.Interval)
	defer t.Stop()
	for {
		p.Refresh(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Refresh reads LatestRestorableTime of every pitr recovery source and
// reports it. A failed call is logged and reports nothing, so the old
// point stays and the exposure keeps growing while RDS cannot be asked.
func (p *Poller) Refresh(ctx context.Context) {
	for svc, o := range p.o.Config.Objectives {
		for _, src := range o.RecoverySources {
			if src.Type != config.RecoverySourcePITR {
				continue
			}
			t, err := p.latestRestorable(ctx, src)
			if err != nil {
				p.o.Logger.Warn("cannot read the PITR recovery point", "service", svc, "rds_instance", src.RDSInstance, "err", err)
				continue
			}
			p.o.Report(svc, src.RDSInstance, t)
		}
	}
}

// latestRestorable asks RDS for an instance's LatestRestorableTime.
func (p *Poller) latestRestorable(ctx context.Context, src config.RecoverySource) (time.Time, error) {
	client, err := p.client(ctx, src.Target)
	if err != nil {
		return time.Time{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
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

// client returns the cached RDS client of the aws target called name.
func (p *Poller) client(ctx context.Context, name string) (*rds.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.clients[name]; c != nil {
		return c, nil
	}
	for _, t := range p.o.Config.Targets.AWS {
		if t.Name == name {
			c, err := p.o.RDSClient(ctx, t)
			if err != nil {
				return nil, err
			}
			p.clients[name] = c
			return c, nil
		}
	}
	return nil, fmt.Errorf("undefined aws target %q", name)
}
