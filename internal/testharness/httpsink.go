package testharness

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// HTTPSink is an HTTP test server that records every request it receives:
// the far end of a webhook notifier, a Slack incoming webhook, a status
// page.
type HTTPSink struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []SinkRequest
	// Status is what the sink answers (default 200).
	Status int
}

// SinkRequest is one recorded request.
type SinkRequest struct {
	Path, Authorization, Body string
}

// NewHTTPSink starts a recording HTTP server until the test ends.
func NewHTTPSink(t testing.TB) *HTTPSink {
	s := &HTTPSink{Status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, SinkRequest{Path: r.URL.Path, Authorization: r.Header.Get("Authorization"), Body: string(body)})
		status := s.Status
		s.mu.Unlock()
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(s.Close)
	return s
}

// Requests returns the requests to path so far ("" for every path).
func (s *HTTPSink) Requests(path string) []SinkRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SinkRequest
	for _, r := range s.reqs {
		if path == "" || r.Path == path {
			out = append(out, r)
		}
	}
	return out
}
