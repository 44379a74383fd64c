package sqltest

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestPostgresURL(t *testing.T) {
	first := PostgresURL(t)
	second := PostgresURL(t)
	if first == second {
		t.Fatalf("two calls gave the same database: %s", first)
	}

	server, err := url.Parse(os.Getenv(EnvPostgres))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{first, second} {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("PostgresURL gave %q: %v", s, err)
		}
		if u.Scheme != server.Scheme || u.Host != server.Host || u.User.String() != server.User.String() {
			t.Errorf("PostgresURL gave %q, want the scheme, user and host of %q", s, server)
		}
		if u.RawQuery != server.RawQuery {
			t.Errorf("PostgresURL gave query %q, want %q", u.RawQuery, server.RawQuery)
		}
		if !strings.HasPrefix(u.Path, "/mosaic_test_") {
			t.Errorf("PostgresURL gave database %q, want /mosaic_test_...", u.Path)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, first)
	if err != nil {
		t.Fatalf("connect to %s: %v", first, err)
	}
	defer conn.Close(ctx)

	var current string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&current); err != nil {
		t.Fatal(err)
	}
	if u, _ := url.Parse(first); "/"+current != u.Path {
		t.Errorf("connected to database %q, want the one in %s", current, first)
	}

	var tables int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Errorf("new database has %d tables in public, want none", tables)
	}

	if _, err := conn.Exec(ctx, "CREATE TABLE study (id bigint PRIMARY KEY, uid text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	const uid = "1.2.826.0.1.3680043.2.1125.1"
	if _, err := conn.Exec(ctx, "INSERT INTO study (id, uid) VALUES ($1, $2)", 7, uid); err != nil {
		t.Fatal(err)
	}
	var id int64
	var got string
	if err := conn.QueryRow(ctx, "SELECT id, uid FROM study").Scan(&id, &got); err != nil {
		t.Fatal(err)
	}
	if id != 7 || got != uid {
		t.Errorf("read back (%d, %q), want (7, %q)", id, got, uid)
	}
}

// TestPostgresURLDropped checks that the database made for a subtest is gone
// once the subtest has finished, even though a connection to it is still
// open.
func TestPostgresURLDropped(t *testing.T) {
	if os.Getenv(EnvPostgres) == "" {
		PostgresURL(t) // skips or fails, with the reason
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	var name string
	t.Run("inner", func(t *testing.T) {
		s := PostgresURL(t)
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		name = strings.TrimPrefix(u.Path, "/")
		conn, err := pgx.Connect(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		// Left open on purpose: the cleanup must drop the database anyway.
		_ = conn
	})
	if name == "" {
		t.Fatal("subtest did not get a database")
	}

	conn, err := pgx.Connect(ctx, os.Getenv(EnvPostgres))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s still exists after its test ended", name)
	}
}
