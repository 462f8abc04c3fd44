package action

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/params"
)

// Notify sends the plan's status communication through one notifier of
// its type: notify.slack (incoming webhook), notify.email (SMTP) or
// notify.webhook (a status page).
//
// Params: notifier (default: the only notifier of the type), status
// (default "Investigating"), issue (default: the detection's summary),
// expected_resolution (default: detection start + the service's RTO; the
// start is started_at, e.g. "{{ .Incident.StartsAt }}", else now),
// started_at, subject (default "Service Status Update"), resolved (bool:
// send the resolution message), incident (an incident ID for the footer,
// e.g. "{{ .Incident.ID }}").
//
// Result: notifier, type, subject, status, resolved.
type Notify struct {
	kind string
	n    *Notifiers
}

// notifyInfo declares notifications not destructive and idempotent: a
// message sent twice after a crash does less harm than one never sent.
var notifyInfo = Info{Idempotent: true}

// notifyParams is the params of notify.*.
type notifyParams struct {
	Notifier           string `param:"notifier"`
	Status             string `param:"status"`
	Issue              string `param:"issue"`
	ExpectedResolution string `param:"expected_resolution"`
	StartedAt          Time   `param:"started_at"`
	Subject            string `param:"subject"`
	Resolved           bool   `param:"resolved"`
	Incident           string `param:"incident"`
}

func (*notifyParams) check(params.Templates) error { return nil }

// newNotify returns the constructor of notify.<kind>.
func newNotify(kind string) func(Deps) (RunFunc[notifyParams], error) {
	return func(d Deps) (RunFunc[notifyParams], error) {
		return (&Notify{kind: kind, n: NewNotifiers(d.Config, d.HTTPClient).WithMetrics(d.Notifications)}).run, nil
	}
}

// run renders the notice and delivers it.
func (a *Notify) run(ctx context.Context, req Request, p *notifyParams) (Outcome, error) {
	cfg := a.n.Config()
	nc, err := ResolveNotifier(cfg, a.kind, p.Notifier)
	if err != nil {
		return Outcome{}, fmt.Errorf("notify.%s: %w", a.kind, err)
	}
	notice := a.notice(req, p, cfg)
	if err := a.n.Send(ctx, nc.Name, notice); err != nil {
		return Outcome{}, err
	}
	notice = notice.withDefaults()
	return Outcome{
		Output: fmt.Sprintf("sent via %s (%s):\nSubject: %s\n\n%s", nc.Name, nc.Type, notice.Subject, notice.Text()),
		Result: map[string]any{"notifier": nc.Name, "type": nc.Type, "subject": notice.Subject, "status": notice.Status, "resolved": notice.Resolved},
	}, nil
}

// notice builds the notice from the params and the detection.
func (a *Notify) notice(req Request, p *notifyParams, cfg *config.Config) Notice {
	n := Notice{Status: p.Status, Issue: p.Issue, ExpectedResolution: p.ExpectedResolution,
		Subject: p.Subject, IncidentID: p.Incident, Resolved: p.Resolved, StartedAt: p.StartedAt.Time}
	n.Service, n.Scenario, n.Severity = req.Labels["service"], req.Labels["scenario"], req.Labels["severity"]
	now := time.Now()
	n.SentAt = now
	if n.Issue == "" {
		n.Issue = req.Annotations["summary"]
	}
	if n.ExpectedResolution == "" && !n.Resolved {
		start := n.StartedAt
		if start.IsZero() {
			start = now
		}
		n.ExpectedResolution = ExpectedResolution(start, time.Duration(cfg.Objectives[n.Service].RTO), now)
	}
	if n.Resolved {
		n.ResolvedAt = now
	}
	if n.IncidentID != "" && cfg.Server.ExternalURL != "" {
		n.URL = IncidentURL(cfg.Server.ExternalURL, n.IncidentID)
		if n.Resolved {
			n.PostmortemURL = PostmortemURL(cfg.Server.ExternalURL, n.IncidentID)
		}
	}
	return n
}

// PostmortemURL is the incident's post-mortem (Markdown) under drguard's
// external URL.
func PostmortemURL(external, id string) string {
	return strings.TrimRight(external, "/") + "/api/v1/incidents/" + id + "/postmortem"
}

// IncidentURL is the console's page of an incident under drguard's
// external URL (its timeline, runs and approvals; the JSON is at
// /api/v1/incidents/ID).
func IncidentURL(external, id string) string {
	for len(external) > 0 && external[len(external)-1] == '/' {
		external = external[:len(external)-1]
	}
	return external + "/incidents/" + id
}

// preflightNotify checks that the step's notifier is configured. Nothing
// is sent.
func preflightNotify(kind string) func(Deps) PreflightFunc[notifyParams] {
	return func(d Deps) PreflightFunc[notifyParams] {
		return func(_ context.Context, _ Request, p *notifyParams) Preflight {
			var pf Preflight
			nc, err := ResolveNotifier(d.Config, kind, p.Notifier)
			if err != nil {
				pf.fail("notifier", kind, "notify.%s: %v", kind, err)
			} else {
				pf.pass("notifier", nc.Name, "%s notifier %s is configured; nothing was sent", nc.Type, nc.Name)
			}
			return pf
		}
	}
}
