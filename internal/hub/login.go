package hub

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"sync"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/throttle"
)

// ErrThrottled is the error of a login refused, without its password
// being checked, because of earlier failures; errors.As gives the
// *ThrottledError with the wait.
var ErrThrottled = errors.New("too many failed log-ins")

// ThrottledError says how long to wait before the next log-in attempt.
type ThrottledError struct{ Wait time.Duration }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed log-ins: try again in %d s", e.Seconds())
}

// Is makes errors.Is(err, ErrThrottled) true.
func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }

// Seconds is the wait in whole seconds, rounded up (for Retry-After).
func (e *ThrottledError) Seconds() int { return int(math.Ceil(e.Wait.Seconds())) }

func (c Config) newLoginGuard() *throttle.Guard {
	return throttle.NewGuard(throttle.GuardConfig{Failures: c.LoginFailures, MaxWait: c.LoginMaxWait,
		Forget: 6 * c.LoginMaxWait, Now: c.Clock})
}

// Login checks a user's password under the login throttle: after
// repeated failures for the account from the same address (or from the
// address, or for the account) it refuses the attempt with a
// *ThrottledError without checking the password. via names the door
// (web, api) for the logs and the audit. A successful log-in is audited;
// when the record cannot be written the log-in fails with ErrAudit.
func (h *Hub) Login(ctx context.Context, name, password, remoteAddr, via string) (User, error) {
	src := throttle.Source(remoteAddr)
	a, wait := h.logins.Begin(name, src)
	if a == nil {
		return User{}, &ThrottledError{Wait: wait}
	}
	u, err := h.store.Login(ctx, name, password)
	if locks := a.Done(err == nil); len(locks) > 0 {
		account := ""
		if h.store.HasUser(ctx, name) {
			// Names that are not accounts are left out: they may be
			// passwords typed in the wrong field.
			account = name
		}
		h.noteLockouts(via, account, src, locks)
	}
	if err != nil {
		return u, err
	}
	// A log-in that cannot be recorded is refused.
	if err := h.record("user:"+u.ID, "login", u.ID, map[string]any{"via": via, "remote": src}); err != nil {
		return User{}, err
	}
	return u, nil
}

// nodeLogin checks a node's NATS password under the node throttle (per
// node name and remote address); a refusal is logged, never with the
// password.
func (h *Hub) nodeLogin(id, password string, remote net.Addr) bool {
	src := ""
	if remote != nil {
		src = throttle.Source(remote.String())
	}
	a, wait := h.nodeLogins.Begin(id, src)
	if a == nil {
		// Not logged at warning level: refusals come as fast as an
		// attacker sends them; the lockout that began them was logged.
		h.log.Debug("NATS connection refused: too many failed attempts", "node", id, "remote", src, "wait_s", (&ThrottledError{wait}).Seconds())
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ok := h.store.CheckNodePassword(ctx, id, password)
	if locks := a.Done(ok); len(locks) > 0 {
		h.noteLockouts("nats", "node:"+id, src, locks)
	}
	if !ok {
		h.log.Warn("NATS connection refused", "node", id, "remote", src)
	}
	return ok
}

// lockoutLog bounds the logging and audit records of lockouts: at most
// lockoutsPerMinute a minute, the rest counted and recorded as one when
// the minute is over.
type lockoutLog struct {
	mu      sync.Mutex
	window  time.Time
	n       int
	dropped int
}

const lockoutsPerMinute = 20

// noteLockouts logs and audits the lockouts an attempt began; with none,
// it only records the count of those left out in a minute that is over
// (the hub calls it every second for that).
func (h *Hub) noteLockouts(via, account, src string, locks []throttle.Lockout) {
	now := h.cfg.Clock()
	l := &h.lockouts
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.window) >= time.Minute {
		if l.dropped > 0 {
			since := l.window.UTC().Format(time.RFC3339)
			h.log.Warn("more log-ins throttled", "lockouts", l.dropped, "since", since)
			h.note("anonymous", "login-throttled", "", map[string]any{"more_lockouts": l.dropped, "since": since})
		}
		l.window, l.n, l.dropped = now, 0, 0
	}
	for _, k := range locks {
		if l.n >= lockoutsPerMinute {
			l.dropped++
			continue
		}
		l.n++
		wait := (&ThrottledError{k.Wait}).Seconds()
		if account == "" {
			h.log.Warn("log-ins throttled", "via", via, "kind", k.Kind, "remote", src, "wait_s", wait)
		} else {
			h.log.Warn("log-ins throttled", "via", via, "kind", k.Kind, "account", account, "remote", src, "wait_s", wait)
		}
		h.note("anonymous", "login-throttled", account, map[string]any{"via": via, "kind": k.Kind, "remote": src, "wait_s": wait})
	}
}
