// Package console is drguard's web console: server-rendered pages
// (html/template) and static files embedded in the binary, for the on-call
// engineer. It shows incidents with their timeline live, runs and steps,
// the pending approvals with everything needed to decide them, and per
// service the recovery objectives beside what is achievable now; approvers
// decide from it and admins pause remediation.
//
// Users sign in with their API token, which is exchanged for a session
// cookie (HttpOnly, SameSite=Strict, Secure under TLS, expiring); every
// form carries a CSRF token, and every POST is checked for it and for the
// user's role, whatever the page showed. The pages need no inline script
// or style, so they run under a Content-Security-Policy that forbids both.
package console

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fruitfulplanet/drguard/internal/config"
	"github.com/fruitfulplanet/drguard/internal/server"
	"github.com/fruitfulplanet/drguard/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Engine is what the console needs of the remediation engine.
type Engine interface {
	Decide(ctx context.Context, approvalID string, d server.Decision) (store.Approval, error)
	SetPaused(ctx context.Context, paused bool, actor, remote string) error
	PendingApprovals() ([]store.Approval, error)
	Incident(id string) (store.Incident, []store.Run, error)
}

// Recovery is where the recovery figures come from: the state that
// drguard_rpo_exposure_seconds and drguard_rto_estimate_seconds export
// (metrics.Objectives).
type Recovery interface {
	Exposure(service, source string) (time.Duration, bool)
	RTOEstimateOf(service string) (time.Duration, bool)
}

// Options configure a Console. Config, Auth, Engine and Store are required.
type Options struct {
	Config *config.Config
	// Auth checks the token a user signs in with.
	Auth   *server.Authenticator
	Engine Engine
	Store  *store.Store
	// Recovery gives exposures and estimates; nil shows none.
	Recovery Recovery
	Logger   *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Console serves the console's pages. It implements server.Console.
type Console struct {
	o        Options
	log      *slog.Logger
	now      func() time.Time
	mux      *http.ServeMux
	sessions *sessions
	pages    map[string]*template.Template
}

var _ server.Console = (*Console)(nil)

// New builds the console. The session key is server.session_key, or a
// random one drawn here when none is configured.
func New(o Options) (*Console, error) {
	if o.Config == nil || o.Auth == nil || o.Engine == nil || o.Store == nil {
		return nil, errors.New("console: config, auth, engine and store are required")
	}
	c := &Console{o: o, log: o.Logger, now: o.Now, mux: http.NewServeMux()}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	key := []byte(o.Config.Server.SessionKey.Reveal())
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
		c.log.Info("console: no server.session_key configured; sign-ins end when drguard restarts")
	}
	secure := strings.HasPrefix(o.Config.Server.ExternalURL, "https://")
	c.sessions = newSessions(key, time.Duration(o.Config.Server.SessionLifetime), o.Config.Auth.Users, secure, c.now)
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	c.pages = pages
	c.routes()
	return c, nil
}

// routes lists every page of the console.
func (c *Console) routes() {
	static, _ := fs.Sub(staticFS, "static")
	c.mux.Handle("GET /static/", http.StripPrefix("/static/", staticFiles(http.FileServerFS(static))))
	c.mux.HandleFunc("GET /signin", c.handleSigninPage)
	c.mux.HandleFunc("POST /signin", c.handleSignin)
	c.mux.HandleFunc("POST /signout", c.form(config.RoleViewer, c.handleSignout))
	c.mux.HandleFunc("GET /{$}", c.page(c.handleIncidents))
	c.mux.HandleFunc("GET /incidents", c.page(c.handleIncidents))
	c.mux.HandleFunc("GET /incidents/{id}", c.page(c.handleIncident))
	c.mux.HandleFunc("GET /incidents/{id}/live", c.page(c.handleIncidentLive))
	c.mux.HandleFunc("GET /approvals", c.page(c.handleApprovals))
	c.mux.HandleFunc("POST /approvals/{id}/approve", c.form(config.RoleApprover, c.handleDecide(true)))
	c.mux.HandleFunc("POST /approvals/{id}/reject", c.form(config.RoleApprover, c.handleDecide(false)))
	c.mux.HandleFunc("GET /recoverability", c.page(c.handleRecoverability))
	c.mux.HandleFunc("POST /pause", c.form(config.RoleAdmin, c.handlePause(true)))
	c.mux.HandleFunc("POST /resume", c.form(config.RoleAdmin, c.handlePause(false)))
	c.mux.HandleFunc("/", c.page(func(w http.ResponseWriter, r *http.Request, v *view) {
		c.fail(w, r, v, http.StatusNotFound, "There is no page at "+r.URL.Path+".")
	}))
}

