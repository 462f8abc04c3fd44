package slackbot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/slack-go/slack"

	"github.com/fruitfulplanet/drguard/internal/server"
	"github.com/fruitfulplanet/drguard/internal/store"
)

// maxInteractionBytes bounds the body of a button press.
const maxInteractionBytes = 64 << 10

// Results of a button press, as counted in
// drguard_slack_interactions_total.
const (
	resultDecided = "decided"
	resultRefused = "refused"
	resultInvalid = "invalid"
)

// ServeHTTP serves POST /api/v1/slack/interactions: a button press of an
// approval message. The request must carry a valid signature of one of
// the apps' signing secrets (HMAC-SHA256 over version, timestamp and body,
// compared in constant time), a timestamp within 5 minutes, and must not
// have been accepted before; otherwise it is answered 401 and nothing
// happens. The Slack user must be mapped to a drguard user
// (auth.users[].slack_user_id), whose role and four-eyes apply as for any
// approver; a refusal is explained to the presser in an ephemeral message.
// Slack gets 200 at once; replies go out after.
func (b *Bot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxInteractionBytes))
	if err != nil {
		b.invalid(w, r, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	ap, why := b.verify(r, body)
	if ap == nil {
		b.invalid(w, r, http.StatusUnauthorized, why)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		b.invalid(w, r, http.StatusBadRequest, "not a form")
		return
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(form.Get("payload")), &cb); err != nil {
		b.invalid(w, r, http.StatusBadRequest, "payload is not an interaction")
		return
	}
	w.WriteHeader(http.StatusOK)
	if cb.Type != slack.InteractionTypeBlockActions || len(cb.ActionCallback.BlockActions) == 0 {
		return // not a button press of ours
	}
	act := cb.ActionCallback.BlockActions[0]
	approve := act.ActionID == actionApprove
	if !approve && act.ActionID != actionReject {
		return // the "Open in drguard" link button
	}
	id, hash, ok := parseValue(act.Value)
	if !ok {
		b.reply(ap, cb, resultRefused, "This button carries no approval drguard knows.")
		return
	}
	user, mapped := b.users[cb.User.ID]
	if !mapped {
		b.log.Warn("slack: button press by an unmapped Slack user refused", "slack_user", cb.User.ID, "approval", id)
		b.reply(ap, cb, resultRefused, fmt.Sprintf("You are not a drguard user: your Slack member ID %s is not mapped to one (auth.users[].slack_user_id), so drguard did not record your decision on %s.", cb.User.ID, id))
		return
	}
	ident := server.Identity{Name: user.Name, Role: user.Role}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	a, err := b.o.Engine.Decide(ctx, id, server.Decision{Approve: approve, Actor: user.Name, Identity: ident,
		Remote: "slack " + cb.User.ID + " via " + r.RemoteAddr, Comment: "from Slack", ParamsHash: hash})
	if err != nil {
		b.reply(ap, cb, resultRefused, fmt.Sprintf("drguard did not record your decision on %s: %s", id, err))
		return
	}
	b.Wake() // update the message now
	msg := fmt.Sprintf("drguard recorded your decision on %s as %s: it is now %s.", id, user.Name, a.State)
	if a.State == store.ApprovalPending {
		msg = fmt.Sprintf("drguard recorded your approval of %s as %s: %s.", id, user.Name, a.Outstanding())
	}
	b.reply(ap, cb, resultDecided, msg)
}

// verify returns the app whose signing secret signed the request, or nil
// and why none did: missing headers, a stale timestamp, a wrong signature,
// or a replay of an accepted request.
func (b *Bot) verify(r *http.Request, body []byte) (*app, string) {
	why := "no valid signature"
	for _, ap := range b.apps {
		sv, err := slack.NewSecretsVerifier(r.Header, ap.cfg.SigningSecret.Reveal())
		switch {
		case errors.Is(err, slack.ErrExpiredTimestamp):
			return nil, "stale timestamp"
		case errors.Is(err, slack.ErrMissingHeaders):
			return nil, "missing signature headers"
		case err != nil:
			return nil, "malformed signature"
		}
		_, _ = sv.Write(body)
		if sv.Ensure() != nil {
			continue
		}
		key := r.Header.Get("X-Slack-Request-Timestamp") + "|" + r.Header.Get("X-Slack-Signature")
		b.seenMu.Lock()
		dup := b.seen.Contains(key)
		if !dup {
			b.seen.Add(key, struct{}{})
		}
		b.seenMu.Unlock()
		if dup {
			return nil, "replayed request"
		}
		return ap, ""
	}
	return nil, why
}

// invalid refuses a request that is not a valid press from Slack.
func (b *Bot) invalid(w http.ResponseWriter, r *http.Request, status int, why string) {
	b.o.Metrics.SlackInteractions.WithLabelValues(resultInvalid).Inc()
	b.log.Warn("slack: interaction refused", "reason", why, "remote", r.RemoteAddr)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "error": "interaction refused: " + why})
}

// reply counts a press and tells the presser, in an ephemeral message in
// the message's channel, what became of it. It sends after the answer to
// Slack, which wants one within 3 seconds.
func (b *Bot) reply(ap *app, cb slack.InteractionCallback, result, text string) {
	b.o.Metrics.SlackInteractions.WithLabelValues(result).Inc()
	channel := cb.Channel.ID
	if channel == "" {
		channel = cb.Container.ChannelID
	}
	if channel == "" || cb.User.ID == "" {
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		if _, err := ap.client.PostEphemeralContext(ctx, channel, cb.User.ID, slack.MsgOptionText(text, false)); err != nil {
			b.log.Warn("slack: ephemeral reply failed", "notifier", ap.cfg.Name, "err", err)
		}
	}()
}
