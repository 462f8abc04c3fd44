package server

import (
	"net/http"
	"strings"

	"github.com/fruitfulplanet/drguard/metrics"
)

// securityHeaders are set on every response. They matter for the HTML
// pages (the console, and /remediate for browsers): no script or style but
// drguard's own files, never inline, no framing (clickjacking), no Referer
// carrying an approval link's ID to another site, no MIME sniffing. On JSON
// and the metrics they cost nothing and do no harm.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
	"X-Frame-Options":        "DENY",
	"Referrer-Policy":        "no-referrer",
	"X-Content-Type-Options": "nosniff",
}

// withSecurityHeaders sets securityHeaders before h writes.
func withSecurityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range securityHeaders {
			w.Header().Set(k, v)
		}
		h.ServeHTTP(w, r)
	})
}

// withCrossOriginProtection refuses, with 403, every state-changing request
// (POST, PUT, PATCH, DELETE) that a browser marks as coming from another
// site: Sec-Fetch-Site cross-site or same-site, or, from browsers that do
// not send it, an Origin other than this host, including "null" (sandboxed
// frames, data: URLs). It runs before authentication, so no credential a
// browser attaches on its own (basic auth, cookies) makes such a request
// pass. Non-browser clients (Alertmanager, the CLI) send neither header and
// pass. It is net/http's CrossOriginProtection.
func (s *Server) withCrossOriginProtection(h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := s.mux.Handler(r)
		s.countFailure(endpointOf(pattern), metrics.AuthCrossOrigin)
		writeError(w, http.StatusForbidden, "cross-origin request refused")
	}))
	return cop.Handler(h)
}

// endpointOf is a route pattern without its method ("POST /api/v1/alerts"
// → "/api/v1/alerts"), the bounded endpoint label of drguard's metrics.
func endpointOf(pattern string) string {
	if _, path, ok := strings.Cut(pattern, " "); ok {
		return path
	}
	if pattern == "" {
		return "unmatched"
	}
	return pattern
}
