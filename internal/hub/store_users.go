package hub

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/mosaic-imaging/mosaic/internal/sqldb"
)

// Roles of users.
const (
	RoleAdmin      = "admin"
	RoleResearcher = "researcher"
)

var userID = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{0,63}$`)

// passwords are hashed with Argon2id (RFC 9106's second recommended
// parameters, scaled to a hub's login rate).
func hashPassword(pw string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	h := argon2.IDKey([]byte(pw), salt, 2, 19*1024, 1, 32)
	return "argon2id$2$19456$1$" + base64.RawStdEncoding.EncodeToString(salt) + "$" + base64.RawStdEncoding.EncodeToString(h)
}

func checkPassword(stored, pw string) bool {
	p := strings.Split(stored, "$")
	if len(p) != 6 || p[0] != "argon2id" {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(p[4])
	want, err2 := base64.RawStdEncoding.DecodeString(p[5])
	if err1 != nil || err2 != nil {
		return false
	}
	var t, m, par uint32
	fmt.Sscan(p[1], &t)
	fmt.Sscan(p[2], &m)
	fmt.Sscan(p[3], &par)
	if t == 0 || m == 0 || par == 0 || t > 10 || m > 1<<20 || par > 16 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, uint8(par), uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// AddUser creates a user with a password (at least 12 characters).
func (s *store) AddUser(ctx context.Context, id, password, role string, rec record) error {
	if !userID.MatchString(id) {
		return fmt.Errorf("%w: user name %q: use lowercase letters, digits and . _ @ -", ErrInvalid, id)
	}
	if len(password) < 12 {
		return fmt.Errorf("%w: passwords have at least 12 characters", ErrInvalid)
	}
	if !validRole(role) {
		return fmt.Errorf("%w: role %q", ErrInvalid, role)
	}
	hash := hashPassword(password)
	return s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, `INSERT INTO users (id, password_hash, role, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			id, hash, role, s.now().UnixMilli())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: user %s", ErrExists, id)
		}
		return rec.run()
	})
}

// User is a hub account.
type User struct {
	ID   string `json:"id"`
	Role string `json:"role"`
}

// Login checks a password and returns the user. It does not throttle:
// the hub's doors call Hub.Login, which does.
func (s *store) Login(ctx context.Context, id, password string) (User, error) {
	var u User
	var hash string
	var disabled sql.NullInt64
	err := s.db.QueryRow(ctx, `SELECT id, role, password_hash, disabled_at FROM users WHERE id = ?`, id).Scan(&u.ID, &u.Role, &hash, &disabled)
	slots := loginSlots()
	slots <- struct{}{}
	defer func() { <-slots }()
	if err != nil {
		// Spend the same time on unknown users: one hash, as for a
		// known user with a wrong password.
		checkPassword(dummyHash(), password)
		return u, ErrAuth
	}
	if disabled.Valid || !checkPassword(hash, password) {
		return u, ErrAuth
	}
	return u, nil
}

// HasUser tells whether an account exists (disabled or not).
func (s *store) HasUser(ctx context.Context, id string) bool {
	var one int
	return s.db.QueryRow(ctx, `SELECT 1 FROM users WHERE id = ?`, id).Scan(&one) == nil
}

// dummyHash is checked against for unknown users. It is made on first
// use: an Argon2id hash takes 19 MiB and tens of milliseconds, which
// commands that never check a password (mosaic --version) should not pay.
var dummyHash = sync.OnceValue(func() string { return hashPassword("no such user") })

// loginSlots bounds the password checks running at once: each takes
// 19 MiB of memory, and the login routes are public.
var loginSlots = sync.OnceValue(func() chan struct{} { return make(chan struct{}, max(2, runtime.NumCPU())) })

func hashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func newSecret(prefix string) string {
	var b [24]byte
	rand.Read(b[:])
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// Session kinds.
const (
	KindSession = "session"
	KindToken   = "token"
)

// NewSession makes a browser session (kind session, expiring) or an API
// token (kind token, no expiry unless ttl > 0) for a user and returns
// its secret; only the secret's hash is stored.
func (s *store) NewSession(ctx context.Context, user, kind, name string, ttl time.Duration, rec record) (string, error) {
	prefix := "mhs_"
	if kind == KindToken {
		prefix = "mht_"
	}
	secret := newSecret(prefix)
	now := s.now()
	var exp any
	if ttl > 0 {
		exp = now.Add(ttl).UnixMilli()
	}
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO sessions (id_hash, user_id, kind, name, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
			hashSecret(secret), user, kind, name, now.UnixMilli(), exp); err != nil {
			return err
		}
		return rec.run()
	})
	if err != nil {
		return "", err
	}
	return secret, nil
}

// Authenticate resolves a session or token secret to its user.
func (s *store) Authenticate(ctx context.Context, secret string) (User, error) {
	var u User
	if len(secret) < 10 || len(secret) > 200 {
		return u, ErrAuth
	}
	var exp, disabled sql.NullInt64
	err := s.db.QueryRow(ctx, `SELECT u.id, u.role, s.expires_at, u.disabled_at FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?`,
		hashSecret(secret)).Scan(&u.ID, &u.Role, &exp, &disabled)
	if err != nil || disabled.Valid || (exp.Valid && s.now().UnixMilli() > exp.Int64) {
		return User{}, ErrAuth
	}
	return u, nil
}

// EndSession deletes a session (logout) or token.
func (s *store) EndSession(ctx context.Context, secret string) error {
	_, err := s.db.Exec(ctx, `DELETE FROM sessions WHERE id_hash = ?`, hashSecret(secret))
	return err
}

// CountQuery adds one query to a user's count for today and returns the
// new count.
func (s *store) CountQuery(ctx context.Context, user string) (int, error) {
	day := s.now().UTC().Format("2006-01-02")
	var n int
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO query_usage (user_id, day, queries) VALUES (?, ?, 0) ON CONFLICT (user_id, day) DO NOTHING`, user, day); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE query_usage SET queries = queries + 1 WHERE user_id = ? AND day = ?`, user, day); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT queries FROM query_usage WHERE user_id = ? AND day = ?`, user, day).Scan(&n)
	})
	return n, err
}

// NewUserToken creates an API token for an existing user.
func (s *store) NewUserToken(ctx context.Context, user, name string, rec record) (string, error) {
	var one int
	if err := s.db.QueryRow(ctx, `SELECT 1 FROM users WHERE id = ? AND disabled_at IS NULL`, user).Scan(&one); err != nil {
		return "", fmt.Errorf("%w: user %s", ErrNotFound, user)
	}
	return s.NewSession(ctx, user, KindToken, name, 0, rec)
}
