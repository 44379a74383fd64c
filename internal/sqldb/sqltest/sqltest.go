// Package sqltest gives tests of Mosaic's relational stores a PostgreSQL
// database of their own, so that one conformance suite can run on SQLite and
// on PostgreSQL.
//
// The server comes from the environment variable MOSAIC_TEST_POSTGRES, a
// postgres:// URL of a superuser connection. `make test` sets it by running
// the tests through scripts/with-postgres.sh, which starts a throwaway
// server; the same script can wrap a single `go test` run:
//
//	scripts/with-postgres.sh go test ./internal/sqldb/...
//
// Each call of PostgresURL creates a new, empty database on that server and
// drops it when the test ends, so tests and packages running in parallel
// never see each other's tables.
package sqltest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvPostgres is the environment variable naming the PostgreSQL server that
// tests use.
const EnvPostgres = "MOSAIC_TEST_POSTGRES"

// adminTimeout bounds each CREATE DATABASE and DROP DATABASE, including the
// connection made for it.
const adminTimeout = 60 * time.Second

// PostgresURL returns the URL of a brand-new, empty database created for
// this test on the server named by MOSAIC_TEST_POSTGRES. The database is
// dropped, with any connections still open to it, when the test and its
// subtests have finished. The URL has the form of MOSAIC_TEST_POSTGRES with
// the database name replaced; its query parameters are kept.
//
// When MOSAIC_TEST_POSTGRES is not set the test is skipped, except in CI
// (the environment variable CI is not empty), where it fails: there `make
// test` starts PostgreSQL, so a missing server is a fault and must not turn
// into silently skipped tests.
func PostgresURL(t testing.TB) string {
	t.Helper()
	server := os.Getenv(EnvPostgres)
	if server == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not set in CI: make test starts PostgreSQL through scripts/with-postgres.sh and sets it", EnvPostgres)
		}
		t.Skipf("%s not set; run through make test or scripts/with-postgres.sh", EnvPostgres)
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		t.Fatalf("%s=%q is not a postgres://HOST/DATABASE URL", EnvPostgres, server)
	}

	var random [8]byte
	if _, err := rand.Read(random[:]); err != nil {
		t.Fatalf("sqltest: random database name: %v", err)
	}
	name := "mosaic_test_" + hex.EncodeToString(random[:])
	ident := pgx.Identifier{name}.Sanitize()

	if err := admin(server, "CREATE DATABASE "+ident); err != nil {
		t.Fatalf("sqltest: create database %s on %s: %v", name, u.Redacted(), err)
	}
	t.Cleanup(func() {
		// FORCE ends connections that the test left open, such as those
		// of a pool it did not close.
		if err := admin(server, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("sqltest: drop database %s: %v", name, err)
		}
	})

	db := *u
	db.Path = "/" + name
	db.RawPath = ""
	return db.String()
}

// admin runs one statement, outside any transaction as CREATE DATABASE and
// DROP DATABASE require, on a connection of its own to the server's
// administrative database.
//
// It does not use the test's context: that is cancelled before cleanups run.
func admin(server, stmt string) error {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, stmt)
	return err
}
