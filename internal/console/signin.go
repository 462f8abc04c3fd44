package console

import (
	"net/http"
	"strings"
)

// signinData is the sign-in form's.
type signinData struct {
	Next    string
	Message string
}

// handleSigninPage shows the sign-in form, or sends a signed-in user on.
func (c *Console) handleSigninPage(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.URL.Query().Get("next"), "/")
	if _, _, ok := c.sessions.user(r); ok {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	c.signinForm(w, r, http.StatusOK, next, "")
}

func (c *Console) signinForm(w http.ResponseWriter, r *http.Request, status int, next, msg string) {
	v := &view{Title: "Sign in", CSRF: c.sessions.signinToken(w, r), Now: c.now(), Data: signinData{Next: next, Message: msg}}
	c.render(w, status, "signin", v)
}

// handleSignin exchanges a user's API token for a session cookie. A wrong
// token is answered 401, which the server charges to the source's
// failed-authentication limiter like any refused credential.
func (c *Console) handleSignin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		c.signinForm(w, r, http.StatusBadRequest, "/", "The form could not be read; try again.")
		return
	}
	next := localPath(r.PostFormValue("next"), "/")
	if !c.sessions.checkSignin(r) {
		c.signinForm(w, r, http.StatusForbidden, next, "This sign-in form has expired or was not drguard's: try again.")
		return
	}
	id, ok := c.o.Auth.Token(strings.TrimSpace(r.PostFormValue("token")))
	if !ok {
		c.signinForm(w, r, http.StatusUnauthorized, next, "That token is not a drguard user's. Use the token drguard's configuration gives you (auth.users).")
		return
	}
	if err := c.sessions.start(w, r, id); err != nil {
		c.log.Error("console: starting a session failed", "user", id.Name, "err", err)
		c.signinForm(w, r, http.StatusInternalServerError, next, "The session could not be started.")
		return
	}
	c.log.Info("console: signed in", "user", id.Name, "role", id.Role, "remote", r.RemoteAddr)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// handleSignout ends the session.
func (c *Console) handleSignout(w http.ResponseWriter, r *http.Request, v *view, sess session) {
	c.sessions.end(w, r, sess)
	c.log.Info("console: signed out", "user", v.User.Name, "remote", r.RemoteAddr)
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}
