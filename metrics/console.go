package metrics

import "github.com/prometheus/client_golang/prometheus"

// Console holds the metrics of the event stream and the Slack app.
type Console struct {
	// EventClients is the number of open event streams
	// (GET /api/v1/events).
	EventClients prometheus.Gauge
	// SlackMessages counts approval messages posted to and updated in
	// Slack by notifier, operation (post, update) and result (success,
	// failure).
	SlackMessages *prometheus.CounterVec
	// SlackInteractions counts Slack button presses by result: decided,
	// refused (by drguard: unmapped user, four-eyes, already decided…),
	// invalid (bad signature, stale, replayed, malformed).
	SlackInteractions *prometheus.CounterVec
}

// NewConsole registers the console's metrics with reg (nil: unregistered).
func NewConsole(reg prometheus.Registerer) *Console {
	m := &Console{
		EventClients: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "event_stream_clients",
			Help: "Open server-sent event streams (GET /api/v1/events)."}),
		SlackMessages: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "slack_messages_total",
			Help: "Approval messages posted to or updated in Slack, by notifier, operation (post, update) and result."},
			[]string{"notifier", "operation", "result"}),
		SlackInteractions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "slack_interactions_total",
			Help: "Slack button presses by result: decided, refused, invalid."}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.EventClients, m.SlackMessages, m.SlackInteractions)
	}
	return m
}
