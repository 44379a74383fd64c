package hub

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/oidc"
	"github.com/mosaic-imaging/mosaic/internal/sqldb"
	"github.com/mosaic-imaging/mosaic/internal/throttle"
)

// Log-in through an OpenID provider (docs/oidc.md): the routes of the
// authorization code flow, the mapping of a provider's identity to a hub
// user, sessions that keep the provider's refresh token and refresh it
// when the provider's access token expired, and provider JWTs as bearer
// tokens of scripts.

// oidcHub is the hub's OpenID Connect and device grant state.
type oidcHub struct {
	rp *oidc.Provider // nil without a provider
	// sealKey seals refresh tokens at rest; cookieKey signs the login
	// state cookie.
	sealKey, cookieKey []byte
	// refreshing serialises the refresh of one session (a provider that
	// rotates refresh tokens would refuse the second of two at once).
	refreshing sync.Map // session hash -> *sync.Mutex
	// codes throttles wrong user codes per user at /device.
	codes *throttle.Limiter
}

const (
	oidcStateCookie = "mosaic_oidc"
	oidcStateTTL    = 10 * time.Minute
	// oidcPasswordHash is the password hash of accounts from a provider:
	// it is no Argon2id hash, so no password matches it.
	oidcPasswordHash = "!oidc"
)

func (h *Hub) openOIDC() error {
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, h.key.Seed())
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	h.oidc = &oidcHub{sealKey: derive("mosaic oidc refresh tokens"), cookieKey: derive("mosaic oidc state cookie"),
		codes: throttle.New(throttle.Config{After: 5, Max: 10 * time.Minute, Now: h.cfg.Clock})}
	c := h.cfg.OIDC
	if c.Issuer == "" {
		if h.cfg.NoLocalLogin {
			return errors.New("hub: no_local_login needs an OpenID provider (oidc.issuer)")
		}
		return nil
	}
	if c.RedirectURL == "" {
		if h.cfg.PublicURL == "" {
			return errors.New("hub: OpenID Connect needs the hub's public URL (--public-url) for its callback")
		}
		c.RedirectURL = strings.TrimRight(h.cfg.PublicURL, "/") + "/oidc/callback"
	}
	rp, err := oidc.New(c)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	h.oidc.rp = rp
	return nil
}

// OIDCProvider is the hub's relying party, or nil without a provider.
func (h *Hub) OIDCProvider() *oidc.Provider { return h.oidc.rp }

func (h *Hub) oidcRoutes(route func(string, http.HandlerFunc)) {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.uiMessage(w, r, http.StatusForbidden, "Request refused",
			"This form was sent from another site. For your protection the hub only accepts forms sent from its own pages: go back to the hub and try again.")
	}))
	protect := func(fn http.HandlerFunc) http.HandlerFunc { return cop.Handler(fn).ServeHTTP }
	if h.oidc.rp != nil {
		// A link, not a form: the pages' CSP lets forms lead only to the
		// hub, and starting a log-in changes nothing at the hub.
		route("GET /oidc/login", h.oidcLogin)
		route("GET /oidc/callback", h.oidcCallback)
	}
	route("POST /oauth/device_authorization", h.deviceAuthorization)
	route("POST /oauth/token", h.deviceToken)
	route("POST /oauth/revoke", h.revokeToken)
	route("GET /device", h.uiDeviceForm)
	route("POST /device", protect(h.uiDevice))
}

// oidcState is the login state kept in a short-lived cookie between the
// redirect to the provider and the callback.
type oidcState struct {
	oidc.Start
	Next    string `json:"next"`
	Expires int64  `json:"exp"`
}

