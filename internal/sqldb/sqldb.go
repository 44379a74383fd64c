// Package sqldb opens the relational stores of Mosaic on either of its two
// engines, SQLite (embedded, the default) and PostgreSQL (for larger
// sites), and applies numbered, embedded migrations. Queries are written
// once with ? placeholders; Rebind turns them into PostgreSQL's $n form.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"
)

// Dialect names the SQL engine behind a DB.
type Dialect int

// The engines.
const (
	SQLite Dialect = iota
	Postgres
)

func (d Dialect) String() string {
	if d == Postgres {
		return "postgres"
	}
	return "sqlite"
}

// DB is a database handle that knows its dialect.
type DB struct {
	*sql.DB
	Dialect Dialect
	// Where describes the database without credentials, for logs.
	Where string

	mu     sync.RWMutex
	rebind map[string]string
	// kept are the statements KeepPrepared prepared, by query text;
	// written before db is shared, only read after.
	kept map[string]*sql.Stmt
}

// ErrURL reports a database URL that cannot be used.
var ErrURL = errors.New("sqldb: bad database URL")

// Open opens the database named by dsn: "postgres://..." or
// "postgresql://..." for PostgreSQL; "sqlite:PATH", "file:PATH" or a plain
// path for SQLite (created if missing, in WAL mode, with full
// synchronous commits so that a committed transaction survives a crash).
func Open(ctx context.Context, dsn string) (*DB, error) {
	var db *DB
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		u, err := url.Parse(dsn)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrURL, redactErr(err))
		}
		sdb, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, err
		}
		sdb.SetMaxOpenConns(32)
		sdb.SetMaxIdleConns(32)
		db = &DB{DB: sdb, Dialect: Postgres, Where: "postgres://" + u.Host + u.Path}
	case strings.Contains(dsn, "://"):
		return nil, fmt.Errorf("%w: %q: use postgres://... or a file path for SQLite", ErrURL, scheme(dsn))
	default:
		path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "file:")
		if path == "" {
			return nil, fmt.Errorf("%w: empty SQLite path", ErrURL)
		}
		if i := strings.IndexByte(path, '?'); i >= 0 {
			return nil, fmt.Errorf("%w: SQLite paths take no parameters", ErrURL)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		// SQLite makes its -wal and -shm files with the database file's
		// mode: create it readable by its owner only. An existing
		// database keeps the mode it has.
		if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
			f.Close()
		} else if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		q := url.Values{}
		for _, p := range []string{"busy_timeout(20000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)"} {
			q.Add("_pragma", p)
		}
		q.Set("_txlock", "immediate")
		sdb, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
		if err != nil {
			return nil, err
		}
		// Readers run in parallel in WAL mode; writers queue on the
		// database lock, which busy_timeout waits for.
		sdb.SetMaxOpenConns(8)
		sdb.SetMaxIdleConns(8)
		db = &DB{DB: sdb, Dialect: SQLite, Where: "sqlite:" + path}
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqldb: %s: %w", db.Where, redactErr(err))
	}
	return db, nil
}

func scheme(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		return dsn[:i]
	}
	return ""
}

// redactErr keeps passwords out of errors that quote the URL.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("cannot parse the database URL")
	}
	return err
}

// Rebind turns a query written with ? placeholders into the dialect's
// form ($1, $2, ... for PostgreSQL). Question marks inside quoted strings
// are left alone. Results are cached.
func (db *DB) Rebind(q string) string {
	if db.Dialect != Postgres {
		return q
	}
	db.mu.RLock()
	r, ok := db.rebind[q]
	db.mu.RUnlock()
	if ok {
		return r
	}
	r = rebindPostgres(q)
	db.mu.Lock()
	if db.rebind == nil {
		db.rebind = map[string]string{}
	}
	if len(db.rebind) < 10000 {
		db.rebind[q] = r
	}
	db.mu.Unlock()
	return r
}

func rebindPostgres(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	inStr := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			inStr = !inStr
			b.WriteByte(c)
		case c == '?' && !inStr:
			n++
			fmt.Fprintf(&b, "$%d", n)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// KeepPrepared prepares queries written with ? placeholders once for
// the life of db, on SQLite: Exec, Query and QueryRow, of db and of its
// transactions, then run them as prepared statements, parsed once per
// connection instead of at every call. It is for the few statements run
// by every request or commit. Call it right after Open, before db is
// shared. In one transaction a kept query has one statement: its rows
// must be read to the end (or closed) before the same query runs again
// there. PostgreSQL's driver keeps the statements it has prepared
// already, and there it does nothing.
func (db *DB) KeepPrepared(ctx context.Context, queries ...string) error {
	if db.Dialect != SQLite {
		return nil
	}
	if db.kept == nil {
		db.kept = make(map[string]*sql.Stmt, len(queries))
	}
	for _, q := range queries {
		if _, ok := db.kept[q]; ok {
			continue
		}
		s, err := db.DB.PrepareContext(ctx, db.Rebind(q))
		if err != nil {
			return fmt.Errorf("sqldb: prepare: %w", err)
		}
		db.kept[q] = s
	}
	return nil
}

// Close closes the kept statements and the database.
func (db *DB) Close() error {
	for _, s := range db.kept {
		s.Close()
	}
	return db.DB.Close()
}

// Exec runs a statement written with ? placeholders.
func (db *DB) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if s := db.kept[q]; s != nil {
		return s.ExecContext(ctx, args...)
	}
	return db.DB.ExecContext(ctx, db.Rebind(q), args...)
}

// Query runs a query written with ? placeholders.
func (db *DB) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if s := db.kept[q]; s != nil {
		return s.QueryContext(ctx, args...)
	}
	return db.DB.QueryContext(ctx, db.Rebind(q), args...)
}

// QueryRow runs a single-row query written with ? placeholders.
func (db *DB) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if s := db.kept[q]; s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return db.DB.QueryRowContext(ctx, db.Rebind(q), args...)
}

// Tx is a transaction that rebinds like its DB.
type Tx struct {
	*sql.Tx
	db    *DB
	stmts map[string]*sql.Stmt // the kept statements used so far, bound to tx
}

// Begin starts a transaction.
func (db *DB) Begin(ctx context.Context) (*Tx, error) {
	tx, err := db.DB.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &Tx{Tx: tx, db: db}, nil
}

// kept returns q's kept statement bound to tx, or nil when q is not kept.
// Tx is not safe for concurrent use, and neither is this.
func (tx *Tx) kept(ctx context.Context, q string) *sql.Stmt {
	ks := tx.db.kept[q]
	if ks == nil {
		return nil
	}
	if s, ok := tx.stmts[q]; ok {
		return s
	}
	s := tx.Tx.StmtContext(ctx, ks)
	if tx.stmts == nil {
		tx.stmts = map[string]*sql.Stmt{}
	}
	tx.stmts[q] = s
	return s
}

// Exec runs a statement written with ? placeholders.
func (tx *Tx) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if s := tx.kept(ctx, q); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return tx.Tx.ExecContext(ctx, tx.db.Rebind(q), args...)
}

// Query runs a query written with ? placeholders.
func (tx *Tx) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if s := tx.kept(ctx, q); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return tx.Tx.QueryContext(ctx, tx.db.Rebind(q), args...)
}

// QueryRow runs a single-row query written with ? placeholders.
func (tx *Tx) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if s := tx.kept(ctx, q); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return tx.Tx.QueryRowContext(ctx, tx.db.Rebind(q), args...)
}

// InTx runs fn in a transaction, committing if it returns nil.
func (db *DB) InTx(ctx context.Context, fn func(*Tx) error) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
