package hub

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/oidc"
	"github.com/mosaic-imaging/mosaic/internal/sqldb"
	"github.com/mosaic-imaging/mosaic/internal/throttle"
)

// The device authorization grant (RFC 8628) the hub serves for its own
// API tokens: `mosaic login` asks for a code, its user approves it on
// /device in a browser where they are logged in, and the CLI's polling
// gets a new API token. Device and user codes are stored hashed; each is
// used once.

const (
	deviceCodeTTL      = 10 * time.Minute
	deviceInterval     = 5 // seconds
	devicePendingLimit = 5 // pending codes per source address
)

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, oidc.TokenError{Code: code, Description: desc})
}

func (h *Hub) publicBase(r *http.Request) string {
	if h.cfg.PublicURL != "" {
		return strings.TrimRight(h.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// deviceAuthorization answers POST /oauth/device_authorization.
func (h *Hub) deviceAuthorization(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "send an application/x-www-form-urlencoded body")
		return
	}
	if r.PostForm.Get("client_id") != oidc.CLIClientID {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "the only client of this endpoint is "+oidc.CLIClientID)
		return
	}
	src := throttle.Source(r.RemoteAddr)
	now := h.cfg.Clock()
	device, user := oidc.NewDeviceCode(), oidc.NewUserCode()
	s := h.store
	err := s.db.InTx(r.Context(), func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(r.Context(), `DELETE FROM device_codes WHERE expires_at < ?`, now.Add(-time.Hour).UnixMilli()); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(r.Context(), `SELECT COUNT(*) FROM device_codes WHERE source = ? AND status = 'pending' AND expires_at > ?`, src, now.UnixMilli()).Scan(&n); err != nil {
			return err
		}
		if n >= devicePendingLimit {
			return errTooMany
		}
		_, err := tx.Exec(r.Context(), `INSERT INTO device_codes (device_hash, user_code_hash, client_id, source, created_at, expires_at, interval_s) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			hashSecret(device), hashSecret(user), oidc.CLIClientID, src, now.UnixMilli(), now.Add(deviceCodeTTL).UnixMilli(), deviceInterval)
		return err
	})
	if errors.Is(err, errTooMany) {
		w.Header().Set("Retry-After", "600")
		oauthError(w, http.StatusTooManyRequests, "slow_down", "too many codes waiting for approval from this address: use one of them, or wait 10 minutes")
		return
	}
	if err != nil {
		h.log.Error("device authorization failed", "err", err)
		oauthError(w, http.StatusInternalServerError, "server_error", "internal error")
		return
	}
	base := h.publicBase(r)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, oidc.DeviceAuthorization{DeviceCode: device, UserCode: user,
		VerificationURI: base + "/device", VerificationURIComplete: base + "/device?user_code=" + user,
		ExpiresIn: int(deviceCodeTTL / time.Second), Interval: deviceInterval})
}

var errTooMany = errors.New("too many")

// deviceToken answers the polling of POST /oauth/token (grant type
// device_code only).
func (h *Hub) deviceToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "send an application/x-www-form-urlencoded body")
		return
	}
	f := r.PostForm
	if f.Get("grant_type") != oidc.GrantDeviceCode {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "this endpoint serves the device grant only ("+oidc.GrantDeviceCode+")")
		return
	}
	if f.Get("client_id") != oidc.CLIClientID {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "the only client of this endpoint is "+oidc.CLIClientID)
		return
	}
	device := f.Get("device_code")
	if len(device) < 20 || len(device) > 100 {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown device code")
		return
	}
	ctx := r.Context()
	now := h.cfg.Clock()
	var code string // the OAuth error, or "" for a token
	var user string
	s := h.store
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		var status string
		var exp, interval int64
		var polled sql.NullInt64
		var uid sql.NullString
		err := tx.QueryRow(ctx, `SELECT status, expires_at, interval_s, polled_at, user_id FROM device_codes WHERE device_hash = ?`, hashSecret(device)).
			Scan(&status, &exp, &interval, &polled, &uid)
		if errors.Is(err, sql.ErrNoRows) {
			code = "invalid_grant"
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case status == "used":
			code = "invalid_grant"
			return nil
		case now.UnixMilli() > exp:
			code = "expired_token"
			return nil
		case status == "denied":
			code = "access_denied"
			_, err := tx.Exec(ctx, `UPDATE device_codes SET status = 'used' WHERE device_hash = ?`, hashSecret(device))
			return err
		case polled.Valid && now.UnixMilli()-polled.Int64 < interval*1000:
			// Polled faster than asked: RFC 8628 says wait 5 s longer
			// from now on.
			code = "slow_down"
			_, err := tx.Exec(ctx, `UPDATE device_codes SET interval_s = interval_s + 5, polled_at = ? WHERE device_hash = ?`, now.UnixMilli(), hashSecret(device))
			return err
		case status == "pending":
			code = "authorization_pending"
			_, err := tx.Exec(ctx, `UPDATE device_codes SET polled_at = ? WHERE device_hash = ?`, now.UnixMilli(), hashSecret(device))
			return err
		}
		res, err := tx.Exec(ctx, `UPDATE device_codes SET status = 'used', polled_at = ? WHERE device_hash = ? AND status = 'approved'`, now.UnixMilli(), hashSecret(device))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 || !uid.Valid {
			code = "invalid_grant"
			return nil
		}
		user = uid.String
		return nil
	})
	if err != nil {
		h.log.Error("device token failed", "err", err)
		oauthError(w, http.StatusInternalServerError, "server_error", "internal error")
		return
	}
	switch code {
	case "":
	case "authorization_pending":
		oauthError(w, http.StatusBadRequest, code, "waiting for the user to approve the code")
		return
	case "slow_down":
		oauthError(w, http.StatusBadRequest, code, "polled too fast: wait 5 s longer between requests")
		return
	case "access_denied":
		oauthError(w, http.StatusBadRequest, code, "the user denied the request")
		return
	case "expired_token":
		oauthError(w, http.StatusBadRequest, code, "the code expired: start again")
		return
	default:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown or used device code")
		return
	}
	name := "mosaic login " + now.UTC().Format("2006-01-02")
	tok, err := h.store.NewUserToken(ctx, user, name, h.recorder("user:"+user, "token-issued", user,
		map[string]any{"via": "device", "name": name, "remote": throttle.Source(r.RemoteAddr)}))
	if err != nil {
		if errors.Is(err, ErrAudit) {
			oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the hub cannot write its audit log, so it issues no token")
			return
		}
		if errors.Is(err, ErrNotFound) {
			oauthError(w, http.StatusBadRequest, "access_denied", "the account that approved is disabled")
			return
		}
		h.log.Error("device token failed", "err", err)
		oauthError(w, http.StatusInternalServerError, "server_error", "internal error")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer"})
}

// deviceRequest is a pending device code as its approval page shows it.
type deviceRequest struct {
	UserCode string
	Client   string
	Source   string
	Created  time.Time
}

// pendingDevice finds a pending, unexpired code by its user code.
func (h *Hub) pendingDevice(ctx context.Context, userCode string) (deviceRequest, bool, error) {
	var d deviceRequest
	var created int64
	err := h.store.db.QueryRow(ctx, `SELECT client_id, source, created_at FROM device_codes WHERE user_code_hash = ? AND status = 'pending' AND expires_at > ?`,
		hashSecret(userCode), h.cfg.Clock().UnixMilli()).Scan(&d.Client, &d.Source, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return d, false, nil
	}
	if err != nil {
		return d, false, err
	}
	d.UserCode, d.Created = userCode, time.UnixMilli(created)
	return d, true, nil
}

// decideDevice approves (for user) or denies a pending code; false when
// it is no longer pending. An approval is audited, and not made when the
// record cannot be written.
func (h *Hub) decideDevice(ctx context.Context, userCode, user string, approve bool) (bool, error) {
	status, action := "denied", "device-denied"
	if approve {
		status, action = "approved", "device-approved"
	}
	ok := false
	err := h.store.db.InTx(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE device_codes SET status = ?, user_id = ? WHERE user_code_hash = ? AND status = 'pending' AND expires_at > ?`,
			status, user, hashSecret(userCode), h.cfg.Clock().UnixMilli())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil
		}
		ok = true
		return h.record("user:"+user, action, user, map[string]any{"client": oidc.CLIClientID})
	})
	return ok, err
}

// revokeToken answers POST /oauth/revoke (RFC 7009): a hub API token or
// session presented there ends. As the RFC asks, an unknown token is no
// error.
func (h *Hub) revokeToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "send an application/x-www-form-urlencoded body")
		return
	}
	tok := r.PostForm.Get("token")
	if strings.HasPrefix(tok, "mht_") || strings.HasPrefix(tok, "mhs_") {
		if u, err := h.store.Authenticate(r.Context(), tok); err == nil {
			if _, err := h.endSession(r.Context(), tok); err != nil {
				oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "try again")
				return
			}
			h.note("user:"+u.ID, "token-revoked", u.ID, map[string]any{"via": "oauth-revoke"})
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func errorsIsAudit(err error) bool { return errors.Is(err, ErrAudit) }
