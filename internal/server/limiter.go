package server

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"

	"github.com/fruitfulplanet/drguard/metrics"
)

// Defaults of the per-source limit on failed authentication: a source may
// fail 10 times in a row, then once every 6 seconds (10 a minute).
const (
	DefaultAuthFailureBurst = 10
	DefaultAuthFailureEvery = 6 * time.Second
	// authSources bounds the sources remembered at once; the least
	// recently seen are forgotten first.
	authSources = 10000
)

// failureLimiter slows down sources that keep failing authentication. Each
// source (the client's IP address, as the connection shows it: headers
// such as X-Forwarded-For are not trusted) has a token bucket; each failed
// attempt takes a token. While a source's bucket is empty, every request
// from it that needs credentials is answered 429 before they are checked,
// so guessing gets no faster than the refill rate, while other sources are
// served as usual. Sources live in an LRU of bounded size, so memory does
// not grow with the number of addresses an attacker uses.
type failureLimiter struct {
	every   time.Duration
	burst   int
	sources *lru.Cache[string, *rate.Limiter]
}

func newFailureLimiter(burst int, every time.Duration) *failureLimiter {
	if burst <= 0 {
		burst = DefaultAuthFailureBurst
	}
	if every <= 0 {
		every = DefaultAuthFailureEvery
	}
	sources, _ := lru.New[string, *rate.Limiter](authSources) // only fails for a size ≤ 0
	return &failureLimiter{every: every, burst: burst, sources: sources}
}

// blocked reports whether src has no attempt left, and when it will.
func (l *failureLimiter) blocked(src string, now time.Time) (time.Duration, bool) {
	lim, ok := l.sources.Get(src)
	if !ok {
		return 0, false
	}
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0, false
	}
	return time.Duration((1 - tokens) * float64(l.every)), true
}

// fail takes one attempt from src.
func (l *failureLimiter) fail(src string, now time.Time) {
	lim := rate.NewLimiter(rate.Every(l.every), l.burst)
	if prev, ok, _ := l.sources.PeekOrAdd(src, lim); ok {
		lim = prev
	}
	lim.AllowN(now, 1)
}

// source is the client's IP address.
func source(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// failureLog writes the warnings about failed authentication: the first
// few, then at most one a minute, each saying how many were not logged.
type failureLog struct {
	sometimes  rate.Sometimes
	suppressed atomic.Int64
}

func newFailureLog() *failureLog {
	return &failureLog{sometimes: rate.Sometimes{First: 3, Interval: time.Minute}}
}

// admit answers 429 with Retry-After, and returns false, when the request's
// source has failed authentication too often.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) bool {
	wait, blocked := s.limiter.blocked(source(r), time.Now())
	if !blocked {
		return true
	}
	s.countFailure(endpointOf(r.Pattern), metrics.AuthRateLimited)
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	writeError(w, http.StatusTooManyRequests, "too many failed authentication attempts from this address; retry later")
	return false
}

// authFailed records a request whose credentials were missing or wrong:
// counted, logged (rate-limited, with the remote address and never what
// was sent), and charged to its source's limiter.
func (s *Server) authFailed(r *http.Request, who string) {
	reason := metrics.AuthInvalid
	if r.Header.Get("Authorization") == "" {
		reason = metrics.AuthMissing
	}
	s.failed(r, reason, who)
}

// failed records a refused credential for a reason: counted, logged and
// charged to the source's limiter, as authFailed does.
func (s *Server) failed(r *http.Request, reason, who string) {
	endpoint := endpointOf(r.Pattern)
	s.countFailure(endpoint, reason)
	src := source(r)
	s.limiter.fail(src, time.Now())
	logged := false
	s.failLog.sometimes.Do(func() {
		logged = true
		s.o.Logger.Warn("authentication failed", "endpoint", endpoint, "reason", reason, "expected", who,
			"remote", r.RemoteAddr, "not_logged_since_last", s.failLog.suppressed.Swap(0))
	})
	if !logged {
		s.failLog.suppressed.Add(1)
	}
}

// countFailure counts a refused request, when metrics are configured.
func (s *Server) countFailure(endpoint, reason string) {
	if s.o.AuthMetrics != nil {
		s.o.AuthMetrics.Failures.WithLabelValues(endpoint, reason).Inc()
	}
}
