package compute

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/sqldb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Kinds of computation kept in the store.
const (
	KindAnalysis   = "analysis"
	KindLearning   = "learning"
	KindValidation = "validation"
)

// States of a computation.
const (
	StateRunning   = "running"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
)

// ErrNotFound is returned for a computation that does not exist or
// belongs to someone else.
var ErrNotFound = errors.New("compute: no such computation")

// Record is a stored computation: its request and result as JSON.
type Record struct {
	ID         string    `json:"id"`
	Kind       string    `json:"kind"`
	Researcher string    `json:"researcher"`
	Name       string    `json:"name"`
	State      string    `json:"state"`
	Request    string    `json:"-"`
	Result     string    `json:"-"`
	Error      string    `json:"error,omitempty"`
	Created    time.Time `json:"created"`
	Updated    time.Time `json:"updated"`
}

// Store keeps computations on the hub's database.
type Store struct {
	db  *sqldb.DB
	now func() time.Time
}

// OpenStore migrates the hub's database for computations.
func OpenStore(ctx context.Context, db *sqldb.DB) (*Store, error) {
	if err := db.Migrate(ctx, "compute", migrations, "migrations"); err != nil {
		return nil, err
	}
	return &Store{db: db, now: time.Now}, nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// FailRunning marks every computation still running as failed, with
// why: at start, what a stopped hub was running will not go on.
func (s *Store) FailRunning(ctx context.Context, why string) (int64, error) {
	res, err := s.db.Exec(ctx, `UPDATE compute_runs SET state = ?, error = ?, updated_at = ? WHERE state = ?`, StateFailed, why, ms(s.now()), StateRunning)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Create stores a new running computation.
func (s *Store) Create(ctx context.Context, id, kind, researcher, name, request string) error {
	now := ms(s.now())
	_, err := s.db.Exec(ctx, `INSERT INTO compute_runs (id, kind, researcher, name, state, request, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		id, kind, researcher, name, StateRunning, request, now, now)
	return err
}

// Update writes a computation's state, result and error.
func (s *Store) Update(ctx context.Context, id, state, result, errText string) error {
	_, err := s.db.Exec(ctx, `UPDATE compute_runs SET state = ?, result = ?, error = ?, updated_at = ? WHERE id = ?`, state, result, errText, ms(s.now()), id)
	return err
}

// SetWeights stores a learning run's current global weights.
func (s *Store) SetWeights(ctx context.Context, id string, w []byte) error {
	_, err := s.db.Exec(ctx, `UPDATE compute_runs SET weights = ?, updated_at = ? WHERE id = ?`, w, ms(s.now()), id)
	return err
}

// Weights returns a learning run's global weights.
func (s *Store) Weights(ctx context.Context, id, researcher string) ([]byte, error) {
	var w []byte
	err := s.db.QueryRow(ctx, `SELECT weights FROM compute_runs WHERE id = ? AND researcher = ?`, id, researcher).Scan(&w)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return w, err
}

// Get returns computation id of researcher ("" for anyone).
func (s *Store) Get(ctx context.Context, id, researcher string) (*Record, error) {
	var r Record
	var c, u int64
	err := s.db.QueryRow(ctx, `SELECT id, kind, researcher, name, state, request, result, error, created_at, updated_at FROM compute_runs WHERE id = ?`, id).
		Scan(&r.ID, &r.Kind, &r.Researcher, &r.Name, &r.State, &r.Request, &r.Result, &r.Error, &c, &u)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && researcher != "" && r.Researcher != researcher) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	r.Created, r.Updated = time.UnixMilli(c).UTC(), time.UnixMilli(u).UTC()
	return &r, nil
}

// List returns the latest computations of researcher ("" for anyone) of
// kind ("" for any), newest first.
func (s *Store) List(ctx context.Context, researcher, kind string, limit int) ([]Record, error) {
	rows, err := s.db.Query(ctx, `SELECT id, kind, researcher, name, state, request, result, error, created_at, updated_at FROM compute_runs
		WHERE (? = '' OR researcher = ?) AND (? = '' OR kind = ?) ORDER BY created_at DESC LIMIT ?`, researcher, researcher, kind, kind, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var r Record
		var c, u int64
		if err := rows.Scan(&r.ID, &r.Kind, &r.Researcher, &r.Name, &r.State, &r.Request, &r.Result, &r.Error, &c, &u); err != nil {
			return nil, err
		}
		r.Created, r.Updated = time.UnixMilli(c).UTC(), time.UnixMilli(u).UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}