func (h *Hub) sealState(s oidcState) string {
	b, _ := json.Marshal(s)
	v := base64.RawURLEncoding.EncodeToString(b)
	m := hmac.New(sha256.New, h.oidc.cookieKey)
	m.Write([]byte(v))
	return v + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (h *Hub) openState(c string) (oidcState, bool) {
	var s oidcState
	v, sig, ok := strings.Cut(c, ".")
	if !ok || len(c) > 4096 {
		return s, false
	}
	m := hmac.New(sha256.New, h.oidc.cookieKey)
	m.Write([]byte(v))
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, m.Sum(nil)) {
		return s, false
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || json.Unmarshal(b, &s) != nil || h.cfg.Clock().Unix() > s.Expires || s.State == "" {
		return oidcState{}, false
	}
	return s, true
}

// oidcLogin sends the browser to the provider, with the login's state,
// nonce and PKCE verifier in a cookie for the callback.
func (h *Hub) oidcLogin(w http.ResponseWriter, r *http.Request) {
	st := oidcState{Start: oidc.NewStart(), Next: uiLocalPath(r.URL.Query().Get("next")), Expires: h.cfg.Clock().Add(oidcStateTTL).Unix()}
	u, err := h.oidc.rp.AuthURL(r.Context(), st.Start)
	if err != nil {
		h.log.Error("OpenID provider unreachable", "err", err)
		h.uiMessage(w, r, http.StatusBadGateway, "Log-in unavailable",
			"The hub cannot reach "+h.oidc.rp.Name()+" at the moment. Try again in a few minutes; if it keeps failing, tell the hub's operator.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: oidcStateCookie, Value: h.sealState(st), Path: "/oidc/", MaxAge: int(oidcStateTTL / time.Second),
		HttpOnly: true, Secure: h.uiSecure(r), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, u, http.StatusSeeOther)
}

// oidcCallback ends a login: the state must be the one in this
// browser's cookie (else the answer was started elsewhere: a login
// forged by another site), the code is exchanged with the PKCE verifier,
// the ID token verified with the nonce, and the claims mapped.
func (h *Hub) oidcCallback(w http.ResponseWriter, r *http.Request) {
	refuse := func(status int, text string) {
		h.uiRender(w, r, status, "message", uiPage{Title: "Log-in failed", Body: uiMessageData{Heading: "Log-in failed", Text: text, Link: "/login", LinkText: "Back to the log-in page"}})
	}
	clear := &http.Cookie{Name: oidcStateCookie, Value: "", Path: "/oidc/", MaxAge: -1, HttpOnly: true, Secure: h.uiSecure(r), SameSite: http.SameSiteLaxMode}
	q := r.URL.Query()
	c, err := r.Cookie(oidcStateCookie)
	if err != nil {
		refuse(http.StatusBadRequest, "This log-in was not started in this browser, or took longer than 10 minutes. Start again from the log-in page.")
		return
	}
	st, ok := h.openState(c.Value)
	if !ok || !hmac.Equal([]byte(q.Get("state")), []byte(st.State)) {
		h.note("anonymous", "oidc-login-refused", "", map[string]any{"reason": "state", "remote": throttle.Source(r.RemoteAddr)})
		refuse(http.StatusBadRequest, "This log-in answer does not belong to the log-in started in this browser. Start again from the log-in page.")
		return
	}
	http.SetCookie(w, clear)
	if e := q.Get("error"); e != "" {
		refuse(http.StatusUnauthorized, h.oidc.rp.Name()+" did not log you in ("+uiClip(e, 64)+"). Start again from the log-in page.")
		return
	}
	l, err := h.oidc.rp.Exchange(r.Context(), q.Get("code"), st.Start)
	if err != nil {
		h.log.Warn("OpenID log-in refused", "err", err)
		h.note("anonymous", "oidc-login-refused", "", map[string]any{"reason": "token", "remote": throttle.Source(r.RemoteAddr)})
		refuse(http.StatusUnauthorized, "The answer of "+h.oidc.rp.Name()+" could not be verified. Start again from the log-in page.")
		return
	}
	u, err := h.applyIdentity(r.Context(), l.Identity)
	if err != nil {
		h.oidcRefusal(w, r, err)
		return
	}
	if err := h.record("user:"+u.ID, "login", u.ID, map[string]any{"via": "oidc", "issuer": l.Issuer, "remote": throttle.Source(r.RemoteAddr)}); err != nil {
		refuse(http.StatusServiceUnavailable, "The hub cannot write its audit log, so it lets no one log in. Try again later; if it keeps failing, tell the hub's operator.")
		return
	}
	secret, err := h.newOIDCSession(r.Context(), u.ID, l)
	if err != nil {
		h.uiInternalError(w, r, "oidc callback", err)
		return
	}
	if old, err := r.Cookie(sessionCookie); err == nil && old.Value != "" {
		h.endSession(r.Context(), old.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: secret, Path: "/", MaxAge: int(uiSessionTTL / time.Second),
		Expires: time.Now().Add(uiSessionTTL), HttpOnly: true, Secure: h.uiSecure(r), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, st.Next, http.StatusSeeOther)
}

func (h *Hub) oidcRefusal(w http.ResponseWriter, r *http.Request, err error) {
	text := "The hub could not log you in. Try again later; if it keeps failing, tell the hub's operator."
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, oidc.ErrNoRole):
		status, text = http.StatusForbidden, "Your account at "+h.oidc.rp.Name()+" has no role at this hub (no entitlement or group the hub knows). Ask the hub's operator for access."
	case errors.Is(err, ErrExists):
		status, text = http.StatusForbidden, "A local account of this hub has your user name, so your account at "+h.oidc.rp.Name()+" cannot use it. Tell the hub's operator."
	case errors.Is(err, ErrAuth):
		status, text = http.StatusForbidden, "Your account at this hub is disabled."
	case errors.Is(err, ErrAudit):
		status, text = http.StatusServiceUnavailable, "The hub cannot write its audit log, so it lets no one log in. Try again later."
	default:
		h.log.Error("OpenID log-in failed", "err", err)
	}
	h.uiRender(w, r, status, "message", uiPage{Title: "Log-in failed", Body: uiMessageData{Heading: "Log-in failed", Text: text, Link: "/login", LinkText: "Back to the log-in page"}})
}

func uiClip(s string, n int) string {
	var b strings.Builder
	for _, c := range s {
		if b.Len() >= n {
			break
		}
		if c >= 0x20 && c < 0x7f {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// applyIdentity makes or updates the hub user of a provider's identity:
// role, e-mail, name and representations are the provider's, at every
// log-in, refresh and bearer token (a removed entitlement removes the
// role). An account of another origin (a local one, or another
// provider's) with the same id is refused with ErrExists; a disabled one
// with ErrAuth. Changes are audited, and not made when the record
// cannot be written.
func (h *Hub) applyIdentity(ctx context.Context, id oidc.Identity) (User, error) {
	email := id.Email
	if a, err := mail.ParseAddress(email); email != "" && (err != nil || a.Address != email) {
		email = ""
	}
	reps := make([]Representation, 0, len(id.Representations))
	for _, r := range id.Representations {
		reps = append(reps, Representation{Node: r.Node, Dataset: r.Dataset})
	}
	s := h.store
	u := User{ID: id.UserID, Role: id.Role}
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		var origin, role, oldEmail, oldName string
		var disabled sql.NullInt64
		err := tx.QueryRow(ctx, `SELECT origin, role, email, display_name, disabled_at FROM users WHERE id = ?`, id.UserID).Scan(&origin, &role, &oldEmail, &oldName, &disabled)
		created := false
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := tx.Exec(ctx, `INSERT INTO users (id, password_hash, role, created_at, email, display_name, origin) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				id.UserID, oidcPasswordHash, id.Role, s.now().UnixMilli(), email, id.Name, id.Issuer); err != nil {
				return err
			}
			created = true
		case err != nil:
			return err
		case origin != id.Issuer:
			return fmt.Errorf("%w: user %s is of another origin", ErrExists, id.UserID)
		case disabled.Valid:
			return ErrAuth
		}
		old, err := s.representationsTx(ctx, tx, id.UserID)
		if err != nil {
			return err
		}
		same := !created && role == id.Role && oldEmail == email && oldName == id.Name && sameReps(old, reps)
		if same {
			return nil
		}
		if !created {
			if _, err := tx.Exec(ctx, `UPDATE users SET role = ?, email = ?, display_name = ? WHERE id = ?`, id.Role, email, id.Name, id.UserID); err != nil {
				return err
			}
		}
		if !sameReps(old, reps) {
			if _, err := tx.Exec(ctx, `DELETE FROM representatives WHERE user_id = ?`, id.UserID); err != nil {
				return err
			}
			for _, r := range reps {
				if _, err := tx.Exec(ctx, `INSERT INTO representatives (user_id, node_id, dataset_id, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
					id.UserID, r.Node, r.Dataset, s.now().UnixMilli()); err != nil {
					return err
				}
			}
		}
		action := "oidc-user-updated"
		if created {
			action = "oidc-user-created"
		}
		return h.record("oidc:"+id.Issuer, action, id.UserID, map[string]any{"role": id.Role, "representations": reps})
	})
	return u, err
}

func sameReps(a, b []Representation) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[Representation]bool{}
	for _, r := range a {
		seen[r] = true
	}
	for _, r := range b {
		if !seen[r] {
			return false
		}
	}
	return true
}

