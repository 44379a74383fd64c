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

// TestQueryRowRepeated runs one query many times in a transaction, with
// other arguments each time, on both databases: every answer is the row
// of its own arguments, a missing row is sql.ErrNoRows, and a query that
// cannot be prepared reports its error through the Row.
func TestQueryRowRepeated(t *testing.T) {
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
			err = db.InTx(ctx, func(tx *sqldb.Tx) error {
				for i := range 50 {
					var v int
					if err := tx.QueryRowRepeated(ctx, `INSERT INTO kv (k, v) VALUES (?, ?) RETURNING v`, string(rune('a'+i%26))+string(rune('a'+i/26)), i*3).Scan(&v); err != nil {
						return err
					}
					if v != i*3 {
						t.Errorf("insert %d returned %d", i, v)
					}
				}
				for i := 49; i >= 0; i-- {
					var v int
					if err := tx.QueryRowRepeated(ctx, `SELECT v FROM kv WHERE k = ?`, string(rune('a'+i%26))+string(rune('a'+i/26))).Scan(&v); err != nil {
						return err
					}
					if v != i*3 {
						t.Errorf("row %d: v = %d, want %d", i, v, i*3)
					}
				}
				var v int
				if err := tx.QueryRowRepeated(ctx, `SELECT v FROM kv WHERE k = ?`, "none").Scan(&v); !errors.Is(err, sql.ErrNoRows) {
					t.Errorf("missing row: %v, want sql.ErrNoRows", err)
				}
				if err := tx.QueryRowRepeated(ctx, `SELECT v FROM no_such_table WHERE k = ?`, "a").Scan(&v); err == nil {
					t.Error("a query on a missing table gave no error")
				}
				return nil
			})
			// PostgreSQL aborts the transaction at the failed query: the
			// commit then fails, which is expected here.
			if err != nil && c.name == "sqlite" {
				t.Fatal(err)
			}
		})
	}
}
