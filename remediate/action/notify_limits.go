package action

import (
	"context"
	"errors"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/metrics"
)

// Every delivery is bounded by its notifier's own timeout, so that one hung
// relay or webhook fails its own deliveries, within that timeout, and
// holds up nothing else; each is counted in drguard_notifications_total.

// WithMetrics makes n count its deliveries in m; nil counts none. It
// returns n.
func (n *Notifiers) WithMetrics(m *metrics.Notifications) *Notifiers {
	n.metrics = m
	if m != nil {
		for _, nc := range n.cfg.Notifiers {
			m.Init(nc.Name)
		}
	}
	return n
}

// deliveryTimeout is how long one delivery through nc may take: its
// timeout, or the default for a notifier built without defaults.
func deliveryTimeout(nc config.Notifier) time.Duration {
	if nc.Timeout > 0 {
		return time.Duration(nc.Timeout)
	}
	return time.Duration(config.DefaultNotifierTimeout)
}

// count records one delivery's result; a delivery its caller cancelled
// (drguard is shutting down, the term ended) counts as neither.
func (n *Notifiers) count(ctx context.Context, name string, err error) {
	if n.metrics == nil || (err != nil && errors.Is(ctx.Err(), context.Canceled)) {
		return
	}
	result := metrics.NotificationSuccess
	if err != nil {
		result = metrics.NotificationFailure
	}
	n.metrics.Total.WithLabelValues(name, result).Inc()
}
