package metrics

import "github.com/prometheus/client_golang/prometheus"

// Reasons an API or webhook request failed authentication, as counted in
// drguard_auth_failures_total.
const (
	// AuthMissing is a request without credentials.
	AuthMissing = "missing"
	// AuthInvalid is a request whose credentials match no one.
	AuthInvalid = "invalid"
	// AuthForbidden is an authenticated user whose role is too low.
	AuthForbidden = "forbidden"
	// AuthRateLimited is a request refused with 429 because its source
	// failed authentication too often.
	AuthRateLimited = "rate_limited"
	// AuthCrossOrigin is a browser request from another site (or with
	// Origin: null) to a state-changing endpoint, refused with 403.
	AuthCrossOrigin = "cross_origin"
)

// Auth holds the metrics of failed authentication.
type Auth struct {
	// Failures counts refused requests by endpoint (the route pattern,
	// without the method) and reason.
	Failures *prometheus.CounterVec
}

// NewAuth registers the authentication metrics with reg.
func NewAuth(reg prometheus.Registerer) *Auth {
	m := &Auth{
		Failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "auth_failures_total",
			Help: "Requests refused for their credentials or origin, by endpoint and reason (missing, invalid, forbidden, rate_limited, cross_origin).",
		}, []string{"endpoint", "reason"}),
	}
	reg.MustRegister(m.Failures)
	return m
}
