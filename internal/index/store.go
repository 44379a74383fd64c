// Package index is the node's relational store: its datasets and admin
// tokens, the DICOM patient/study/series/instance index that DICOMweb
// searches and retrieves from, and the common data model (CDM) tables
// that federated search counts over. It runs on SQLite and on PostgreSQL
// (internal/sqldb) with the same code and one conformance suite.
package index

import (
	"context"
	"embed"
	"errors"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/sqldb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Errors callers test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrInvalid  = errors.New("invalid")
)

// Store is the node's index.
type Store struct {
	db  *sqldb.DB
	now func() time.Time
	fed fedCache
}

// Open opens (creating and migrating as needed) the index at dsn: a
// SQLite file path or a postgres:// URL.
func Open(ctx context.Context, dsn string) (*Store, error) {
	db, err := sqldb.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, "node", migrations, "migrations"); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.KeepPrepared(ctx, hotQueries...); err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db, now: time.Now}, nil
}

// hotQueries are the statements run by every index commit and every
// request: on SQLite they are prepared once per connection rather than
// parsed each time (BenchmarkPutInstances).
var hotQueries = []string{
	qBlobByUID, qInsertInstance, qPatientByID, qInsertPatient, qStudyByUID, qInsertStudy, qInsertCDMStudy,
	qSeriesByUID, qInsertSeries, qInsertCDMSeries, qUpdateSeries, qUpdateStudy, bumpChanged,
	qTokenByID, qDatasetByID,
}

// DB exposes the handle, for health checks and tools.
func (s *Store) DB() *sqldb.DB { return s.db }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// bumpChanged moves a dataset's changed_at to now, or one millisecond
// past its current value when that is not earlier, so that every change
// gives a new value even within one millisecond (the federated search
// snapshot and the catalogue rely on it). Arguments: now, now, dataset.
const bumpChanged = `UPDATE datasets SET changed_at = CASE WHEN changed_at >= ? THEN changed_at + 1 ELSE ? END WHERE id = ?`