func (s *store) representationsTx(ctx context.Context, tx *sqldb.Tx, user string) ([]Representation, error) {
	rows, err := tx.Query(ctx, `SELECT node_id, dataset_id FROM representatives WHERE user_id = ?`, user)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Representation
	for rows.Next() {
		var r Representation
		if err := rows.Scan(&r.Node, &r.Dataset); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// seal encrypts a refresh token for the database (AES-256-GCM with a
// key derived from the hub's signing key).
func (h *Hub) seal(plain string) string {
	if plain == "" {
		return ""
	}
	blk, _ := aes.NewCipher(h.oidc.sealKey)
	g, _ := cipher.NewGCM(blk)
	nonce := make([]byte, g.NonceSize())
	rand.Read(nonce)
	return base64.RawStdEncoding.EncodeToString(g.Seal(nonce, nonce, []byte(plain), nil))
}

func (h *Hub) unseal(sealed string) (string, bool) {
	b, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil || sealed == "" {
		return "", false
	}
	blk, _ := aes.NewCipher(h.oidc.sealKey)
	g, _ := cipher.NewGCM(blk)
	if len(b) < g.NonceSize() {
		return "", false
	}
	p, err := g.Open(nil, b[:g.NonceSize()], b[g.NonceSize():], nil)
	return string(p), err == nil
}

// newOIDCSession makes a browser session of a provider's log-in, with
// the provider's tokens beside it.
func (h *Hub) newOIDCSession(ctx context.Context, user string, l oidc.Login) (string, error) {
	s := h.store
	secret := newSecret("mhs_")
	now := s.now()
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO sessions (id_hash, user_id, kind, name, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
			hashSecret(secret), user, KindSession, "oidc login", now.UnixMilli(), now.Add(uiSessionTTL).UnixMilli()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO oidc_sessions (session_hash, user_id, subject, refresh_sealed, id_token, access_expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
			hashSecret(secret), user, l.Subject, h.seal(l.RefreshToken), l.IDToken, l.AccessExpiry.UnixMilli())
		return err
	})
	if err != nil {
		return "", err
	}
	return secret, nil
}

// endSession ends a browser session or token, and returns the
// provider's ID token when the session came from a provider's log-in
// (for its logout).
func (h *Hub) endSession(ctx context.Context, secret string) (idToken string, err error) {
	s := h.store
	err = s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		err := tx.QueryRow(ctx, `SELECT id_token FROM oidc_sessions WHERE session_hash = ?`, hashSecret(secret)).Scan(&idToken)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM oidc_sessions WHERE session_hash = ?`, hashSecret(secret)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM sessions WHERE id_hash = ?`, hashSecret(secret))
		return err
	})
	return idToken, err
}

