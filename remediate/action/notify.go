package action

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"text/template"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/metrics"
)

// DefaultNoticeSubject is the subject of the plan's user communication.
const DefaultNoticeSubject = "Service Status Update"

// Notice is one message about an incident, rendered from the plan's
// communication template:
//
//	Subject: Service Status Update
//
//	We are currently experiencing [issue description].
//	Our team is actively working on resolution.
//
//	Current Status: [status]
//	Expected Resolution: [time]
//
//	We apologize for the inconvenience.
//
// A resolved notice says the issue is resolved instead.
type Notice struct {
	Subject            string
	Issue              string
	Status             string
	ExpectedResolution string
	Resolved           bool
	// Incident context, for webhooks and the footer.
	IncidentID string
	Service    string
	Scenario   string
	Severity   string
	StartedAt  time.Time
	ResolvedAt time.Time
	// URL links to the incident in drguard's API, when known.
	URL string
	// PostmortemURL links a resolution message to the incident's
	// post-mortem, when drguard's external URL is known.
	PostmortemURL string
	SentAt        time.Time
}

// noticeTemplates holds the "status" and "resolved" bodies.
var noticeTemplates = template.Must(template.New("notices").Funcs(template.FuncMap{
	"duration": func(a, b time.Time) string { return fmtLag(b.Sub(a)) },
}).Parse(`{{ define "status" -}}
We are currently experiencing {{ .Issue }}.
Our team is actively working on resolution.

Current Status: {{ .Status }}
Expected Resolution: {{ .ExpectedResolution }}

We apologize for the inconvenience.
{{- if .URL }}

Details: {{ .URL }}{{ end }}
{{ end }}
{{- define "resolved" -}}
The issue we were experiencing ({{ .Issue }}) has been resolved.
{{- if not .ResolvedAt.IsZero }}
Resolved at: {{ .ResolvedAt.UTC.Format "2006-01-02 15:04 MST" }}{{ end }}
{{- if and (not .StartedAt.IsZero) (not .ResolvedAt.IsZero) }}
Duration: {{ duration .StartedAt .ResolvedAt }}{{ end }}

Current Status: {{ .Status }}

We apologize for the inconvenience. A post-mortem will follow.
{{- if .PostmortemURL }}
Post-mortem draft: {{ .PostmortemURL }}{{ end }}
{{- if .URL }}

Details: {{ .URL }}{{ end }}
{{ end }}`))

// Text renders the notice's body.
func (n Notice) Text() string {
	n = n.withDefaults()
	name := "status"
	if n.Resolved {
		name = "resolved"
	}
	var b bytes.Buffer
	if err := noticeTemplates.ExecuteTemplate(&b, name, n); err != nil {
		return fmt.Sprintf("%s: %s (template error: %v)", n.Subject, n.Status, err)
	}
	return b.String()
}

func (n Notice) withDefaults() Notice {
	if n.Subject == "" {
		n.Subject = DefaultNoticeSubject
		if n.Resolved {
			n.Subject += ": resolved"
		}
	}
	if n.Issue == "" {
		n.Issue = "a service disruption"
		if n.Service != "" {
			n.Issue = "a disruption of " + n.Service
		}
	}
	if n.Status == "" {
		n.Status = "Investigating"
		if n.Resolved {
			n.Status = "Resolved"
		}
	}
	if n.ExpectedResolution == "" {
		n.ExpectedResolution = "to be determined"
	}
	if n.SentAt.IsZero() {
		n.SentAt = time.Now()
	}
	n.Subject = oneLine(n.Subject)
	return n
}

// oneLine removes line breaks, so that a subject cannot inject headers.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// ExpectedResolution words when an incident that started at start should
// be resolved by, given the service's RTO.
func ExpectedResolution(start time.Time, rto time.Duration, now time.Time) string {
	if rto <= 0 || start.IsZero() {
		return "to be determined"
	}
	by := start.Add(rto)
	if now.After(by) {
		return fmt.Sprintf("as soon as possible (the %s recovery time objective has passed)", fmtLag(rto))
	}
	return fmt.Sprintf("by %s (recovery time objective %s)", by.UTC().Format("2006-01-02 15:04 MST"), fmtLag(rto))
}

// Notifiers delivers notices through the notifiers of a configuration.
// It is shared by the notify.* actions and the status updater.
type Notifiers struct {
	cfg    *config.Config
	client *http.Client
	dialer *net.Dialer
	// metrics counts deliveries; nil counts none (see WithMetrics).
	metrics *metrics.Notifications
}

// NewNotifiers returns the notifiers of cfg. client is used for Slack and
// webhook deliveries; nil means a client with connection timeouts.
func NewNotifiers(cfg *config.Config, client *http.Client) *Notifiers {
	if cfg == nil {
		cfg = &config.Config{}
	}
	if client == nil {
		client = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			IdleConnTimeout:       90 * time.Second,
		}}
	}
	return &Notifiers{cfg: cfg, client: client, dialer: &net.Dialer{Timeout: 10 * time.Second}}
}

// Config returns the configuration the notifiers come from.
func (n *Notifiers) Config() *config.Config { return n.cfg }

// Send delivers a notice through the named notifier, within the
// notifier's timeout (or ctx's deadline, when earlier), and counts the
// delivery. Errors name the notifier, never its URL or credentials.
func (n *Notifiers) Send(ctx context.Context, name string, notice Notice) (err error) {
	nc, ok := n.cfg.Notifier(name)
	if !ok {
		return fmt.Errorf("no notifier named %q in the configuration", name)
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, deliveryTimeout(nc))
	defer cancel()
	defer func() { n.count(parent, nc.Name, err) }()
	notice = notice.withDefaults()
	switch nc.Type {
	case config.NotifierSlack:
		err = n.sendSlack(ctx, nc, notice)
	case config.NotifierEmail:
		err = n.sendEmail(ctx, nc, notice)
	case config.NotifierWebhook:
		err = n.sendWebhook(ctx, nc, notice)
	default:
		err = fmt.Errorf("unknown type %q", nc.Type)
	}
	if err != nil {
		return fmt.Errorf("notifier %s (%s): %w", nc.Name, nc.Type, err)
	}
	return nil
}

// ResolveNotifier picks the notifier a notify step uses: the named one,
// which must have type kind, or else the only notifier of that type.
func ResolveNotifier(cfg *config.Config, kind, name string) (config.Notifier, error) {
	if name != "" {
		nc, ok := cfg.Notifier(name)
		if !ok {
			return nc, fmt.Errorf("no notifier named %q in the configuration", name)
		}
		if nc.Type != kind {
			return nc, fmt.Errorf("notifier %q is of type %s, not %s", name, nc.Type, kind)
		}
		return nc, nil
	}
	var found []config.Notifier
	for _, nc := range cfg.Notifiers {
		if nc.Type == kind {
			found = append(found, nc)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return config.Notifier{}, fmt.Errorf("no %s notifier is configured: add one under notifiers", kind)
	}
	names := make([]string, len(found))
	for i, nc := range found {
		names[i] = nc.Name
	}
	return config.Notifier{}, fmt.Errorf("several %s notifiers are configured (%s): set param \"notifier\"", kind, strings.Join(names, ", "))
}
