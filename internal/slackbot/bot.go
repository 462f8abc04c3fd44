// Package slackbot is drguard's Slack app: it posts every approval request
// to the channels of the Slack notifiers that have a bot token, with the
// step's facts and Approve and Reject buttons (Block Kit, through Slack's
// Web API), keeps each message showing where its approval stands, and
// turns verified button presses into decisions of the mapped drguard users.
package slackbot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/slack-go/slack"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/events"
	"github.com/fruitfulplanet/drguard/internal/server"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

// Engine is what the Slack app needs of the remediation engine.
type Engine interface {
	PendingApprovals() ([]store.Approval, error)
	Decide(ctx context.Context, approvalID string, d server.Decision) (store.Approval, error)
}

// Options configure a Bot. Config, Store and Engine are required.
type Options struct {
	Config *config.Config
	Store  *store.Store
	Engine Engine
	// Feed wakes the Bot when the journal changes; nil leaves it to Tick.
	Feed    *events.Feed
	Logger  *slog.Logger
	Metrics *metrics.Console
	// HTTPClient calls Slack; nil means one with timeouts.
	HTTPClient *http.Client
	// Tick is how often the Bot reconciles without being woken (30s).
	Tick time.Duration
}

// callTimeout bounds one call to Slack's Web API.
const callTimeout = 15 * time.Second

// app is one Slack notifier with a bot token.
type app struct {
	cfg      config.Notifier
	client   *slack.Client
	matchers labels.Matchers
	// pausedUntil defers calls after Slack rate-limited or failed them.
	pausedUntil time.Time
}

// Bot posts and updates approval messages and serves button presses.
type Bot struct {
	o    Options
	log  *slog.Logger
	apps []*app
	// users maps Slack member IDs to drguard users.
	users map[string]config.User
	// seen remembers the signatures of accepted requests, to refuse a
	// replay while its timestamp is still fresh.
	seen   *expirable.LRU[string, struct{}]
	seenMu sync.Mutex
	wake   chan struct{}
	mu     sync.Mutex // serialises reconciliation
	wg     sync.WaitGroup
}

// replayWindow is how long a signature is remembered: past it, Slack's
// timestamp check refuses the request anyway.
const replayWindow = 10 * time.Minute

// New builds the Bot; it returns nil, nil when no notifier has a bot token.
func New(o Options) (*Bot, error) {
	if o.Config == nil || o.Store == nil || o.Engine == nil {
		return nil, errors.New("slackbot: config, store and engine are required")
	}
	b := &Bot{o: o, log: o.Logger, users: map[string]config.User{}, wake: make(chan struct{}, 1),
		seen: expirable.NewLRU[string, struct{}](100000, nil, replayWindow)}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.o.Tick <= 0 {
		b.o.Tick = 30 * time.Second
	}
	if b.o.Metrics == nil {
		b.o.Metrics = metrics.NewConsole(nil)
	}
	client := o.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: callTimeout}
	}
	for _, n := range o.Config.Notifiers {
		if !n.SlackApp() {
			continue
		}
		a := &app{cfg: n}
		for _, m := range n.Matchers {
			pm, err := labels.ParseMatcher(m)
			if err != nil {
				return nil, fmt.Errorf("notifier %s: matcher %q: %w", n.Name, m, err)
			}
			a.matchers = append(a.matchers, pm)
		}
		api := n.APIURL
		if !strings.HasSuffix(api, "/") {
			api += "/"
		}
		a.client = slack.New(n.BotToken.Reveal(), slack.OptionAPIURL(api), slack.OptionHTTPClient(client))
		b.apps = append(b.apps, a)
	}
	if len(b.apps) == 0 {
		return nil, nil
	}
	for _, u := range o.Config.Auth.Users {
		if u.SlackUserID != "" {
			b.users[u.SlackUserID] = u
		}
	}
	return b, nil
}

// Wake asks for a reconciliation now. It never blocks.
func (b *Bot) Wake() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Run reconciles the messages with the approvals every Tick and whenever
// the journal changes, until ctx ends; it then waits for replies in
// flight and returns nil.
func (b *Bot) Run(ctx context.Context) error {
	var changed <-chan struct{}
	if b.o.Feed != nil {
		ch, cancel := b.o.Feed.Subscribe()
		defer cancel()
		changed = ch
	}
	t := time.NewTicker(b.o.Tick)
	defer t.Stop()
	defer b.wg.Wait()
	for {
		b.Reconcile(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-changed:
		case <-b.wake:
		}
	}
}

