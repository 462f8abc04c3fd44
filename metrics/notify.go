package metrics

import "github.com/prometheus/client_golang/prometheus"

// Results of drguard_notifications_total.
const (
	NotificationSuccess = "success"
	NotificationFailure = "failure"
)

// Notifications holds the metrics of deliveries through notifiers.
type Notifications struct {
	// Total counts deliveries by notifier and result (success, failure).
	Total *prometheus.CounterVec
}

// NewNotifications registers the notification metrics with reg.
func NewNotifications(reg prometheus.Registerer) *Notifications {
	m := &Notifications{
		Total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "notifications_total",
			Help: "Deliveries through notifiers (notify steps, status updates, drill announcements), by notifier and result (success, failure; a delivery that outlives the notifier's timeout is a failure).",
		}, []string{"notifier", "result"}),
	}
	reg.MustRegister(m.Total)
	return m
}

// Init exports both results of each notifier at zero, so that rules see
// "no failures" rather than nothing.
func (m *Notifications) Init(notifiers ...string) {
	for _, n := range notifiers {
		m.Total.WithLabelValues(n, NotificationSuccess)
		m.Total.WithLabelValues(n, NotificationFailure)
	}
}
