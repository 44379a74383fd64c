package sqldb

import (
	"context"
	"path/filepath"
	"testing"
)

// TestKeptStatementsUsed: on SQLite the kept statements are prepared once
// and a transaction binds each once, reusing it; other queries are not
// kept.
func TestKeptStatementsUsed(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(ctx, `CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	const q = `SELECT v FROM kv WHERE k = ?`
	if err := db.KeepPrepared(ctx, q, q); err != nil {
		t.Fatal(err)
	}
	if len(db.kept) != 1 || db.kept[q] == nil {
		t.Fatalf("kept %v, want the one statement", db.kept)
	}
	err = db.InTx(ctx, func(tx *Tx) error {
		s1 := tx.kept(ctx, q)
		s2 := tx.kept(ctx, q)
		if s1 == nil || s1 != s2 {
			t.Errorf("kept statement in a transaction: %p then %p, want one, reused", s1, s2)
		}
		if s := tx.kept(ctx, `SELECT 1`); s != nil {
			t.Error("a query never kept has a statement")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
