package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/sqldb"
	"github.com/mosaic-imaging/mosaic/internal/sqldb/sqltest"
)

// TestKeepPrepared runs kept statements many times, in transactions and
// outside them, with other arguments each time, on both databases: every
// answer is the row of its own arguments, a missing row is
// sql.ErrNoRows, statements not kept run as before, and a statement that
// cannot be prepared is refused at once.
func TestKeepPrepared(t *testing.T) {
	const (
		insert = `INSERT INTO kv (k, v) VALUES (?, ?) RETURNING v`
		byKey  = `SELECT v FROM kv WHERE k = ?`
		bump   = `UPDATE kv SET v = v + ? WHERE k = ?`
		from   = `SELECT k, v FROM kv WHERE v >= ? ORDER BY k`
	)
	key := func(i int) string { return string(rune('a'+i%26)) + string(rune('a'+i/26)) }
	for _, c := range []struct{ name, dsn string }{
		{"sqlite", filepath.Join(t.TempDir(), "t.db")},
		{"postgres", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			dsn := c.dsn
			if dsn == "" {
				dsn = sqltest.PostgresURL(t)
			}
			ctx := context.Background()
			db, err := sqldb.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(ctx, `CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`); err != nil {
				t.Fatal(err)
			}
			if err := db.KeepPrepared(ctx, insert, byKey, bump, from); err != nil {
				t.Fatal(err)
			}
			if c.name == "sqlite" {
				if err := db.KeepPrepared(ctx, `SELECT v FROM no_such_table`); err == nil {
					t.Error("a statement on a missing table was kept")
				}
			}
			for round := range 3 { // later transactions reuse the statements
				err = db.InTx(ctx, func(tx *sqldb.Tx) error {
					for i := round * 20; i < round*20+20; i++ {
						var v int
						if err := tx.QueryRow(ctx, insert, key(i), i*3).Scan(&v); err != nil {
							return err
						}
						if v != i*3 {
							t.Errorf("insert %d returned %d", i, v)
						}
						if _, err := tx.Exec(ctx, bump, 1, key(i)); err != nil {
							return err
						}
					}
					for i := round*20 + 19; i >= 0; i-- {
						var v int
						if err := tx.QueryRow(ctx, byKey, key(i)).Scan(&v); err != nil {
							return err
						}
						if v != i*3+1 {
							t.Errorf("row %d: v = %d, want %d", i, v, i*3+1)
						}
					}
					var v int
					if err := tx.QueryRow(ctx, byKey, "none").Scan(&v); !errors.Is(err, sql.ErrNoRows) {
						t.Errorf("missing row: %v, want sql.ErrNoRows", err)
					}
					var n int
					if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM kv`).Scan(&n); err != nil || n != round*20+20 {
						t.Errorf("a statement not kept: %d rows, %v", n, err)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			// A transaction rolled back after using the statements
			// leaves them usable.
			err = db.InTx(ctx, func(tx *sqldb.Tx) error {
				if _, err := tx.Exec(ctx, bump, 1000, key(0)); err != nil {
					return err
				}
				if err := tx.QueryRow(ctx, insert, key(0), 1).Scan(new(int)); err == nil {
					t.Error("a duplicate key was inserted")
				}
				return errors.New("roll back")
			})
			if err == nil {
				t.Fatal("the transaction was not rolled back")
			}
			count := func(rows *sql.Rows, err error) int {
				if err != nil {
					t.Fatal(err)
				}
				defer rows.Close()
				n := 0
				for rows.Next() {
					n++
				}
				if err := rows.Err(); err != nil {
					t.Fatal(err)
				}
				return n
			}
			if n := count(db.Query(ctx, from, 0)); n != 60 {
				t.Errorf("kept query outside a transaction: %d rows, want 60", n)
			}
			err = db.InTx(ctx, func(tx *sqldb.Tx) error {
				if n := count(tx.Query(ctx, from, 90)); n != 30 {
					t.Errorf("kept query in a transaction after a rollback: %d rows, want 30 (v from 91)", n)
				}
				_, err := tx.Exec(ctx, bump, 0, key(0))
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			// Outside a transaction too.
			for i := range 60 {
				var v int
				if err := db.QueryRow(ctx, byKey, key(i)).Scan(&v); err != nil || v != i*3+1 {
					t.Errorf("row %d outside a transaction: %d, %v", i, v, err)
				}
			}
		})
	}
}
