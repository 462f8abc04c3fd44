package config

import (
	"fmt"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/common/model"
)

// Defaults of the leader lease. Patroni's are ttl 30s, loop_wait 10s and
// client-go's leader election 15s/10s/2s; shorter ttls give false
// failovers. drguard takes 20s: a false failover costs an interrupted step
// (which a human must check), so the ttl outlasts two missed renewals and
// a journal hiccup of ten seconds, while a real one leaves the service
// without a leader for at most 20s, small beside any RTO.
const (
	DefaultLeaseTTL           = model.Duration(20 * time.Second)
	DefaultLeaseRenewInterval = model.Duration(5 * time.Second)
	DefaultLeaseRenewDeadline = model.Duration(15 * time.Second)
	// MinLeaseTTL is the shortest ttl the journal accepts.
	MinLeaseTTL = model.Duration(time.Second)
	// shortLeaseTTL is the ttl below which check warns of false failovers.
	shortLeaseTTL = model.Duration(10 * time.Second)
)

// Lease configures the election of one leader among replicas sharing the
// PostgreSQL journal: a lease row renewed every renew_interval, taken over
// by another replica once ttl has passed without a renewal. A leader that
// has not renewed within renew_deadline stops acting (starts no step),
// ttl − renew_deadline before another replica may take over.
type Lease struct {
	TTL           model.Duration `yaml:"ttl" json:"ttl"`                       // default 20s
	RenewInterval model.Duration `yaml:"renew_interval" json:"renew_interval"` // default 5s
	RenewDeadline model.Duration `yaml:"renew_deadline" json:"renew_deadline"` // default 15s
}

func (l *Lease) applyDefaults() {
	setDuration(&l.TTL, DefaultLeaseTTL)
	setDuration(&l.RenewInterval, min(DefaultLeaseRenewInterval, l.TTL/4))
	setDuration(&l.RenewDeadline, l.TTL-min(l.TTL/4, DefaultLeaseTTL-DefaultLeaseRenewDeadline))
}

// lease checks the leader lease's timings.
func (v *validator) lease() {
	l := v.c.Storage.Lease
	switch {
	case l.TTL < MinLeaseTTL:
		v.ps.errorf("storage.lease.ttl", "must be at least %s", MinLeaseTTL)
	case l.RenewDeadline <= 0 || l.RenewDeadline >= l.TTL:
		v.ps.errorf("storage.lease.renew_deadline", "must be greater than 0 and shorter than the ttl %s: the leader stops acting at the deadline, before another replica may take over", l.TTL)
	case l.RenewInterval <= 0 || l.RenewInterval >= l.RenewDeadline:
		v.ps.errorf("storage.lease.renew_interval", "must be greater than 0 and shorter than renew_deadline %s, or one failed renewal deposes the leader", l.RenewDeadline)
	case l.TTL < shortLeaseTTL && v.c.Storage.Type == StoragePostgres:
		v.ps.warnf("storage.lease.ttl", "a ttl of %s is short: a pause of the leader or the journal that long starts a failover (and interrupts the steps in flight); Patroni uses 30s, drguard defaults to %s", l.TTL, DefaultLeaseTTL)
	}
}

// Corroborate makes a policy wait for other detections before it runs: a
// run starts only while its triggering detection and, for each entry of
// Requires, a detection it matches are firing at once, all of them started
// within Window of the triggering one. A trigger that resolves before it
// is corroborated, or is not corroborated within Window of being seen,
// starts nothing.
type Corroborate struct {
	// Window bounds how far apart the detections may start, and how long
	// a trigger waits for the others. Default 10m.
	Window model.Duration `yaml:"window" json:"window"`
	// Requires lists matcher sets in Alertmanager syntax, e.g.
	// `{alertname="DrguardProbeFailed", probe="app-ready-from-dr"}`; each
	// must be matched by a firing detection.
	Requires []string `yaml:"requires" json:"requires"`
}

// DefaultCorroborationWindow is a corroboration's default window.
const DefaultCorroborationWindow = model.Duration(10 * time.Minute)

// corroborate checks a policy's corroboration.
func (v *validator) corroborate(path string, c *Corroborate) {
	if c == nil {
		return
	}
	path = joinPath(path, "corroborate")
	v.positive(joinPath(path, "window"), c.Window)
	if len(c.Requires) == 0 {
		v.ps.errorf(joinPath(path, "requires"), "at least one matcher set is required, e.g. '{alertname=\"DrguardProbeFailed\", probe=\"app-ready\"}'")
	}
	for i, m := range c.Requires {
		if _, err := labels.ParseMatchers(m); err != nil {
			v.ps.errorf(indexPath(joinPath(path, "requires"), i), "invalid matchers %q: %v", m, err)
		}
	}
}

// String describes the corroboration for messages.
func (c Corroborate) String() string {
	return fmt.Sprintf("%v within %s", c.Requires, c.Window)
}
