package app

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/console"
	"github.com/fruitfulplanet/drguard/internal/events"
	"github.com/fruitfulplanet/drguard/internal/server"
	"github.com/fruitfulplanet/drguard/internal/slackbot"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

// webParts are what drguard serves to people besides the JSON API: the
// console, the event stream its pages follow, and the Slack app.
type webParts struct {
	auth    *server.Authenticator
	feed    *events.Feed
	stream  *events.Stream
	console *console.Console
	// slack is nil when no notifier has a bot token.
	slack *slackbot.Bot
}

// newWeb builds the console, the event stream over the journal and the
// Slack app.
func newWeb(cfg *config.Config, st *store.Store, eng engineAPI, objectives *metrics.Objectives, reg prometheus.Registerer, log *slog.Logger) (*webParts, error) {
	m := metrics.NewConsole(reg)
	w := &webParts{auth: server.NewAuthenticator(cfg.Auth), feed: events.NewFeed(st, 0)}
	w.stream = events.NewStream(events.StreamOptions{Feed: w.feed, Logger: log.With("component", "events"), Clients: m.EventClients})
	con, err := console.New(console.Options{Config: cfg, Auth: w.auth, Engine: eng, Store: st, Recovery: objectives,
		Logger: log.With("component", "console")})
	if err != nil {
		return nil, err
	}
	w.console = con
	w.slack, err = slackbot.New(slackbot.Options{Config: cfg, Store: st, Engine: eng, Feed: w.feed, Metrics: m,
		Logger: log.With("component", "slack")})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// slackHandler is the handler of Slack's button presses, nil without a
// Slack app.
func (w *webParts) slackHandler() http.Handler {
	if w.slack == nil {
		return nil
	}
	return w.slack
}

// runSlack runs the Slack app until ctx ends.
func (w *webParts) runSlack(ctx context.Context) error {
	if w.slack == nil {
		<-ctx.Done()
		return nil
	}
	return w.slack.Run(ctx)
}
