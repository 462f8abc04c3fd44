package action_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/testharness"
	"github.com/fruitfulplanet/drguard/remediate"
	"github.com/fruitfulplanet/drguard/remediate/action"
)

// TestStatusUpdatesOnSchedule runs the engine and the status updater over
// one journal: a policy posts the initial Slack message, the updater then
// repeats status updates on each notifier's schedule while the incident is
// open, sends one resolution message when it resolves, and stops.
func TestStatusUpdatesOnSchedule(t *testing.T) {
	sink, mail := testharness.NewHTTPSink(t), action.NewSMTPServer(t)
	cfg := action.NotifyConfig(sink, mail)
	ms := func(n int) model.Duration { return model.Duration(time.Duration(n) * time.Millisecond) }
	slack, hook, email := &cfg.Notifiers[0], &cfg.Notifiers[1], &cfg.Notifiers[2]
	// Slack: the run succeeds at once, so the incident is in recovery and
	// the recovery interval applies.
	slack.StatusInterval, slack.RecoveryInterval = ms(100), ms(400)
	hook.StatusInterval, hook.RecoveryInterval = ms(150), ms(150)
	hook.Matchers = []string{`severity="critical"`}
	email.StatusInterval, email.RecoveryInterval = ms(100), ms(100)
	email.Matchers = []string{`severity="warning"`} // this incident is not for it
	cfg.Guardrails = config.Guardrails{DestructiveBudget: 3, DestructiveWindow: model.Duration(time.Hour),
		ApprovalExpiry: model.Duration(time.Hour), StepTimeout: model.Duration(10 * time.Second)}
	cfg.Policies = []config.Policy{{Name: "database-failure", Matchers: []string{`scenario="database_failure"`}, TargetLabel: "target",
		Steps: []config.Step{{Name: "announce", Action: "notify.slack", Params: map[string]any{"status": "Investigating"},
			Timeout: model.Duration(10 * time.Second), OnFailure: config.OnFailureContinue}}}}

	d := startDaemon(t, t.TempDir(), cfg)
	u, err := remediate.NewStatusUpdater(remediate.StatusUpdaterOptions{Store: d.store, Config: cfg, Tick: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	defer func() { cancel(); <-done }()

	labels := map[string]string{"alertname": "PostgresDown", "scenario": "database_failure", "service": "fruitfulplanet",
		"severity": "critical", "target": "postgres-primary"}
	d.fire(t, "db-down", labels)
	slackPath := "/services/T0/B0/SECRETPART"
	testharness.Eventually(t, 20*time.Second, "three webhook updates", func() bool { return len(sink.Requests("/status")) >= 3 })
	testharness.Eventually(t, 20*time.Second, "two slack updates after the announcement", func() bool { return len(sink.Requests(slackPath)) >= 3 })

	// The latest update: the first may go out, on a loaded machine, while
	// the announce step is still running (the webhook does not wait for
	// the Slack notifier).
	updates := sink.Requests("/status")
	var latest action.WebhookPayload
	if err := json.Unmarshal([]byte(updates[len(updates)-1].Body), &latest); err != nil {
		t.Fatal(err)
	}
	if latest.Subject != "Service Status Update" || latest.Resolved || !strings.Contains(latest.Text, "We are currently experiencing") ||
		!strings.Contains(latest.Text, "Current Status: Recovery actions completed") || !strings.Contains(latest.Text, "Expected Resolution: by ") {
		t.Errorf("status update = %+v", latest)
	}

	// Resolve: one resolution message to each notifier that was told.
	d.alert(t, detect.StatusResolved, "db-down", labels)
	resolvedBody := func(reqs []testharness.SinkRequest) int {
		n := 0
		for _, r := range reqs {
			if strings.Contains(r.Body, "has been resolved") {
				n++
			}
		}
		return n
	}
	testharness.Eventually(t, 20*time.Second, "resolution messages", func() bool {
		return resolvedBody(sink.Requests("/status")) == 1 && resolvedBody(sink.Requests(slackPath)) == 1
	})
	nHook, nSlack := len(sink.Requests("/status")), len(sink.Requests(slackPath))
	time.Sleep(600 * time.Millisecond) // several intervals: nothing more may come
	if len(sink.Requests("/status")) != nHook || len(sink.Requests(slackPath)) != nSlack {
		t.Errorf("updates continued after the resolution: webhook %d → %d, slack %d → %d",
			nHook, len(sink.Requests("/status")), nSlack, len(sink.Requests(slackPath)))
	}
	if n := len(mail.Messages()); n != 0 {
		t.Errorf("the email notifier's matchers exclude this incident, yet it got %d mails", n)
	}

	// The timeline records every delivery, with times that follow the
	// webhook's schedule.
	incs, err := d.eng.Incidents()
	if err != nil || len(incs) != 1 {
		t.Fatalf("incidents = %v, %v", incs, err)
	}
	var hookTimes []time.Time
	resolutions := 0
	for _, ev := range incs[0].Timeline {
		switch {
		case ev.Kind == remediate.EventStatusUpdate && strings.HasPrefix(ev.Message, "notifier status-page:"):
			hookTimes = append(hookTimes, ev.Time)
		case ev.Kind == remediate.EventResolutionNotice:
			resolutions++
		}
	}
	if len(hookTimes) < 3 || resolutions != 2 {
		t.Fatalf("timeline: %d webhook updates, %d resolution notices; want ≥3 and 2:\n%+v", len(hookTimes), resolutions, incs[0].Timeline)
	}
	for i := 1; i < len(hookTimes); i++ {
		if gap := hookTimes[i].Sub(hookTimes[i-1]); gap < 150*time.Millisecond {
			t.Errorf("webhook updates %d and %d only %s apart; the interval is 150ms", i-1, i, gap)
		}
	}
}

// TestStatusUpdaterRestartKeepsSchedule checks that a new updater over the
// same journal neither repeats an update that is not due nor forgets one
// that is.
func TestStatusUpdaterRestartKeepsSchedule(t *testing.T) {
	sink, mail := testharness.NewHTTPSink(t), action.NewSMTPServer(t)
	cfg := action.NotifyConfig(sink, mail)
	cfg.Notifiers = cfg.Notifiers[1:2] // the status page only
	cfg.Notifiers[0].StatusInterval = model.Duration(30 * time.Minute)
	cfg.Notifiers[0].RecoveryInterval = model.Duration(2 * time.Hour)
	cfg.Guardrails = config.Guardrails{DestructiveBudget: 3, DestructiveWindow: model.Duration(time.Hour),
		ApprovalExpiry: model.Duration(time.Hour), StepTimeout: model.Duration(10 * time.Second)}
	d := startDaemon(t, t.TempDir(), cfg)
	d.fire(t, "x", map[string]string{"alertname": "X", "service": "fruitfulplanet", "severity": "critical"})
	testharness.Eventually(t, 20*time.Second, "the incident", func() bool { incs, _ := d.eng.Incidents(); return len(incs) == 1 })
	incs, _ := d.eng.Incidents()
	clock := incs[0].FirstSeen
	now := func() time.Time { return clock }
	updater := func() *remediate.StatusUpdater {
		u, err := remediate.NewStatusUpdater(remediate.StatusUpdaterOptions{Store: d.store, Config: cfg, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	ctx := context.Background()
	if n := updater().Once(ctx); n != 0 {
		t.Fatalf("sent %d updates at the incident's start; the first is due after 30m", n)
	}
	clock = clock.Add(30 * time.Minute)
	if n := updater().Once(ctx); n != 1 {
		t.Fatalf("sent %d updates after 30m, want 1", n)
	}
	clock = clock.Add(29 * time.Minute)
	if n := updater().Once(ctx); n != 0 {
		t.Fatalf("a restarted updater sent %d updates 29m after the last one", n)
	}
	clock = clock.Add(time.Minute)
	if n := updater().Once(ctx); n != 1 {
		t.Fatalf("a restarted updater sent %d updates 30m after the last one, want 1", n)
	}
	if got := len(sink.Requests("/status")); got != 2 {
		t.Errorf("status page got %d updates, want 2", got)
	}
}
