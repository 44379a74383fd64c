package hub

import (
	"context"
	"embed"
	"errors"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/sqldb"
)

// The hub's relational state: users and their sessions and tokens, query
// counts (store_users.go), nodes and the catalogue (store_nodes.go). Only
// the hub's core and Admin use it: callers outside the package go through
// their methods, which audit what they change.

//go:embed migrations/*.sql
var migrations embed.FS

// Errors callers test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrInvalid  = errors.New("invalid")
	ErrAuth     = errors.New("authentication failed")
)

// store is the hub's relational state.
type store struct {
	db  *sqldb.DB
	now func() time.Time
}

// openStore opens and migrates the hub's database.
func openStore(ctx context.Context, dsn string) (*store, error) {
	db, err := sqldb.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, "hub", migrations, "migrations"); err != nil {
		db.Close()
		return nil, err
	}
	return &store{db: db, now: time.Now}, nil
}

// Close closes the database.
func (s *store) Close() error { return s.db.Close() }

// record is called by a store method that changes the state, inside its
// transaction and after the change: an error (the audit log cannot be
// written) rolls the change back. nil records nothing.
type record func() error

func (r record) run() error {
	if r == nil {
		return nil
	}
	return r()
}
