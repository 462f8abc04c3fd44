package server

import (
	"context"
	"net/http"

	"github.com/fruitfulplanet/drguard/metrics"
)

// Console is the web console (internal/console). The server routes its
// pages to it and asks it who a session cookie belongs to, for the event
// stream the console's pages follow.
type Console interface {
	http.Handler
	// User returns the signed-in user of r's session cookie.
	User(r *http.Request) (Identity, bool)
}

// routeExtras adds the routes of the console, the event stream and the
// Slack interactions, when configured.
func (s *Server) routeExtras() {
	o := s.o
	if o.Events != nil {
		s.mux.HandleFunc("GET /api/v1/events", s.viewerOrSession(o.Events.ServeHTTP))
	}
	if o.Slack != nil {
		// Slack signs its requests; the handler verifies the signature
		// and answers 401 when it is wrong, stale or replayed.
		s.mux.Handle("POST /api/v1/slack/interactions", s.charged(o.Slack, "a Slack signature"))
	}
	if o.Console != nil {
		// GET /, /incidents[/{id}[/live]], /approvals, /recoverability,
		// /signin, /static/…; POST /approvals/{id}/approve|reject,
		// /pause, /resume, /signout: see internal/console.
		s.mux.Handle("/", o.Console)
		// A wrong token at sign-in counts as a failed authentication.
		s.mux.Handle("POST /signin", s.charged(o.Console, "a user's token"))
	}
}

// charged serves h to sources that have not failed authentication too
// often, and charges a 401 answer of h to the request's source, as a
// refused credential.
func (s *Server) charged(h http.Handler, who string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.admit(w, r) {
			return
		}
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status == http.StatusUnauthorized {
			s.failed(r, metrics.AuthInvalid, who)
		}
	})
}

// viewerOrSession is viewer, which also accepts the console's session
// cookie. Only read-only routes take a cookie: a browser attaches it on
// its own, so a state-changing route would need the console's CSRF token.
func (s *Server) viewerOrSession(h http.HandlerFunc) http.HandlerFunc {
	byToken := s.viewer(h)
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" && s.o.Console != nil {
			if id, ok := s.o.Console.User(r); ok && id.Allows("viewer") {
				h(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
				return
			}
		}
		byToken(w, r)
	}
}

// statusRecorder remembers the status a handler answered.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
