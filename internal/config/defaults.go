package config

import (
	"strconv"
	"time"

	"github.com/prometheus/common/model"
)

// Defaults, taken from the DR plan where it gives a number.
const (
	DefaultListenAddress     = ":9095"
	DefaultMaxBodyBytes      = 1 << 20
	DefaultShutdownTimeout   = model.Duration(10 * time.Second)
	DefaultSessionLifetime   = model.Duration(12 * time.Hour)
	DefaultStoragePath       = "data"
	DefaultDestructiveBudget = 3
	DefaultDestructiveWindow = model.Duration(time.Hour)
	DefaultApprovalExpiry    = model.Duration(time.Hour)
	DefaultStepTimeout       = model.Duration(5 * time.Minute)
	DefaultTargetLabel       = "target"
	DefaultOnFailure         = OnFailureAbort
	DefaultOnResolved        = OnResolvedStop
	DefaultApprovals         = 1
	DefaultProbeInterval     = model.Duration(30 * time.Second)
	DefaultProbeTimeout      = model.Duration(10 * time.Second)
	DefaultFailureThreshold  = 3
	DefaultSuccessThreshold  = 1
	// DefaultBackupInterval is the plan's "every 6 hours".
	DefaultBackupInterval = model.Duration(6 * time.Hour)
	// Default retention is the plan's 30 days daily, 90 days weekly,
	// 1 year monthly.
	DefaultRetentionDaily   = model.Duration(30 * 24 * time.Hour)
	DefaultRetentionWeekly  = model.Duration(90 * 24 * time.Hour)
	DefaultRetentionMonthly = model.Duration(365 * 24 * time.Hour)
)

// What a step does when its action fails.
const (
	OnFailureAbort    = "abort"
	OnFailureContinue = "continue"
	OnFailureEscalate = "escalate"
)

// What a run does once its alert resolves.
const (
	OnResolvedStop     = "stop"
	OnResolvedContinue = "continue"
)

// applyDefaults fills every unset field that has a default. present
// reports whether a path was written in the file, to tell an explicit 0
// from an absent key where 0 is meaningful.
func applyDefaults(c *Config, present func(path string) bool) {
	s := &c.Server
	setString(&s.ListenAddress, DefaultListenAddress)
	if s.MaxBodyBytes == 0 {
		s.MaxBodyBytes = DefaultMaxBodyBytes
	}
	setDuration(&s.ShutdownTimeout, DefaultShutdownTimeout)
	setDuration(&s.SessionLifetime, DefaultSessionLifetime)
	c.Storage.applyDefaults()

	g := &c.Guardrails
	if g.DestructiveBudget == 0 && !present("guardrails.destructive_budget") {
		g.DestructiveBudget = DefaultDestructiveBudget
	}
	setDuration(&g.DestructiveWindow, DefaultDestructiveWindow)
	setDuration(&g.ApprovalExpiry, DefaultApprovalExpiry)
	setDuration(&g.StepTimeout, DefaultStepTimeout)

	for i := range c.Policies {
		p := &c.Policies[i]
		setString(&p.TargetLabel, DefaultTargetLabel)
		setString(&p.OnResolved, DefaultOnResolved)
		if p.Corroborate != nil {
			setDuration(&p.Corroborate.Window, DefaultCorroborationWindow)
		}
		for j := range p.Steps {
			applyStepDefaults(&p.Steps[j], j, g)
		}
	}

	for i := range c.Probes {
		p := &c.Probes[i]
		setDuration(&p.Interval, DefaultProbeInterval)
		setDuration(&p.Timeout, min(DefaultProbeTimeout, p.Interval))
		if p.FailureThreshold == 0 {
			p.FailureThreshold = DefaultFailureThreshold
		}
		if p.SuccessThreshold == 0 {
			p.SuccessThreshold = DefaultSuccessThreshold
		}
		if p.Service == "" {
			p.Service = c.Targets.service(p.Target)
		}
	}

	for i := range c.Backups {
		b := &c.Backups[i]
		setDuration(&b.Interval, DefaultBackupInterval)
		setDuration(&b.Retention.Daily, DefaultRetentionDaily)
		setDuration(&b.Retention.Weekly, DefaultRetentionWeekly)
		setDuration(&b.Retention.Monthly, DefaultRetentionMonthly)
		if b.Service == "" {
			b.Service = c.Targets.service(b.Target)
		}
	}
	applyBackupDefaults(c)
	applyNotifierDefaults(c)
	applyCloudDefaults(c)
	applyWatchdogDefaults(c)
	applyDrillDefaults(c)
}

// applyStepDefaults fills the unset settings of st, the jth step of a
// policy or of a drill's injection, from the guardrails g.
func applyStepDefaults(st *Step, j int, g *Guardrails) {
	if st.Name == "" && st.Action != "" {
		st.Name = st.Action + "-" + strconv.Itoa(j)
	}
	setDuration(&st.Timeout, g.StepTimeout)
	if st.Approval.Required {
		setDuration(&st.Approval.Expires, g.ApprovalExpiry)
	}
	if st.Approval.Required && st.Approval.Approvals == 0 {
		st.Approval.Approvals = DefaultApprovals
	}
	setString(&st.OnFailure, DefaultOnFailure)
	if st.Verify != nil {
		setDuration(&st.Verify.Within, st.Timeout)
	}
}

func setString(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

func setDuration(d *model.Duration, def model.Duration) {
	if *d == 0 {
		*d = def
	}
}
