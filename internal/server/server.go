// Package server is drguard's HTTP API: Alertmanager intake, approvals,
// incidents, the kill switch, the event stream, Slack's button presses,
// metrics, liveness and readiness; and the routes of the web console.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/metrics"
)

// Errors an Engine returns, mapped to HTTP status codes.
var (
	ErrNotFound  = errors.New("not found") // 404
	ErrConflict  = errors.New("conflict")  // 409
	ErrForbidden = errors.New("forbidden") // 403
	ErrBadInput  = errors.New("bad input") // 400
	// ErrUnavailable: this replica cannot do it now (it does not lead).
	ErrUnavailable = errors.New("unavailable") // 503
)

// Decision is a human's verdict on a gated step.
type Decision struct {
	Approve    bool
	Actor      string
	Identity   Identity
	Remote     string
	Comment    string
	ParamsHash string // optional: the parameters the approver saw
}

// Engine is what the API needs from the remediation engine.
type Engine interface {
	// Wake tells the engine that new alerts are in the outbox.
	Wake()
	Decide(ctx context.Context, approvalID string, d Decision) (store.Approval, error)
	SetPaused(ctx context.Context, paused bool, actor, remote string) error
	PendingApprovals() ([]store.Approval, error)
	Incidents() ([]store.Incident, error)
	Incident(id string) (store.Incident, []store.Run, error)
}

// Options configure a Server.
type Options struct {
	Store  *store.Store
	Engine Engine
	// Drills runs drills; nil answers 404 on the drill endpoints.
	Drills Drills
	// Postmortems writes post-mortems; nil answers 404.
	Postmortems Postmortems
	Auth        *Authenticator
	Gatherer    prometheus.Gatherer
	Intake      *metrics.Intake
	// AuthMetrics counts refused requests (nil = not counted).
	AuthMetrics  *metrics.Auth
	Logger       *slog.Logger
	MaxBodyBytes int64
	// Ready reports extra readiness conditions (nil = none).
	Ready func(context.Context) error
	// Role says, in /readyz, whether this replica leads (nil = not
	// shown). A follower is ready: it takes webhooks, serves the API and
	// records decisions.
	Role func() string
	// AuthFailureBurst and AuthFailureEvery limit failed authentication
	// per source: Burst failures in a row, then one per Every; beyond
	// that the source gets 429. Zero takes DefaultAuthFailureBurst and
	// DefaultAuthFailureEvery.
	AuthFailureBurst int
	AuthFailureEvery time.Duration
	// Console serves the web console's pages (nil: no console).
	Console Console
	// Events serves GET /api/v1/events (nil: not served).
	Events http.Handler
	// Slack serves POST /api/v1/slack/interactions (nil: not served).
	Slack http.Handler
}

// Server serves the HTTP API.
type Server struct {
	o       Options
	mux     *http.ServeMux
	handler http.Handler
	limiter *failureLimiter
	failLog *failureLog
	decoded webhookCache // recent webhook bodies, decoded
}

// New builds the handler tree: security headers on every response, then
// cross-origin protection, then the routes, each with its own credentials.
func New(o Options) *Server {
	s := &Server{o: o, mux: http.NewServeMux(), limiter: newFailureLimiter(o.AuthFailureBurst, o.AuthFailureEvery), failLog: newFailureLog()}
	s.handler = withSecurityHeaders(s.withCrossOriginProtection(s.mux))
	s.mux.HandleFunc("POST /api/v1/alerts", s.handleAlerts)
	s.mux.HandleFunc("GET /remediate", s.viewer(s.handleListApprovals))
	s.mux.HandleFunc("POST /remediate/{id}/approve", s.approver(s.handleDecide(true)))
	s.mux.HandleFunc("POST /remediate/{id}/reject", s.approver(s.handleDecide(false)))
	s.mux.HandleFunc("GET /api/v1/incidents", s.viewer(s.handleIncidents))
	s.mux.HandleFunc("GET /api/v1/incidents/{id}", s.viewer(s.handleIncident))
	s.mux.HandleFunc("POST /api/v1/pause", s.admin(s.handlePause(true)))
	s.mux.HandleFunc("POST /api/v1/resume", s.admin(s.handlePause(false)))
	s.drillRoutes()
	s.postmortemRoutes()
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(o.Logger.Handler(), slog.LevelError)}))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.handleReady)
	s.routeExtras()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"store": "ok", "config": "ok"}
	status := http.StatusOK
	if err := s.o.Store.Ping(ctx); err != nil {
		checks["store"] = err.Error()
		status = http.StatusServiceUnavailable
	}
	if s.o.Ready != nil {
		if err := s.o.Ready(ctx); err != nil {
			checks["config"] = err.Error()
			status = http.StatusServiceUnavailable
		}
	}
	if s.o.Role != nil {
		checks["role"] = s.o.Role()
	}
	writeJSON(w, status, checks)
}

type identityKey struct{}

func (s *Server) require(role string, want func(Identity) bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.admit(w, r) {
			return
		}
		id, ok := s.o.Auth.User(r)
		if !ok {
			s.authFailed(r, "a user")
			w.Header().Set("WWW-Authenticate", `Basic realm="drguard", charset="UTF-8"`)
			writeError(w, http.StatusUnauthorized, "missing or invalid credentials")
			return
		}
		if !want(id) {
			s.countFailure(endpointOf(r.Pattern), metrics.AuthForbidden)
			writeError(w, http.StatusForbidden, "user "+id.Name+" is not "+role)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	}
}

func (s *Server) viewer(h http.HandlerFunc) http.HandlerFunc {
	return s.require("a viewer", func(id Identity) bool { return id.Allows("viewer") }, h)
}

func (s *Server) approver(h http.HandlerFunc) http.HandlerFunc {
	return s.require("an approver", func(id Identity) bool { return id.Allows("approver") }, h)
}

func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return s.require("an admin", func(id Identity) bool { return id.Allows("admin") }, h)
}

func identity(r *http.Request) Identity {
	id, _ := r.Context().Value(identityKey{}).(Identity)
	return id
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"status": "error", "error": msg})
}

// statusOf maps engine errors to HTTP status codes.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrBadInput):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}
