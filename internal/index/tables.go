package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ResearchTable is the index row of a research table: what the node
// stores of it beside its encoded blob.
type ResearchTable struct {
	Dataset string
	Name    string
	// Schema is the table's schema as JSON (internal/table.Schema).
	Schema []byte
	Rows   int
	// Digest is the hex SHA-256 of the encoded table.
	Digest  string
	BlobKey string
	BlobLoc string
	Size    int64
	Updated time.Time
}

const researchColumns = `dataset_id, name, schema_json, rows_, digest, blob_key, blob_loc, size, updated_at`

func scanResearchTable(r rowScanner) (ResearchTable, error) {
	var t ResearchTable
	var schema string
	var updated int64
	if err := r.Scan(&t.Dataset, &t.Name, &schema, &t.Rows, &t.Digest, &t.BlobKey, &t.BlobLoc, &t.Size, &updated); err != nil {
		return t, err
	}
	t.Schema = []byte(schema)
	t.Updated = time.UnixMilli(updated).UTC()
	return t, nil
}

// PutResearchTable records a research table whose blob is stored,
// replacing the row of the same dataset and name in one transaction, and
// marks the dataset changed (its catalogue entry lists its tables). It
// returns the row it replaced (ok false when there was none), whose blob
// the caller may delete when nothing else refers to it. ErrNotFound when
// the dataset does not exist.
func (s *Store) PutResearchTable(ctx context.Context, t ResearchTable) (old ResearchTable, ok bool, err error) {
	if t.Updated.IsZero() {
		t.Updated = s.now()
	}
	err = s.db.InTx(ctx, func(tx *sqldbTx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM datasets WHERE id = ?`, t.Dataset).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: dataset %s", ErrNotFound, t.Dataset)
		} else if err != nil {
			return err
		}
		old, err = scanResearchTable(tx.QueryRow(ctx, `SELECT `+researchColumns+` FROM research_tables WHERE dataset_id = ? AND name = ?`, t.Dataset, t.Name))
		switch {
		case err == nil:
			ok = true
		case errors.Is(err, sql.ErrNoRows):
		default:
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO research_tables (`+researchColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (dataset_id, name) DO UPDATE SET schema_json = excluded.schema_json, rows_ = excluded.rows_, digest = excluded.digest,
			blob_key = excluded.blob_key, blob_loc = excluded.blob_loc, size = excluded.size, updated_at = excluded.updated_at`,
			t.Dataset, t.Name, string(t.Schema), t.Rows, t.Digest, t.BlobKey, t.BlobLoc, t.Size, t.Updated.UnixMilli()); err != nil {
			return err
		}
		now := s.now().UnixMilli()
		_, err := tx.Exec(ctx, bumpChanged, now, now, t.Dataset)
		return err
	})
	return old, ok, err
}

// GetResearchTable returns the row of a research table; ErrNotFound when
// the dataset has none of that name.
func (s *Store) GetResearchTable(ctx context.Context, dataset, name string) (ResearchTable, error) {
	t, err := scanResearchTable(s.db.QueryRow(ctx, `SELECT `+researchColumns+` FROM research_tables WHERE dataset_id = ? AND name = ?`, dataset, name))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("%w: table %s of dataset %s", ErrNotFound, name, dataset)
	}
	return t, err
}

// ResearchTables lists a dataset's research tables by name ("" for
// every dataset's, by dataset then name).
func (s *Store) ResearchTables(ctx context.Context, dataset string) ([]ResearchTable, error) {
	q, args := `SELECT `+researchColumns+` FROM research_tables ORDER BY dataset_id, name`, []any{}
	if dataset != "" {
		q, args = `SELECT `+researchColumns+` FROM research_tables WHERE dataset_id = ? ORDER BY name`, []any{dataset}
	}
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []ResearchTable{}
	for rows.Next() {
		t, err := scanResearchTable(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// DeleteResearchTable removes a research table's row and returns it (its
// blob is the caller's to delete); ErrNotFound when there is none.
func (s *Store) DeleteResearchTable(ctx context.Context, dataset, name string) (ResearchTable, error) {
	var t ResearchTable
	err := s.db.InTx(ctx, func(tx *sqldbTx) error {
		var err error
		t, err = scanResearchTable(tx.QueryRow(ctx, `SELECT `+researchColumns+` FROM research_tables WHERE dataset_id = ? AND name = ?`, dataset, name))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: table %s of dataset %s", ErrNotFound, name, dataset)
		} else if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM research_tables WHERE dataset_id = ? AND name = ?`, dataset, name); err != nil {
			return err
		}
		now := s.now().UnixMilli()
		_, err = tx.Exec(ctx, bumpChanged, now, now, dataset)
		return err
	})
	return t, err
}

// TableBlobHeld reports whether a research table's row refers to the
// blob (for deleting a replaced table's blob only when no other table
// holds the same content).
func (s *Store) TableBlobHeld(ctx context.Context, key, loc string) (bool, error) {
	var one int
	err := s.db.QueryRow(ctx, `SELECT 1 FROM research_tables WHERE blob_key = ? AND blob_loc = ? LIMIT 1`, key, loc).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// DatasetPatients returns the patient pseudonyms of a dataset: those of
// its images and those of its clinical rows.
func (s *Store) DatasetPatients(ctx context.Context, dataset string) (map[string]bool, error) {
	rows, err := s.db.Query(ctx, `SELECT patient_id FROM patients WHERE dataset_id = ? UNION SELECT patient_id FROM cdm_patient WHERE dataset_id = ?`, dataset, dataset)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		out[p] = true
	}
	return out, rows.Err()
}