// refreshIfDue refreshes a session of a provider's log-in whose
// provider access token expired: the new ID token's claims are mapped
// again (a role removed at the provider is removed here). When the
// provider refuses, the session ends.
func (h *Hub) refreshIfDue(ctx context.Context, secret string, u User) (User, error) {
	key := hashSecret(secret)
	var exp int64
	err := h.store.db.QueryRow(ctx, `SELECT access_expires_at FROM oidc_sessions WHERE session_hash = ?`, key).Scan(&exp)
	if errors.Is(err, sql.ErrNoRows) {
		return u, nil // a local log-in
	}
	if err != nil {
		return User{}, err
	}
	if h.cfg.Clock().UnixMilli() < exp {
		return u, nil
	}
	if h.oidc.rp == nil {
		h.endSession(ctx, secret)
		return User{}, ErrAuth
	}
	mu, _ := h.oidc.refreshing.LoadOrStore(key, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	defer h.oidc.refreshing.Delete(key)
	var subject, sealed string
	err = h.store.db.QueryRow(ctx, `SELECT subject, refresh_sealed, access_expires_at FROM oidc_sessions WHERE session_hash = ?`, key).Scan(&subject, &sealed, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrAuth // ended meanwhile
	}
	if err != nil {
		return User{}, err
	}
	if h.cfg.Clock().UnixMilli() < exp {
		return h.store.Authenticate(ctx, secret) // refreshed meanwhile
	}
	fail := func(reason string) (User, error) {
		h.endSession(ctx, secret)
		h.note("user:"+u.ID, "oidc-session-ended", u.ID, map[string]any{"reason": reason})
		return User{}, ErrAuth
	}
	rt, ok := h.unseal(sealed)
	if !ok {
		return fail("no refresh token")
	}
	l, err := h.oidc.rp.Refresh(ctx, rt, subject)
	if err != nil {
		h.log.Info("OpenID session refresh refused: session ended", "user", u.ID, "err", err)
		return fail("refresh refused")
	}
	if l.UserID != u.ID {
		return fail("another user")
	}
	nu, err := h.applyIdentity(ctx, l.Identity)
	if err != nil {
		return fail("mapping")
	}
	if _, err := h.store.db.Exec(ctx, `UPDATE oidc_sessions SET refresh_sealed = ?, id_token = ?, access_expires_at = ? WHERE session_hash = ?`,
		h.seal(l.RefreshToken), l.IDToken, l.AccessExpiry.UnixMilli(), key); err != nil {
		return User{}, err
	}
	return nu, nil
}

// bearerUser authenticates a provider's JWT presented by a script.
func (h *Hub) bearerUser(ctx context.Context, token string) (User, error) {
	if h.oidc.rp == nil {
		return User{}, fmt.Errorf("%w: this hub takes no OpenID provider's tokens: use a hub API token (mosaic login, or mosaic hub token create)", oidc.ErrToken)
	}
	id, err := h.oidc.rp.VerifyBearer(ctx, token)
	if err != nil {
		return User{}, err
	}
	return h.applyIdentity(ctx, id)
}
