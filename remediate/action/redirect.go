package action

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// maxRedirects is how many redirects a request follows, as net/http's
// default policy.
const maxRedirects = 10

// secretHeaders are dropped from every request that a redirect sends to
// another origin, with the headers each caller adds (those read from
// header_files).
var secretHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie"}

// origin is a URL's scheme, host and port, the port made explicit.
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	return strings.ToLower(u.Scheme) + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// guardedClient returns a copy of c (sharing its transport) whose redirects
// keep secrets at their origin: a request redirected to another scheme,
// host or port goes without the secret headers, the Referer and secret,
// the names of the caller's own secret headers. When allow is not nil, a
// redirect to a URL it refuses is not followed. net/http alone drops
// Authorization and Cookie only when the host changes, not the port, and
// keeps every other header.
func guardedClient(c *http.Client, secret []string, allow func(*url.URL) error) *http.Client {
	g := *c
	next := c.CheckRedirect
	g.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		if allow != nil {
			if err := allow(req.URL); err != nil {
				return fmt.Errorf("redirect refused: %w", err)
			}
		}
		if origin(req.URL) != origin(via[0].URL) {
			// The Referer would carry the previous URL's path, which is
			// a credential for a Slack webhook.
			req.Header.Del("Referer")
			for _, h := range secretHeaders {
				req.Header.Del(h)
			}
			for _, h := range secret {
				req.Header.Del(h)
			}
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
	return &g
}

// errNotAllowed is what a step's error wraps when a rendered URL or
// program is outside its allow-list.
var errNotAllowed = errors.New("not allowed")

// allowedHost checks u against an allowed_hosts list: an entry host:port
// allows that host and port, an entry host that host on its scheme's
// default port. Host names compare case-insensitively.
func allowedHost(u *url.URL, allowed []string) error {
	want := origin(u)
	scheme := strings.ToLower(u.Scheme)
	for _, a := range allowed {
		a = strings.TrimSpace(a)
		if _, _, err := net.SplitHostPort(a); err != nil {
			a = strings.Trim(a, "[]")
			if scheme == "http" || scheme == "https" {
				a = net.JoinHostPort(a, map[string]string{"http": "80", "https": "443"}[scheme])
			}
		}
		if scheme+"://"+strings.ToLower(a) == want {
			return nil
		}
	}
	return fmt.Errorf("host %s is %w by allowed_hosts %v", u.Host, errNotAllowed, allowed)
}
