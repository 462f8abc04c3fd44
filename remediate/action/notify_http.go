package action

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/fruitfulplanet/drguard/internal/config"
)

// maxNotifyResponseBytes bounds what is read of a webhook's answer.
const maxNotifyResponseBytes = 4 << 10

// sendSlack posts the notice to a Slack incoming webhook, or, for a Slack
// app without one, to its channel through the Web API (chat.postMessage).
func (n *Notifiers) sendSlack(ctx context.Context, nc config.Notifier, notice Notice) error {
	text := fmt.Sprintf("*%s*\n%s", notice.Subject, notice.Text())
	if nc.URL == "" && nc.BotToken != "" {
		api := strings.TrimSuffix(nc.APIURL, "/") + "/"
		client := slack.New(nc.BotToken.Reveal(), slack.OptionAPIURL(api), slack.OptionHTTPClient(guardedClient(n.client, nil, nil)))
		if _, _, err := client.PostMessageContext(ctx, nc.Channel, slack.MsgOptionText(text, false)); err != nil {
			return fmt.Errorf("chat.postMessage: %w", err)
		}
		return nil
	}
	return n.postJSON(ctx, nc, map[string]any{"text": text})
}

// WebhookPayload is the JSON a webhook (status page) notifier receives.
type WebhookPayload struct {
	Subject            string          `json:"subject"`
	Text               string          `json:"text"`
	Issue              string          `json:"issue"`
	Status             string          `json:"status"`
	ExpectedResolution string          `json:"expected_resolution,omitempty"`
	Resolved           bool            `json:"resolved"`
	Incident           WebhookIncident `json:"incident"`
	SentAt             time.Time       `json:"sent_at"`
}

// WebhookIncident is the incident a webhook payload is about.
type WebhookIncident struct {
	ID         string    `json:"id,omitempty"`
	Service    string    `json:"service,omitempty"`
	Scenario   string    `json:"scenario,omitempty"`
	Severity   string    `json:"severity,omitempty"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	URL        string    `json:"url,omitempty"`
}

// sendWebhook posts the notice as a WebhookPayload.
func (n *Notifiers) sendWebhook(ctx context.Context, nc config.Notifier, notice Notice) error {
	return n.postJSON(ctx, nc, WebhookPayload{
		Subject: notice.Subject, Text: notice.Text(), Issue: notice.Issue, Status: notice.Status,
		ExpectedResolution: notice.ExpectedResolution, Resolved: notice.Resolved, SentAt: notice.SentAt.UTC(),
		Incident: WebhookIncident{ID: notice.IncidentID, Service: notice.Service, Scenario: notice.Scenario,
			Severity: notice.Severity, StartedAt: notice.StartedAt.UTC(), ResolvedAt: notice.ResolvedAt.UTC(), URL: notice.URL},
	})
}

// postJSON posts payload to the notifier's URL, which is never quoted in
// errors (a Slack webhook URL is a credential).
func (n *Notifiers) postJSON(ctx context.Context, nc config.Notifier, payload any) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode payload: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, nc.URL.Reveal(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("the configured URL is not usable")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "drguard")
	if nc.BearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+nc.BearerToken.Reveal())
	}
	// A redirect to another origin goes without the bearer token.
	resp, err := guardedClient(n.client, nil, nil).Do(req)
	if err != nil {
		return fmt.Errorf("POST: %w", transportError(err))
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxNotifyResponseBytes))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("POST: HTTP %s%s", resp.Status, tailFor(string(answer)))
	}
	return nil
}
