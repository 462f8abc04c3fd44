package remediate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/remediate/action"
)

// Timeline event kinds the status updater writes. The event's message
// starts with "notifier NAME:", which is how the updater finds, after a
// restart, when it last told each notifier about an incident.
const (
	EventStatusUpdate     = "status_update"
	EventResolutionNotice = "resolution_notice"
)

// Defaults of the status updater.
const (
	DefaultStatusTick     = 30 * time.Second
	DefaultResolvedWithin = 24 * time.Hour
	// maxRetryDelay bounds how long a failed delivery waits before the
	// next attempt.
	maxRetryDelay = 5 * time.Minute
)

// StatusUpdaterOptions configure a StatusUpdater.
type StatusUpdaterOptions struct {
	Store *store.Store
	// Journal records deliveries; nil means Store. The daemon passes the
	// leader's fenced journal.
	Journal interface {
		Update(fn func(*store.Tx) error) error
	}
	Config *config.Config
	// Notifiers delivers notices; nil builds them from Config.
	Notifiers *action.Notifiers
	Logger    *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Tick is how often the journal is examined; default 30s. Keep it
	// shorter than the shortest status interval.
	Tick time.Duration
	// ResolvedWithin is how long after its resolution an incident may
	// still get its resolution message; default 24h. Older incidents are
	// never announced, even after a long outage of drguard.
	ResolvedWithin time.Duration
}

// StatusUpdater sends the plan's status updates for open incidents, on
// each notifier's schedule (status_interval while active, by default every
// 30 minutes; recovery_interval once a remediation run has succeeded and
// the incident is not resolved yet, by default every 2 hours), and one
// resolution message per notifier that heard about the incident. Every
// delivery is recorded on the incident's timeline, so a restart neither
// repeats nor forgets a schedule; a delivery interrupted by a crash may be
// sent twice, never lost.
type StatusUpdater struct {
	o         StatusUpdaterOptions
	log       *slog.Logger
	notifiers []scheduledNotifier

	mu sync.Mutex
	// failed remembers failed deliveries (incident|notifier), to retry
	// them with a delay instead of on every tick.
	failed map[string]time.Time
	// busy holds the notifiers with deliveries in flight.
	busy map[string]bool
	// wg counts the deliveries in flight.
	wg sync.WaitGroup
}

type scheduledNotifier struct {
	cfg      config.Notifier
	matchers labels.Matchers
}

