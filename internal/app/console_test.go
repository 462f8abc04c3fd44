package app

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// TestConsoleSignIn: a user's token is exchanged for a session cookie
// (HttpOnly, SameSite=Strict, expiring) through a form with a CSRF token;
// a wrong token is refused and counted as a failed authentication, and
// repeated failures are slowed down like any; signing out ends the
// session for good.
func TestConsoleSignIn(t *testing.T) {
	a := startApp(t, noPolicies)
	anon := newConsoleUser(t, a.URL)
	if code, _, h := anon.get("/approvals"); code != http.StatusSeeOther || h.Get("Location") != "/signin?next=%2Fapprovals" {
		t.Fatalf("GET /approvals signed out: %d %v; want a redirect to sign in", code, h)
	}
	if code, body, _ := anon.signIn("not-a-token-of-anyone"); code != http.StatusUnauthorized || !strings.Contains(body, "not a drguard user") {
		t.Fatalf("wrong token: %d %s", code, body)
	}
	if got := metric(t, a.Registry, "drguard_auth_failures_total", "endpoint", "/signin", "reason", "invalid"); got != 1 {
		t.Errorf("auth_failures_total{endpoint=/signin,reason=invalid} = %v, want 1", got)
	}
	if code, _, _ := anon.post("/signin", url.Values{"token": {approverToken}}); code != http.StatusForbidden {
		t.Errorf("sign-in form without its CSRF token: %d, want 403", code)
	}

	u := newConsoleUser(t, a.URL)
	code, _, h := u.signIn(approverToken)
	if code != http.StatusSeeOther || h.Get("Location") != "/" {
		t.Fatalf("sign in: %d %v", code, h)
	}
	var cookie *http.Cookie
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == "drguard_session" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.MaxAge != 12*3600 || cookie.Path != "/" || cookie.Secure {
		t.Fatalf("session cookie %+v; want HttpOnly, SameSite=Strict, Max-Age 12h, Path /, not Secure over plain HTTP", cookie)
	}
	if strings.Contains(cookie.Value, "bob") || strings.Contains(cookie.Value, approverToken) {
		t.Error("the session cookie shows the user or the token")
	}
	page := u.page("/")
	if !strings.Contains(page, `<strong id="current-user">bob</strong> (<span id="current-role">approver</span>)`) {
		t.Errorf("the page does not show the user and role:\n%s", page)
	}

	// The cookie taken elsewhere stops working once its session signs out.
	stolen := newConsoleUser(t, a.URL)
	stolen.client.Jar.SetCookies(mustURL(t, a.URL), []*http.Cookie{{Name: cookie.Name, Value: cookie.Value}})
	stolen.page("/approvals")
	if code, _, h := u.post("/signout", url.Values{"csrf": {csrfOf(page)}}); code != http.StatusSeeOther || h.Get("Location") != "/signin" {
		t.Fatalf("sign out: %d %v", code, h)
	}
	for name, c := range map[string]*consoleUser{"signed out": u, "copied cookie": stolen} {
		if code, _, _ := c.get("/approvals"); code != http.StatusSeeOther {
			t.Errorf("%s: GET /approvals %d, want a redirect to sign in", name, code)
		}
	}
	// A tampered cookie is no session.
	forged := newConsoleUser(t, a.URL)
	forged.client.Jar.SetCookies(mustURL(t, a.URL), []*http.Cookie{{Name: cookie.Name, Value: cookie.Value[:len(cookie.Value)-4] + "AAAA"}})
	if code, _, _ := forged.get("/"); code != http.StatusSeeOther {
		t.Errorf("tampered cookie: %d, want a redirect to sign in", code)
	}

	// Guessing is slowed down as on the API: after the burst, 429.
	guesser := newConsoleUser(t, a.URL)
	codes := map[int]int{}
	for range 12 {
		code, _, _ := guesser.signIn("another-wrong-token-123")
		codes[code]++
	}
	if codes[http.StatusTooManyRequests] == 0 {
		t.Errorf("12 wrong tokens: %v; want 429 once the failed-login limiter's burst is spent", codes)
	}
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestConsolePostsNeedTokenAndRole: the server refuses a viewer's
// decision and an approver's form without the session's CSRF token, and
// nothing changes; with both, the decision counts and the kill switch is
// an admin's.
func TestConsolePostsNeedTokenAndRole(t *testing.T) {
	out := t.TempDir()
	a := startApp(t, countingPolicy(out, true))
	post(t, a, webhook("firing", time.Now().Add(-time.Minute).UTC(), dbDown("pg-c")))
	ap := pendingFor(t, a, "pg-c")

	viewer := signIn(t, a, viewerToken)
	vpage := viewer.page("/approvals")
	if strings.Contains(vpage, "/approve") || strings.Contains(vpage, "/reject") || strings.Contains(vpage, "Pause remediation") {
		t.Errorf("a viewer's approvals page offers decisions:\n%s", vpage)
	}
	bob := signIn(t, a, approverToken)
	bpage := bob.page("/approvals")
	if !strings.Contains(bpage, `action="/approvals/`+ap.ID+`/approve"`) || strings.Contains(bpage, "Pause remediation") {
		t.Errorf("an approver's page: no approve form, or a kill switch:\n%s", bpage)
	}
	form := func(csrf string) url.Values {
		return url.Values{"csrf": {csrf}, "paramsHash": {ap.ParamsHash}, "comment": {"ok"}}
	}
	refused := []struct {
		name string
		user *consoleUser
		path string
		form url.Values
		want string
	}{
		{"viewer with its own token", viewer, "/approvals/" + ap.ID + "/approve", form(csrfOf(vpage)), "may not do this"},
		{"approver without a token", bob, "/approvals/" + ap.ID + "/approve", form(""), "CSRF token"},
		{"approver with the viewer's token", bob, "/approvals/" + ap.ID + "/approve", form(csrfOf(vpage)), "CSRF token"},
		{"approver pausing", bob, "/pause", form(csrfOf(bpage)), "may not do this"},
	}
	for _, c := range refused {
		if code, body, _ := c.user.post(c.path, c.form); code != http.StatusForbidden || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d; want 403 saying %q:\n%s", c.name, code, c.want, body)
		}
	}
	if now := pendingFor(t, a, "pg-c"); len(now.Votes) != 0 || metric(t, a.Registry, "drguard_remediation_paused") != 0 {
		t.Fatalf("a refused POST changed something: votes %v", now.Votes)
	}
	code, _, h := bob.post("/approvals/"+ap.ID+"/approve", form(csrfOf(bpage)))
	if code != http.StatusSeeOther || h.Get("Location") != "/approvals?decided="+ap.ID {
		t.Fatalf("approve: %d %v", code, h)
	}
	if page := bob.page(h.Get("Location")); !strings.Contains(page, "it is now <strong>approved</strong>") {
		t.Errorf("after approving:\n%s", page)
	}
	testharness.Eventually(t, 10*time.Second, "the step ran", func() bool { return executions(t, out) == 1 })

	alice := signIn(t, a, adminToken)
	apage := alice.page("/incidents")
	if code, _, h := alice.post("/pause", url.Values{"csrf": {csrfOf(apage)}, "next": {"/incidents"}}); code != http.StatusSeeOther || h.Get("Location") != "/incidents" {
		t.Fatalf("pause: %d %v", code, h)
	}
	if metric(t, a.Registry, "drguard_remediation_paused") != 1 || !strings.Contains(alice.page("/incidents"), "Remediation is <strong>paused</strong> by alice") {
		t.Error("the admin's pause did not take, or the page does not say so")
	}
	if code, _, h := alice.post("/pause", url.Values{"csrf": {csrfOf(apage)}, "next": {"https://evil.example/"}}); code != http.StatusSeeOther || h.Get("Location") != "/" {
		t.Errorf("a next pointing elsewhere: %d %v; want a redirect home", code, h)
	}
}