// ServeHTTP serves the console's pages.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.mux.ServeHTTP(w, r) }

// User returns the signed-in user of r's session cookie.
func (c *Console) User(r *http.Request) (server.Identity, bool) {
	id, _, ok := c.sessions.user(r)
	return id, ok
}

// staticFiles marks the embedded files cacheable for an hour.
func staticFiles(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

// view is what every page shows: who is signed in, the kill switch, the
// count of pending approvals; Data is the page's own.
type view struct {
	Title    string
	Section  string
	User     server.Identity
	CSRF     string
	Settings store.Settings
	Pending  int
	Now      time.Time
	// Path is the page's own path and query, where forms come back to.
	Path string
	Data any
}

// Can reports whether the signed-in user's role includes role.
func (v *view) Can(role string) bool { return v.User.Allows(config.Role(role)) }

// page serves a GET page to a signed-in user; others are sent to sign in
// and come back.
func (c *Console) page(h func(http.ResponseWriter, *http.Request, *view)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, sess, ok := c.sessions.user(r)
		if !ok {
			http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h(w, r, c.newView(r, id, sess))
	}
}

// form serves a POST from a signed-in user with role at least min, whose
// form carries the session's CSRF token; anything else is refused before
// h runs.
func (c *Console) form(min config.Role, h func(http.ResponseWriter, *http.Request, *view, session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		id, sess, ok := c.sessions.user(r)
		if !ok {
			c.fail(w, r, &view{Title: "Signed out", Now: c.now()}, http.StatusUnauthorized, "You are not signed in (or your session ended): sign in and try again.")
			return
		}
		v := c.newView(r, id, sess)
		if err := r.ParseForm(); err != nil || !c.sessions.checkCSRF(r, sess) {
			c.fail(w, r, v, http.StatusForbidden, "This form is not one the console gave you (its CSRF token is missing or wrong): reload the page and try again.")
			return
		}
		if !id.Allows(min) {
			c.fail(w, r, v, http.StatusForbidden, "Your role ("+string(id.Role)+") may not do this: it needs "+string(min)+".")
			return
		}
		h(w, r, v, sess)
	}
}

// newView reads what every page shows.
func (c *Console) newView(r *http.Request, id server.Identity, sess session) *view {
	v := &view{User: id, CSRF: c.sessions.csrf(sess), Now: c.now(), Path: r.URL.RequestURI()}
	err := c.o.Store.View(func(tx *store.Tx) error {
		var err error
		v.Settings, err = tx.Settings()
		return err
	})
	if err != nil {
		c.log.Warn("console: reading the kill switch failed", "err", err)
	}
	if pending, err := c.o.Engine.PendingApprovals(); err == nil {
		v.Pending = len(pending)
	}
	return v
}

// render writes page name with status.
func (c *Console) render(w http.ResponseWriter, status int, name string, v *view) {
	t, ok := c.pages[name]
	if !ok {
		http.Error(w, "no page "+name, http.StatusInternalServerError)
		return
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", v); err != nil {
		c.log.Error("console: rendering a page failed", "page", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// fail shows an error page with status and what to do.
func (c *Console) fail(w http.ResponseWriter, _ *http.Request, v *view, status int, msg string) {
	v.Title = http.StatusText(status)
	v.Data = msg
	c.render(w, status, "error", v)
}

// localPath returns next when it is a path on this site, else fallback:
// a redirect never leads elsewhere.
func localPath(next, fallback string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return fallback
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" {
		return fallback
	}
	return next
}