// NewStatusUpdater checks the options and compiles the notifiers'
// matchers. Notifiers with status_updates: false are left out.
func NewStatusUpdater(o StatusUpdaterOptions) (*StatusUpdater, error) {
	if o.Store == nil || o.Config == nil {
		return nil, errors.New("status updater: a store and a config are required")
	}
	if o.Notifiers == nil {
		o.Notifiers = action.NewNotifiers(o.Config, nil)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Tick <= 0 {
		o.Tick = DefaultStatusTick
	}
	if o.ResolvedWithin <= 0 {
		o.ResolvedWithin = DefaultResolvedWithin
	}
	if o.Journal == nil {
		o.Journal = o.Store
	}
	u := &StatusUpdater{o: o, log: o.Logger, failed: map[string]time.Time{}, busy: map[string]bool{}}
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	for _, n := range o.Config.Notifiers {
		if !n.StatusUpdatesOn() {
			continue
		}
		sn := scheduledNotifier{cfg: n}
		for _, m := range n.Matchers {
			pm, err := labels.ParseMatcher(m)
			if err != nil {
				return nil, fmt.Errorf("notifier %s: matcher %q: %w", n.Name, m, err)
			}
			sn.matchers = append(sn.matchers, pm)
		}
		if sn.cfg.StatusInterval <= 0 || sn.cfg.RecoveryInterval <= 0 {
			return nil, fmt.Errorf("notifier %s: status_interval and recovery_interval are unset: the configuration's defaults were not applied", n.Name)
		}
		u.notifiers = append(u.notifiers, sn)
	}
	return u, nil
}

// incidentView is an incident with its runs.
type incidentView struct {
	inc  store.Incident
	runs []store.Run
}

// load reads the open incidents and those resolved within ResolvedWithin.
func (u *StatusUpdater) load(now time.Time) ([]incidentView, error) {
	var out []incidentView
	err := u.o.Store.View(func(tx *store.Tx) error {
		return tx.ForEachIncident(func(in store.Incident) error {
			if in.State != store.IncidentOpen && now.Sub(in.ResolvedAt) > u.o.ResolvedWithin {
				return nil
			}
			v := incidentView{inc: in}
			for _, id := range in.RunIDs {
				r, err := tx.Run(id)
				if err != nil {
					return fmt.Errorf("run %s of incident %s: %w", id, in.ID, err)
				}
				v.runs = append(v.runs, r)
			}
			out = append(out, v)
			return nil
		})
	})
	return out, err
}

// history is what a notifier was told about an incident.
type history struct {
	last           time.Time // latest status update or notify step
	announced      bool
	resolutionSent bool
}

// historyOf reads, from the timeline and from the runs' notify steps, what
// notifier name was told about v.
func historyOf(v incidentView, name string) history {
	var h history
	prefix := "notifier " + name + ":"
	for _, ev := range v.inc.Timeline {
		if !strings.HasPrefix(ev.Message, prefix) {
			continue
		}
		switch ev.Kind {
		case EventStatusUpdate:
			h.announced = true
			if ev.Time.After(h.last) {
				h.last = ev.Time
			}
		case EventResolutionNotice:
			h.announced, h.resolutionSent = true, true
		}
	}
	for _, r := range v.runs {
		for _, st := range r.Steps {
			if !strings.HasPrefix(st.Action, "notify.") || st.State != store.StepSucceeded || st.Result["notifier"] != name {
				continue
			}
			h.announced = true
			if st.Result["resolved"] == true {
				h.resolutionSent = true
			} else if st.EndedAt.After(h.last) {
				h.last = st.EndedAt
			}
		}
	}
	return h
}

// due reports whether n should hear about v now.
func (u *StatusUpdater) due(v incidentView, n scheduledNotifier, now time.Time) bool {
	for _, m := range n.matchers {
		if !m.Matches(v.inc.Labels[m.Name]) {
			return false
		}
	}
	key := v.inc.ID + "|" + n.cfg.Name
	interval := time.Duration(n.cfg.StatusInterval)
	if recovering(v) {
		interval = time.Duration(n.cfg.RecoveryInterval)
	}
	u.mu.Lock()
	at, ok := u.failed[key]
	u.mu.Unlock()
	if ok && now.Sub(at) < min(interval, maxRetryDelay) {
		return false
	}
	h := historyOf(v, n.cfg.Name)
	if v.inc.State != store.IncidentOpen {
		return h.announced && !h.resolutionSent
	}
	base := h.last
	if base.IsZero() {
		base = v.inc.FirstSeen
	}
	return !now.Before(base.Add(interval))
}

// recovering reports whether an open incident is in recovery: one of its
// remediation runs has succeeded, the incident has not resolved yet.
func recovering(v incidentView) bool {
	for _, r := range v.runs {
		if r.State == store.RunSucceeded {
			return true
		}
	}
	return false
}

// deliver sends n its notice about v and records it on the timeline.
func (u *StatusUpdater) deliver(ctx context.Context, v incidentView, n scheduledNotifier, now time.Time) bool {
	key := v.inc.ID + "|" + n.cfg.Name
	notice := u.notice(v, now)
	err := u.o.Notifiers.Send(ctx, n.cfg.Name, notice)
	u.mu.Lock()
	if err != nil {
		u.failed[key] = now
	} else {
		delete(u.failed, key)
	}
	u.mu.Unlock()
	if err != nil {
		u.log.Warn("status update not delivered; will retry", "incident", v.inc.ID, "notifier", n.cfg.Name, "err", err)
		return false
	}
	kind, msg := EventStatusUpdate, fmt.Sprintf("notifier %s: status update sent (%s)", n.cfg.Name, notice.Status)
	if notice.Resolved {
		kind, msg = EventResolutionNotice, fmt.Sprintf("notifier %s: resolution message sent", n.cfg.Name)
	}
	err = u.o.Journal.Update(func(tx *store.Tx) error {
		in, err := tx.Incident(v.inc.ID)
		if err != nil {
			return err
		}
		in.Timeline = append(in.Timeline, store.Event{Time: now.UTC(), Kind: kind, Message: msg})
		return tx.PutIncident(&in)
	})
	if err != nil {
		// Sent but not recorded: the next tick may send it again.
		u.log.Error("status update sent but not journaled", "incident", v.inc.ID, "notifier", n.cfg.Name, "err", err)
	}
	u.log.Info("status update sent", "incident", v.inc.ID, "notifier", n.cfg.Name, "kind", kind)
	return true
}

// notice renders the plan's communication for v as of now.
func (u *StatusUpdater) notice(v incidentView, now time.Time) action.Notice {
	in := v.inc
	start := in.StartsAt
	if start.IsZero() {
		start = in.FirstSeen
	}
	service := in.Labels[detect.LabelService]
	n := action.Notice{
		Issue: in.Annotations["issue"], Status: incidentStatus(v), IncidentID: in.ID, Service: service,
		Scenario: in.Labels[detect.LabelScenario], Severity: in.Labels[detect.LabelSeverity],
		StartedAt: start, SentAt: now, Resolved: in.State != store.IncidentOpen,
	}
	if n.Issue == "" {
		n.Issue = detect.Detection{Labels: in.Labels, Annotations: in.Annotations}.Summary()
	}
	if n.Resolved {
		n.ResolvedAt = in.ResolvedAt
	} else {
		n.ExpectedResolution = action.ExpectedResolution(start, time.Duration(u.o.Config.Objectives[service].RTO), now)
	}
	if ext := u.o.Config.Server.ExternalURL; ext != "" {
		n.URL = action.IncidentURL(ext, in.ID)
		if n.Resolved {
			n.PostmortemURL = action.PostmortemURL(ext, in.ID)
		}
	}
	return n
}

// incidentStatus words where remediation of an incident stands.
func incidentStatus(v incidentView) string {
	if v.inc.State != store.IncidentOpen {
		return "Resolved"
	}
	succeeded, stopped := false, false
	for i := len(v.runs) - 1; i >= 0; i-- {
		r := v.runs[i]
		switch {
		case r.State == store.RunAwaitingApproval:
			return "Recovery is waiting for an engineer to approve the next step (" + currentStep(r) + ")"
		case r.Active():
			return "Recovery in progress (" + currentStep(r) + ")"
		case r.State == store.RunSucceeded:
			succeeded = true
		default:
			stopped = true
		}
	}
	switch {
	case succeeded:
		return "Recovery actions completed; monitoring until the service is confirmed healthy"
	case stopped:
		return "Our engineers are working on the recovery"
	}
	return "Investigating"
}

// currentStep names the step a run is at.
func currentStep(r store.Run) string {
	for _, st := range r.Steps {
		switch st.State {
		case store.StepRunning, store.StepAwaitingApproval, store.StepPending:
			return "step " + st.Name
		}
	}
	return "run " + r.ID
}
