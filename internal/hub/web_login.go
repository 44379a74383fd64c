package hub

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Logging in and out of the web pages, with a session cookie.

type uiLoginData struct {
	Next, User, Error string
	// Provider is the OpenID provider's name ("" without one); Local
	// tells whether local accounts may log in with a password.
	Provider string
	Local    bool
}

// loginData fills in what every login page shows.
func (h *Hub) loginData(d uiLoginData) uiLoginData {
	if h.oidc.rp != nil {
		d.Provider = h.oidc.rp.Name()
	}
	d.Local = !h.cfg.NoLocalLogin
	return d
}

func (h *Hub) uiLoginForm(w http.ResponseWriter, r *http.Request) {
	h.uiRender(w, r, http.StatusOK, "login", uiPage{Title: "Log in", Active: "login", Body: h.loginData(uiLoginData{Next: uiLocalPath(r.URL.Query().Get("next"))})})
}

func (h *Hub) uiLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		h.uiRender(w, r, http.StatusBadRequest, "login", uiPage{Title: "Log in", Active: "login", Body: h.loginData(uiLoginData{Next: "/", Error: "The form could not be read."})})
		return
	}
	next := uiLocalPath(r.PostForm.Get("next"))
	if h.cfg.NoLocalLogin {
		h.uiRender(w, r, http.StatusForbidden, "login", uiPage{Title: "Log in", Active: "login",
			Body: h.loginData(uiLoginData{Next: next, Error: "This hub takes no passwords: log in with " + h.oidc.rp.Name() + "."})})
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("user"))
	u, err := h.Login(r.Context(), name, r.PostForm.Get("password"), r.RemoteAddr, "web")
	var te *ThrottledError
	if errors.As(err, &te) {
		w.Header().Set("Retry-After", strconv.Itoa(te.Seconds()))
		h.uiRender(w, r, http.StatusTooManyRequests, "login", uiPage{Title: "Log in", Active: "login",
			Body: h.loginData(uiLoginData{Next: next, User: name, Error: fmt.Sprintf(
				"Too many failed log-ins for this account or from your address. For your protection, log-ins are paused: try again in %s. Your password was not checked.",
				uiWait(te.Seconds()))})})
		return
	}
	if errors.Is(err, ErrAudit) {
		h.uiRender(w, r, http.StatusServiceUnavailable, "login", uiPage{Title: "Log in", Active: "login",
			Body: h.loginData(uiLoginData{Next: next, User: name, Error: "The hub cannot write its audit log, so it lets no one log in. Try again later; if it keeps failing, tell the hub's operator."})})
		return
	}
	if err != nil {
		h.uiRender(w, r, http.StatusUnauthorized, "login", uiPage{Title: "Log in", Active: "login",
			Body: h.loginData(uiLoginData{Next: next, User: name, Error: "Wrong user name or password."})})
		return
	}
	secret, err := h.store.NewSession(r.Context(), u.ID, KindSession, "web login", uiSessionTTL, nil)
	if err != nil {
		h.uiInternalError(w, r, "login", err)
		return
	}
	// A session the browser had before is ended, so that logging in always
	// starts a fresh one.
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		h.store.EndSession(r.Context(), c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: secret, Path: "/", MaxAge: int(uiSessionTTL / time.Second),
		Expires: time.Now().Add(uiSessionTTL), HttpOnly: true, Secure: h.uiSecure(r), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (h *Hub) uiLogout(w http.ResponseWriter, r *http.Request) {
	idToken := ""
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		var err error
		if idToken, err = h.endSession(r.Context(), c.Value); err != nil {
			h.log.Error("ending a session failed", "err", err)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, Expires: time.Unix(1, 0),
		HttpOnly: true, Secure: h.uiSecure(r), SameSite: http.SameSiteLaxMode})
	// A session of a provider's log-in ends at the provider too
	// (RP-initiated logout), which sends the browser back to the hub.
	if idToken != "" && h.oidc.rp != nil {
		// The page that posted the form lets forms lead only to the hub
		// (its CSP's form-action), so the browser is sent on by a page.
		if u := h.oidc.rp.LogoutURL(r.Context(), idToken, h.publicBase(r)+"/"); u != "" {
			h.uiRender(w, r, http.StatusOK, "logout", uiPage{Title: "Logged out", Body: uiLogoutData{Provider: h.oidc.rp.Name(), URL: u}})
			return
		}
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// uiSecure tells whether cookies must be sent over HTTPS only: when the
// request came over TLS, or the hub is published at an https URL (TLS
// ending at a proxy).
func (h *Hub) uiSecure(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(h.cfg.PublicURL, "https://")
}

// uiLocalPath keeps a redirect target only when it is a path on this
// hub; anything else (another site, a scheme-relative //host, a
// backslash some browsers read as a slash) becomes "/".
func uiLocalPath(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.ContainsRune(next, '\\') {
		return "/"
	}
	for _, c := range next {
		if c < 0x20 || c == 0x7f {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || strings.HasPrefix(u.Path, "//") {
		return "/"
	}
	if u.Path == "/login" {
		return "/"
	}
	return next
}

type uiLogoutData struct {
	Provider, URL string
}
