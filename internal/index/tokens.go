package index

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/sqldb"
)

type sqldbTx = sqldb.Tx

// Token is a node-local admin token as listed (never its secret).
type Token struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	Created  time.Time  `json:"created"`
	LastUsed *time.Time `json:"last_used,omitempty"`
	Revoked  *time.Time `json:"revoked,omitempty"`
}

// tokenPrefix marks Mosaic node tokens so secret scanners recognise them.
const tokenPrefix = "mnt_"

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func hashToken(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// CreateToken makes a new admin token and returns its secret, shown once:
// only its SHA-256 is stored.
func (s *Store) CreateToken(ctx context.Context, name string) (secret string, t Token, err error) {
	var raw [20]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", t, err
	}
	var idb [5]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return "", t, err
	}
	t = Token{ID: strings.ToLower(b32.EncodeToString(idb[:])), Name: name, Created: s.now().UTC().Truncate(time.Millisecond)}
	secret = tokenPrefix + t.ID + "_" + strings.ToLower(b32.EncodeToString(raw[:]))
	_, err = s.db.Exec(ctx, `INSERT INTO tokens (id, hash, name, created_at) VALUES (?, ?, ?, ?)`, t.ID, hashToken(secret), name, t.Created.UnixMilli())
	return secret, t, err
}

// ErrBadToken is returned for a token that is malformed, unknown or
// revoked; the three are not told apart to the caller.
var ErrBadToken = errors.New("invalid or revoked token")

// CheckToken verifies a presented token secret and returns its id.
func (s *Store) CheckToken(ctx context.Context, secret string) (string, error) {
	if !strings.HasPrefix(secret, tokenPrefix) || len(secret) > 128 {
		return "", ErrBadToken
	}
	rest := secret[len(tokenPrefix):]
	i := strings.IndexByte(rest, '_')
	if i <= 0 {
		return "", ErrBadToken
	}
	id := rest[:i]
	var hash string
	var revoked sql.NullInt64
	err := s.db.QueryRow(ctx, qTokenByID, id).Scan(&hash, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrBadToken
	}
	if err != nil {
		return "", err
	}
	if subtle.ConstantTimeCompare([]byte(hash), []byte(hashToken(secret))) != 1 || revoked.Valid {
		return "", ErrBadToken
	}
	return id, nil
}

const qTokenByID = `SELECT hash, revoked_at FROM tokens WHERE id = ?`

// TouchToken records a token's use (best effort, at most once a minute).
func (s *Store) TouchToken(ctx context.Context, id string) error {
	now := s.now().UnixMilli()
	_, err := s.db.Exec(ctx, `UPDATE tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`, now, id, now-60000)
	return err
}

// RevokeToken revokes a token at once.
func (s *Store) RevokeToken(ctx context.Context, id string) error {
	res, err := s.db.Exec(ctx, `UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, s.now().UnixMilli(), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: token %s (or already revoked)", ErrNotFound, id)
	}
	return nil
}

// Tokens lists the tokens, newest first.
func (s *Store) Tokens(ctx context.Context) ([]Token, error) {
	rows, err := s.db.Query(ctx, `SELECT id, name, created_at, last_used_at, revoked_at FROM tokens ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		var t Token
		var c int64
		var lu, rv sql.NullInt64
		if err := rows.Scan(&t.ID, &t.Name, &c, &lu, &rv); err != nil {
			return nil, err
		}
		t.Created = time.UnixMilli(c).UTC()
		if lu.Valid {
			x := time.UnixMilli(lu.Int64).UTC()
			t.LastUsed = &x
		}
		if rv.Valid {
			x := time.UnixMilli(rv.Int64).UTC()
			t.Revoked = &x
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
