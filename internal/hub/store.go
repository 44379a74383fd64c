package hub

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/sqldb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Errors callers test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrInvalid  = errors.New("invalid")
	ErrAuth     = errors.New("authentication failed")
)

// Store is the hub's relational state.
type Store struct {
	db  *sqldb.DB
	now func() time.Time
}

// OpenStore opens and migrates the hub's database.
func OpenStore(ctx context.Context, dsn string) (*Store, error) {
	db, err := sqldb.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, "hub", migrations, "migrations"); err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db, now: time.Now}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

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
func (s *Store) AddUser(ctx context.Context, id, password, role string) error {
	if !userID.MatchString(id) {
		return fmt.Errorf("%w: user name %q: use lowercase letters, digits and . _ @ -", ErrInvalid, id)
	}
	if len(password) < 12 {
		return fmt.Errorf("%w: passwords have at least 12 characters", ErrInvalid)
	}
	if role != RoleAdmin && role != RoleResearcher {
		return fmt.Errorf("%w: role %q", ErrInvalid, role)
	}
	res, err := s.db.Exec(ctx, `INSERT INTO users (id, password_hash, role, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		id, hashPassword(password), role, s.now().UnixMilli())
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: user %s", ErrExists, id)
	}
	return nil
}

// User is a hub account.
type User struct {
	ID   string `json:"id"`
	Role string `json:"role"`
}

// Login checks a password and returns the user. It does not throttle:
// the hub's doors call Hub.Login, which does.
func (s *Store) Login(ctx context.Context, id, password string) (User, error) {
	var u User
	var hash string
	var disabled sql.NullInt64
	err := s.db.QueryRow(ctx, `SELECT id, role, password_hash, disabled_at FROM users WHERE id = ?`, id).Scan(&u.ID, &u.Role, &hash, &disabled)
	loginSlots <- struct{}{}
	defer func() { <-loginSlots }()
	if err != nil {
		// Spend the same time on unknown users: one hash, as for a
		// known user with a wrong password.
		checkPassword(dummyHash, password)
		return u, ErrAuth
	}
	if disabled.Valid || !checkPassword(hash, password) {
		return u, ErrAuth
	}
	return u, nil
}

// HasUser tells whether an account exists (disabled or not).
func (s *Store) HasUser(ctx context.Context, id string) bool {
	var one int
	return s.db.QueryRow(ctx, `SELECT 1 FROM users WHERE id = ?`, id).Scan(&one) == nil
}

// dummyHash is checked against for unknown users.
var dummyHash = hashPassword("no such user")

// loginSlots bounds the password checks running at once: each takes
// 19 MiB of memory, and the login routes are public.
var loginSlots = make(chan struct{}, max(2, runtime.NumCPU()))

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
func (s *Store) NewSession(ctx context.Context, user, kind, name string, ttl time.Duration) (string, error) {
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
	_, err := s.db.Exec(ctx, `INSERT INTO sessions (id_hash, user_id, kind, name, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		hashSecret(secret), user, kind, name, now.UnixMilli(), exp)
	if err != nil {
		return "", err
	}
	return secret, nil
}

// Authenticate resolves a session or token secret to its user.
func (s *Store) Authenticate(ctx context.Context, secret string) (User, error) {
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
func (s *Store) EndSession(ctx context.Context, secret string) error {
	_, err := s.db.Exec(ctx, `DELETE FROM sessions WHERE id_hash = ?`, hashSecret(secret))
	return err
}

// CountQuery adds one query to a user's count for today and returns the
// new count.
func (s *Store) CountQuery(ctx context.Context, user string) (int, error) {
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

// Node is a registered node as the hub knows it.
type Node struct {
	ID        string     `json:"id"`
	Title     string     `json:"title"`
	Created   time.Time  `json:"created"`
	Enrolled  *time.Time `json:"enrolled,omitempty"`
	PublicKey string     `json:"-"`
	Version   string     `json:"version"`
	LastSeen  *time.Time `json:"last_seen,omitempty"`
	Removed   *time.Time `json:"removed,omitempty"`
}

// AddNode registers a node and returns a one-time enrolment token valid
// for ttl.
func (s *Store) AddNode(ctx context.Context, id, title string, ttl time.Duration) (string, error) {
	if !fed.ValidNodeID(id) {
		return "", fmt.Errorf("%w: node name %q: use lowercase letters, digits and dashes", ErrInvalid, id)
	}
	tok := newSecret("mhe_")
	now := s.now()
	res, err := s.db.Exec(ctx, `INSERT INTO nodes (id, title, created_at, enroll_hash, enroll_expires_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		id, title, now.UnixMilli(), hashSecret(tok), now.Add(ttl).UnixMilli())
	if err != nil {
		return "", err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return "", fmt.Errorf("%w: node %s", ErrExists, id)
	}
	return tok, nil
}

// Enroll consumes an enrolment token: it records the node's public key
// and a NATS password hash, and returns the node id. A token works once,
// before it expires, for a node not removed.
func (s *Store) Enroll(ctx context.Context, token, publicKey, natsPassword, version string) (string, error) {
	var id string
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		var exp sql.NullInt64
		var removed sql.NullInt64
		err := tx.QueryRow(ctx, `SELECT id, enroll_expires_at, removed_at FROM nodes WHERE enroll_hash = ?`, hashSecret(token)).Scan(&id, &exp, &removed)
		if err != nil || removed.Valid || !exp.Valid || s.now().UnixMilli() > exp.Int64 {
			return ErrAuth
		}
		// The token is consumed in the same statement that checks it, so
		// two concurrent enrolments with it cannot both succeed.
		res, err := tx.Exec(ctx, `UPDATE nodes SET enroll_hash = NULL, enroll_expires_at = NULL, enrolled_at = ?, public_key = ?, nats_hash = ?, version = ?
			WHERE id = ? AND enroll_hash = ?`,
			s.now().UnixMilli(), publicKey, hashSecret(natsPassword), version, id, hashSecret(token))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrAuth
		}
		return nil
	})
	return id, err
}

// CheckNodePassword verifies a node's NATS credentials: false for
// unknown, removed or not yet enrolled nodes.
func (s *Store) CheckNodePassword(ctx context.Context, id, password string) bool {
	var hash string
	var removed sql.NullInt64
	if err := s.db.QueryRow(ctx, `SELECT nats_hash, removed_at FROM nodes WHERE id = ?`, id).Scan(&hash, &removed); err != nil {
		return false
	}
	return !removed.Valid && hash != "" && subtle.ConstantTimeCompare([]byte(hash), []byte(hashSecret(password))) == 1
}

// RemoveNode marks a node removed: its credentials stop working at once.
func (s *Store) RemoveNode(ctx context.Context, id string) error {
	res, err := s.db.Exec(ctx, `UPDATE nodes SET removed_at = ?, nats_hash = '' WHERE id = ? AND removed_at IS NULL`, s.now().UnixMilli(), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: node %s (or already removed)", ErrNotFound, id)
	}
	_, err = s.db.Exec(ctx, `DELETE FROM catalogue WHERE node_id = ?`, id)
	return err
}

// SeenNode records a heartbeat.
func (s *Store) SeenNode(ctx context.Context, id, version string, at time.Time) error {
	_, err := s.db.Exec(ctx, `UPDATE nodes SET last_seen_at = ?, version = ? WHERE id = ? AND removed_at IS NULL`, at.UnixMilli(), version, id)
	return err
}

// Nodes lists the registered nodes.
func (s *Store) Nodes(ctx context.Context) ([]Node, error) {
	rows, err := s.db.Query(ctx, `SELECT id, title, created_at, enrolled_at, public_key, version, last_seen_at, removed_at FROM nodes ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Node
	for rows.Next() {
		var n Node
		var c int64
		var en, ls, rm sql.NullInt64
		if err := rows.Scan(&n.ID, &n.Title, &c, &en, &n.PublicKey, &n.Version, &ls, &rm); err != nil {
			return nil, err
		}
		n.Created = time.UnixMilli(c).UTC()
		n.Enrolled, n.LastSeen, n.Removed = msTime(en), msTime(ls), msTime(rm)
		out = append(out, n)
	}
	return out, rows.Err()
}

func msTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.UnixMilli(v.Int64).UTC()
	return &t
}

// PutCatalogue replaces a node's published datasets.
func (s *Store) PutCatalogue(ctx context.Context, c fed.Catalogue) error {
	return s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM catalogue WHERE node_id = ?`, c.Node); err != nil {
			return err
		}
		for _, d := range c.Datasets {
			b, _ := json.Marshal(d)
			if _, err := tx.Exec(ctx, `INSERT INTO catalogue (node_id, dataset_id, summary, published_at) VALUES (?, ?, ?, ?)`,
				c.Node, d.ID, string(b), s.now().UnixMilli()); err != nil {
				return err
			}
		}
		return nil
	})
}

// Entry is one dataset of the catalogue.
type Entry struct {
	Node      string             `json:"node"`
	NodeTitle string             `json:"node_title"`
	Dataset   fed.DatasetSummary `json:"dataset"`
	Published time.Time          `json:"published"`
}

// Catalogue lists every published dataset of nodes not removed.
func (s *Store) Catalogue(ctx context.Context) ([]Entry, error) {
	rows, err := s.db.Query(ctx, `SELECT c.node_id, n.title, c.summary, c.published_at FROM catalogue c JOIN nodes n ON n.id = c.node_id
		WHERE n.removed_at IS NULL ORDER BY c.node_id, c.dataset_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var sum string
		var p int64
		if err := rows.Scan(&e.Node, &e.NodeTitle, &sum, &p); err != nil {
			return nil, err
		}
		if json.Unmarshal([]byte(sum), &e.Dataset) != nil {
			continue
		}
		e.Published = time.UnixMilli(p).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// NewUserToken creates an API token for an existing user.
func (s *Store) NewUserToken(ctx context.Context, user, name string) (string, error) {
	var one int
	if err := s.db.QueryRow(ctx, `SELECT 1 FROM users WHERE id = ? AND disabled_at IS NULL`, user).Scan(&one); err != nil {
		return "", fmt.Errorf("%w: user %s", ErrNotFound, user)
	}
	return s.NewSession(ctx, user, KindToken, name, 0)
}
