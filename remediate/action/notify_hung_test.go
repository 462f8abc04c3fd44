package action_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
	"github.com/fruitfulplanet/drguard/metrics"
	"github.com/fruitfulplanet/drguard/remediate"
	"github.com/fruitfulplanet/drguard/remediate/action"
)

// TestHungNotifierDelaysNoOther runs the status updater over two open
// incidents with two notifiers: first an SMTP relay that accepts
// connections and never answers, then a working status-page webhook. The
// webhook gets both updates at once, long before the relay's timeout; the
// relay's deliveries are counted as failed in drguard_notifications_total
// within its timeout, and the webhook's as successes.
func TestHungNotifierDelaysNoOther(t *testing.T) {
	const smtpTimeout = 4 * time.Second
	hung, sink := testharness.NewHangingServer(t), testharness.NewHTTPSink(t)
	minute := model.Duration(time.Minute)
	cfg := &config.Config{Notifiers: []config.Notifier{
		{Name: "mail", Type: config.NotifierEmail, Smarthost: hung.Addr, From: "drguard@fruitfulplanet.com",
			To: []string{"incidents@fruitfulplanet.com"}, StatusInterval: minute, RecoveryInterval: minute, Timeout: model.Duration(smtpTimeout)},
		{Name: "status-page", Type: config.NotifierWebhook, URL: config.Secret(sink.URL + "/status"),
			StatusInterval: minute, RecoveryInterval: minute, Timeout: model.Duration(10 * time.Second)},
	}}
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	began := time.Now().Add(-time.Hour)
	err = st.Update(func(tx *store.Tx) error {
		for _, svc := range []string{"shop", "billing"} {
			in := store.Incident{Key: svc, State: store.IncidentOpen, AlertStatus: "firing", FirstSeen: began, LastSeen: began, StartsAt: began,
				Labels: map[string]string{"alertname": "Down", "service": svc}}
			if err := tx.PutIncident(&in); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.NewNotifications(prometheus.NewRegistry())
	u, err := remediate.NewStatusUpdater(remediate.StatusUpdaterOptions{Store: st, Config: cfg, Tick: 50 * time.Millisecond,
		Notifiers: action.NewNotifiers(cfg, nil).WithMetrics(m), Logger: testharness.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := time.Now()
	go func() { done <- u.Run(ctx) }()
	defer func() { cancel(); <-done }()

	testharness.Eventually(t, time.Minute, "both webhook updates", func() bool { return len(sink.Requests("/status")) == 2 })
	took := time.Since(started)
	t.Logf("webhook updates delivered %s after the start (the hung relay's timeout is %s)", took, smtpTimeout)
	if took >= smtpTimeout/2 {
		t.Errorf("the webhook waited %s for its updates: the hung SMTP relay (timeout %s) held it up", took, smtpTimeout)
	}
	for _, r := range sink.Requests("/status") {
		if !strings.Contains(r.Body, "We are currently experiencing") {
			t.Errorf("webhook body: %s", r.Body)
		}
	}

	failed := m.Total.WithLabelValues("mail", metrics.NotificationFailure)
	testharness.Eventually(t, smtpTimeout+20*time.Second, "the hung relay's delivery counted as failed", func() bool {
		return testutil.ToFloat64(failed) >= 1
	})
	took = time.Since(started)
	t.Logf("first SMTP failure counted %s after the start", took)
	if took < smtpTimeout-time.Second {
		t.Errorf("the SMTP delivery failed after %s, before its timeout %s: the relay did not hang", took, smtpTimeout)
	}
	if hung.Accepted() == 0 {
		t.Error("the relay was never contacted")
	}
	if got := testutil.ToFloat64(m.Total.WithLabelValues("status-page", metrics.NotificationSuccess)); got != 2 {
		t.Errorf("webhook successes = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.Total.WithLabelValues("status-page", metrics.NotificationFailure)); got != 0 {
		t.Errorf("webhook failures = %v, want 0", got)
	}
}
