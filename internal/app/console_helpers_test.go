package app

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// consoleUser is a client of the console with its own cookies, as one
// browser is; it does not follow redirects, so tests see them.
type consoleUser struct {
	t      *testing.T
	base   string
	client *http.Client
}

func newConsoleUser(t *testing.T, base string) *consoleUser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &consoleUser{t: t, base: base, client: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// signIn signs in with token through the sign-in form and fails the test
// unless the console accepts it.
func signIn(t *testing.T, a *testApp, token string) *consoleUser {
	t.Helper()
	u := newConsoleUser(t, a.URL)
	if code, body, h := u.signIn(token); code != http.StatusSeeOther {
		t.Fatalf("sign in: %d %s %v", code, body, h)
	}
	return u
}

// signIn submits the sign-in form with token and returns the answer.
func (u *consoleUser) signIn(token string) (int, string, http.Header) {
	u.t.Helper()
	_, page, _ := u.get("/signin")
	return u.post("/signin", url.Values{"csrf": {csrfOf(page)}, "token": {token}, "next": {"/"}})
}

func (u *consoleUser) get(path string) (int, string, http.Header) {
	u.t.Helper()
	return u.do(http.MethodGet, path, nil)
}

func (u *consoleUser) post(path string, form url.Values) (int, string, http.Header) {
	u.t.Helper()
	return u.do(http.MethodPost, path, form)
}

func (u *consoleUser) do(method, path string, form url.Values) (int, string, http.Header) {
	u.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u.base+path, body)
	if err != nil {
		u.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := u.client.Do(req)
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// page GETs a console page that must answer 200 and returns it.
func (u *consoleUser) page(path string) string {
	u.t.Helper()
	code, body, h := u.get(path)
	if code != http.StatusOK {
		u.t.Fatalf("GET %s: %d %v %s", path, code, h, body)
	}
	return body
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfOf returns the CSRF token of the first form of a page.
func csrfOf(page string) string {
	if m := csrfRE.FindStringSubmatch(page); m != nil {
		return m[1]
	}
	return ""
}
