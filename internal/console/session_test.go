package console

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/server"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

var testUsers = []config.User{{Name: "bob", Role: config.RoleApprover, Token: "bob-token-0123456789"}}

// issue starts a session for bob and returns a request carrying its cookie.
func issue(t *testing.T, s *sessions, secure bool) *http.Request {
	t.Helper()
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if secure {
		r = httptest.NewRequest(http.MethodGet, "https://drguard/", nil)
	}
	if err := s.start(w, r, server.Identity{Name: "bob", Role: config.RoleApprover}); err != nil {
		t.Fatal(err)
	}
	for _, c := range w.Result().Cookies() {
		r.AddCookie(c)
	}
	return r
}

func TestSessionsEnd(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	clock := testharness.NewClock(time.Now())
	s := newSessions(key, time.Hour, testUsers, false, clock.Now)
	r := issue(t, s, false)
	if id, _, ok := s.user(r); !ok || id.Name != "bob" || id.Role != config.RoleApprover {
		t.Fatalf("fresh session: %v %v", id, ok)
	}
	clock.Advance(time.Hour)
	if _, _, ok := s.user(r); ok {
		t.Error("a session past its lifetime still signs in")
	}

	other := newSessions([]byte(strings.Repeat("x", 32)), time.Hour, testUsers, false, time.Now)
	if _, _, ok := other.user(issue(t, s, false)); ok {
		t.Error("a cookie signed with another key is accepted")
	}
	rotated := newSessions(key, time.Hour, []config.User{{Name: "bob", Role: config.RoleApprover, Token: "bob-new-token-0123456789"}}, false, time.Now)
	if _, _, ok := rotated.user(issue(t, newSessions(key, time.Hour, testUsers, false, time.Now), false)); ok {
		t.Error("a session outlives a change of the user's token")
	}
	gone := newSessions(key, time.Hour, nil, false, time.Now)
	if _, _, ok := gone.user(issue(t, newSessions(key, time.Hour, testUsers, false, time.Now), false)); ok {
		t.Error("a session outlives its user")
	}

	s = newSessions(key, time.Hour, testUsers, false, time.Now)
	r = issue(t, s, false)
	_, sess, _ := s.user(r)
	s.end(httptest.NewRecorder(), r, sess)
	if _, _, ok := s.user(r); ok {
		t.Error("a signed-out session still signs in")
	}
}

func TestSessionCookieUnderTLS(t *testing.T) {
	s := newSessions([]byte(strings.Repeat("k", 32)), time.Hour, testUsers, false, time.Now)
	r := issue(t, s, true)
	if _, err := r.Cookie("__Host-drguard_session"); err != nil {
		t.Fatalf("no __Host- cookie under TLS: %v", r.Cookies())
	}
	if _, _, ok := s.user(r); !ok {
		t.Error("the TLS session does not sign in")
	}
}

func TestCSRFTokens(t *testing.T) {
	s := newSessions([]byte(strings.Repeat("k", 32)), time.Hour, testUsers, false, time.Now)
	_, a, _ := s.user(issue(t, s, false))
	_, b, _ := s.user(issue(t, s, false))
	if s.csrf(a) == s.csrf(b) || s.csrf(a) == "" {
		t.Fatal("two sessions share a CSRF token")
	}
	post := func(token string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/pause", strings.NewReader(url.Values{"csrf": {token}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}
	if !s.checkCSRF(post(s.csrf(a)), a) || s.checkCSRF(post(s.csrf(b)), a) || s.checkCSRF(post(""), a) {
		t.Error("checkCSRF accepts another session's token or none, or refuses its own")
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/approvals?x=1": "/approvals?x=1", "": "/", "https://evil.example/": "/", "//evil.example/x": "/",
		"/\\evil.example": "/", "javascript:alert(1)": "/", "incidents": "/",
	} {
		if got := localPath(in, "/"); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}