// Reconcile posts a message for every pending approval that has none in a
// channel whose notifier selects its incident, and updates every message
// whose approval changed since; a message that shows a final state is
// forgotten. A failed call is retried on a later pass. A crash between a
// post and its record may post a message twice; none is lost.
func (b *Bot) Reconcile(ctx context.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	pending, err := b.o.Engine.PendingApprovals()
	if err != nil {
		b.log.Warn("slack: reading pending approvals failed; will retry", "err", err)
		return
	}
	for _, a := range pending {
		for _, ap := range b.apps {
			if ctx.Err() != nil {
				return
			}
			b.postIfNew(ctx, ap, a)
		}
	}
	var msgs []store.ChatMessage
	if err := b.o.Store.View(func(tx *store.Tx) error {
		return tx.ForEachChatMessage(func(m store.ChatMessage) error { msgs = append(msgs, m); return nil })
	}); err != nil {
		b.log.Warn("slack: reading posted messages failed; will retry", "err", err)
		return
	}
	for _, m := range msgs {
		if ctx.Err() != nil {
			return
		}
		b.refresh(ctx, m)
	}
}

// postIfNew posts a's message through ap unless it has been posted.
func (b *Bot) postIfNew(ctx context.Context, ap *app, a store.Approval) {
	var inc store.Incident
	posted := false
	err := b.o.Store.View(func(tx *store.Tx) error {
		if _, err := tx.ChatMessage(a.ID, ap.cfg.Name); err == nil {
			posted = true
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		var err error
		inc, err = tx.Incident(a.IncidentID)
		return err
	})
	if err != nil || posted || !ap.selects(inc) || time.Now().Before(ap.pausedUntil) {
		return
	}
	text, blocks := messageFor(a, b.link())
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	channel, ts, err := ap.client.PostMessageContext(cctx, ap.cfg.Channel, slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...))
	cancel()
	if err != nil {
		b.callFailed(ap, "post", a.ID, err)
		return
	}
	b.o.Metrics.SlackMessages.WithLabelValues(ap.cfg.Name, "post", "success").Inc()
	m := store.ChatMessage{ApprovalID: a.ID, Notifier: ap.cfg.Name, Channel: channel, TS: ts, Shown: shown(a), PostedAt: time.Now().UTC()}
	if err := b.o.Store.Update(func(tx *store.Tx) error { return tx.PutChatMessage(m) }); err != nil {
		b.log.Error("slack: message posted but not journaled; it may be posted again", "approval", a.ID, "notifier", ap.cfg.Name, "err", err)
		return
	}
	b.log.Info("slack: approval request posted", "approval", a.ID, "notifier", ap.cfg.Name, "channel", channel)
}

// refresh updates message m when its approval changed, and forgets it
// once it shows a final state.
func (b *Bot) refresh(ctx context.Context, m store.ChatMessage) {
	ap := b.appNamed(m.Notifier)
	var a store.Approval
	err := b.o.Store.View(func(tx *store.Tx) error {
		var err error
		a, err = tx.Approval(m.ApprovalID)
		return err
	})
	if err != nil || ap == nil {
		if ap == nil || errors.Is(err, store.ErrNotFound) {
			// The notifier is gone from the configuration, or the
			// approval from the journal: nothing will update it.
			_ = b.o.Store.Update(func(tx *store.Tx) error { return tx.DeleteChatMessage(m.ApprovalID, m.Notifier) })
		}
		return
	}
	if shown(a) == m.Shown || time.Now().Before(ap.pausedUntil) {
		return
	}
	text, blocks := messageFor(a, b.link())
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	_, _, _, err = ap.client.UpdateMessageContext(cctx, m.Channel, m.TS, slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...))
	cancel()
	if err != nil {
		b.callFailed(ap, "update", a.ID, err)
		return
	}
	b.o.Metrics.SlackMessages.WithLabelValues(ap.cfg.Name, "update", "success").Inc()
	m.Shown = shown(a)
	err = b.o.Store.Update(func(tx *store.Tx) error {
		if a.State != store.ApprovalPending {
			return tx.DeleteChatMessage(m.ApprovalID, m.Notifier)
		}
		return tx.PutChatMessage(m)
	})
	if err != nil {
		b.log.Warn("slack: message updated but not journaled; it may be updated again", "approval", a.ID, "err", err)
	}
}

// callFailed counts and logs a failed call to Slack and defers the app's
// next calls: by Slack's Retry-After when it rate-limited, else 10s.
func (b *Bot) callFailed(ap *app, op, approval string, err error) {
	b.o.Metrics.SlackMessages.WithLabelValues(ap.cfg.Name, op, "failure").Inc()
	wait := 10 * time.Second
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		wait = max(rl.RetryAfter, time.Second)
	}
	ap.pausedUntil = time.Now().Add(wait)
	b.log.Warn("slack: call failed; will retry", "op", op, "approval", approval, "notifier", ap.cfg.Name, "retry_in", wait, "err", err)
}

func (b *Bot) appNamed(name string) *app {
	for _, ap := range b.apps {
		if ap.cfg.Name == name {
			return ap
		}
	}
	return nil
}

// link is the console's address, "" when server.external_url is unset.
func (b *Bot) link() string { return strings.TrimRight(b.o.Config.Server.ExternalURL, "/") }

// selects reports whether the app's matchers select the incident.
func (ap *app) selects(in store.Incident) bool {
	for _, m := range ap.matchers {
		if !m.Matches(in.Labels[m.Name]) {
			return false
		}
	}
	return true
}
