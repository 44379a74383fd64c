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

// Token is a node API token as listed (never its secret).
type Token struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	Scope    string     `json:"scope"`             // ScopeRead, ScopeWrite or ScopeAdmin
	Dataset  string     `json:"dataset,omitempty"` // the only dataset it may use; "" for all
	Created  time.Time  `json:"created"`
	LastUsed *time.Time `json:"last_used,omitempty"`
	Revoked  *time.Time `json:"revoked,omitempty"`
}

// Scopes of tokens, each allowing what the ones before it allow.
const (
	// ScopeRead allows QIDO-RS, WADO-RS and reading datasets.
	ScopeRead = "read"
	// ScopeWrite also allows storing: STOW-RS.
	ScopeWrite = "write"
	// ScopeAdmin also allows creating, changing and deleting datasets
	// and managing tokens: everything.
	ScopeAdmin = "admin"
)

// scopeRank orders the scopes; 0 for an unknown one.
func scopeRank(scope string) int {
	switch scope {
	case ScopeRead:
		return 1
	case ScopeWrite:
		return 2
	case ScopeAdmin:
		return 3
	}
	return 0
}

// ValidScope tells whether scope is one of the three.
func ValidScope(scope string) bool { return scopeRank(scope) > 0 }

// Allows tells whether the token may act at scope on dataset. An empty
// dataset means an action on no dataset in particular: reading (a
// listing, which the caller limits to the token's dataset) is allowed to
// any token, anything more only to tokens for all datasets.
func (t Token) Allows(scope, dataset string) bool {
	need := scopeRank(scope)
	if need == 0 || scopeRank(t.Scope) < need {
		return false
	}
	if t.Dataset == "" {
		return true
	}
	if dataset == "" {
		return need == scopeRank(ScopeRead)
	}
	return dataset == t.Dataset
}

// tokenPrefix marks Mosaic node tokens so secret scanners recognise them.
const tokenPrefix = "mnt_"

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func hashToken(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// CreateToken makes a new token of a scope, for one dataset or, when
// dataset is "", for all, and returns its secret, shown once: only its
// SHA-256 is stored. It returns ErrInvalid for an unknown scope and
// ErrNotFound for a dataset that does not exist.
func (s *Store) CreateToken(ctx context.Context, name, scope, dataset string) (secret string, t Token, err error) {
	if !ValidScope(scope) {
		return "", t, fmt.Errorf("%w: token scope %q: use read, write or admin", ErrInvalid, scope)
	}
	if dataset != "" {
		if _, err := s.Dataset(ctx, dataset); errors.Is(err, ErrNotFound) {
			return "", t, fmt.Errorf("%w: no dataset %q to make a token for", ErrNotFound, dataset)
		} else if err != nil {
			return "", t, err
		}
	}
	var raw [20]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", t, err
	}
	var idb [5]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return "", t, err
	}
	t = Token{ID: strings.ToLower(b32.EncodeToString(idb[:])), Name: name, Scope: scope, Dataset: dataset, Created: s.now().UTC().Truncate(time.Millisecond)}
	secret = tokenPrefix + t.ID + "_" + strings.ToLower(b32.EncodeToString(raw[:]))
	_, err = s.db.Exec(ctx, `INSERT INTO tokens (id, hash, name, scope, dataset_id, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		t.ID, hashToken(secret), name, scope, dataset, t.Created.UnixMilli())
	return secret, t, err
}

// ErrBadToken is returned for a token that is malformed, unknown or
// revoked; the three are not told apart to the caller.
var ErrBadToken = errors.New("invalid or revoked token")

// CheckToken verifies a presented token secret and returns the token
// (its id, name and scope).
func (s *Store) CheckToken(ctx context.Context, secret string) (Token, error) {
	if !strings.HasPrefix(secret, tokenPrefix) || len(secret) > 128 {
		return Token{}, ErrBadToken
	}
	rest := secret[len(tokenPrefix):]
	i := strings.IndexByte(rest, '_')
	if i <= 0 {
		return Token{}, ErrBadToken
	}
	t := Token{ID: rest[:i]}
	var hash string
	var revoked sql.NullInt64
	err := s.db.QueryRow(ctx, qTokenByID, t.ID).Scan(&hash, &revoked, &t.Name, &t.Scope, &t.Dataset)
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, ErrBadToken
	}
	if err != nil {
		return Token{}, err
	}
	if subtle.ConstantTimeCompare([]byte(hash), []byte(hashToken(secret))) != 1 || revoked.Valid || !ValidScope(t.Scope) {
		return Token{}, ErrBadToken
	}
	return t, nil
}

const qTokenByID = `SELECT hash, revoked_at, name, scope, dataset_id FROM tokens WHERE id = ?`

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
	rows, err := s.db.Query(ctx, `SELECT id, name, scope, dataset_id, created_at, last_used_at, revoked_at FROM tokens ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		var t Token
		var c int64
		var lu, rv sql.NullInt64
		if err := rows.Scan(&t.ID, &t.Name, &t.Scope, &t.Dataset, &c, &lu, &rv); err != nil {
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
