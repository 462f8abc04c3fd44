package action

import (
	"context"
	"fmt"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
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

var _ Action = (*Notify)(nil)

// NewNotifySlack builds notify.slack.
func NewNotifySlack(d Deps) (Action, error) { return newNotify(config.NotifierSlack, d), nil }

// NewNotifyEmail builds notify.email.
func NewNotifyEmail(d Deps) (Action, error) { return newNotify(config.NotifierEmail, d), nil }

// NewNotifyWebhook builds notify.webhook.
func NewNotifyWebhook(d Deps) (Action, error) { return newNotify(config.NotifierWebhook, d), nil }

func newNotify(kind string, d Deps) *Notify {
	return &Notify{kind: kind, n: NewNotifiers(d.Config, d.HTTPClient)}
}

// Info declares notifications not destructive and idempotent: a message
// sent twice after a crash does less harm than one never sent.
func (*Notify) Info() Info { return Info{Idempotent: true} }

var notifyParams = []string{"notifier", "status", "issue", "expected_resolution", "started_at", "subject", "resolved", "incident"}

// Validate checks the unrendered params.
func (*Notify) Validate(params map[string]any) error {
	if err := checkKnown(params, notifyParams...); err != nil {
		return err
	}
	for _, k := range notifyParams {
		if k == "resolved" {
			continue
		}
		if _, err := stringParam(params, k, ""); err != nil {
			return err
		}
	}
	if _, err := timeParam(params, "started_at", true); err != nil {
		return err
	}
	_, err := boolParam(params, "resolved", false, true)
	return err
}

// Run renders the notice and delivers it.
func (a *Notify) Run(ctx context.Context, req Request) (Outcome, error) {
	name, err := stringParam(req.Params, "notifier", "")
	if err != nil {
		return Outcome{}, err
	}
	cfg := a.n.Config()
	nc, err := ResolveNotifier(cfg, a.kind, name)
	if err != nil {
		return Outcome{}, fmt.Errorf("notify.%s: %w", a.kind, err)
	}
	notice, err := a.notice(req, cfg)
	if err != nil {
		return Outcome{}, err
	}
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
func (a *Notify) notice(req Request, cfg *config.Config) (Notice, error) {
	p := req.Params
	var n Notice
	var err error
	for key, dst := range map[string]*string{
		"status": &n.Status, "issue": &n.Issue, "expected_resolution": &n.ExpectedResolution,
		"subject": &n.Subject, "incident": &n.IncidentID,
	} {
		if *dst, err = stringParam(p, key, ""); err != nil {
			return n, err
		}
	}
	if n.Resolved, err = boolParam(p, "resolved", false, false); err != nil {
		return n, err
	}
	if n.StartedAt, err = timeParam(p, "started_at", false); err != nil {
		return n, err
	}
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
	}
	return n, nil
}

// IncidentURL is the API address of an incident under drguard's external
// URL.
func IncidentURL(external, id string) string {
	for len(external) > 0 && external[len(external)-1] == '/' {
		external = external[:len(external)-1]
	}
	return external + "/api/v1/incidents/" + id
}