// post sends a webhook that must be accepted.
func post(t *testing.T, a *testApp, body []byte) {
	t.Helper()
	if code, out := do(t, http.MethodPost, a.URL+"/api/v1/alerts", webhookToken, body); code != http.StatusOK {
		t.Fatalf("post alert: %d %s", code, out)
	}
}

// TestConsolePagesPassSmokeChecks: every page of the console, for each
// role, has labelled fields, headings in order, CSRF tokens on its POST
// forms and no inline script or style, and is served under a CSP that
// allows neither.
func TestConsolePagesPassSmokeChecks(t *testing.T) {
	out := t.TempDir()
	a := startApp(t, countingPolicy(out, true))
	post(t, a, webhook("firing", time.Now().Add(-time.Minute).UTC(), dbDown("pg-s")))
	ap := pendingFor(t, a, "pg-s")
	for _, tok := range []string{viewerToken, approverToken, adminToken} {
		u := signIn(t, a, tok)
		for _, path := range []string{"/", "/incidents?state=open", "/incidents/" + ap.IncidentID, "/approvals", "/recoverability", "/incidents/nope", "/no-such-page"} {
			_, page, h := u.get(path)
			if !strings.Contains(h.Get("Content-Type"), "text/html") {
				t.Errorf("%s: %s", path, h.Get("Content-Type"))
			}
			if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self';") || !strings.Contains(csp, "style-src 'self';") {
				t.Errorf("%s: CSP %q allows inline script or style", path, csp)
			}
			for _, p := range testharness.PageProblems(page) {
				t.Errorf("%s as %s: %s", path, tok, p)
			}
		}
	}
	anon := newConsoleUser(t, a.URL)
	_, page, _ := anon.get("/signin")
	for _, p := range testharness.PageProblems(page) {
		t.Errorf("/signin: %s", p)
	}
	for _, asset := range []string{"/static/console.css", "/static/console.js"} {
		if code, _, h := anon.get(asset); code != 200 || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d %v", asset, code, h)
		}
	}
}
