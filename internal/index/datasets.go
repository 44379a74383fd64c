package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Dataset is a collection hosted by the node, the unit of publication in
// the catalogue and of access.
type Dataset struct {
	ID           string    `json:"id"`
	Title        string    `json:"title"`
	Description  string    `json:"description"`
	Licence      string    `json:"licence"`
	Contact      string    `json:"contact"`
	AccessRights string    `json:"access_rights"` // PUBLIC, RESTRICTED or NON_PUBLIC
	Tier         int       `json:"tier"`          // EUCAIM interoperability tier, 1 to 3
	Created      time.Time `json:"created"`
	Updated      time.Time `json:"updated"`
	// Changed is the last time the dataset's content (instances or
	// clinical rows) changed, for catalogue publication.
	Changed time.Time `json:"changed"`
}

var datasetID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// AccessRights values, as in EUCAIM DCAT-AP.
var accessRights = map[string]bool{"PUBLIC": true, "RESTRICTED": true, "NON_PUBLIC": true}

// Validate checks a dataset's fields.
func (d *Dataset) Validate() error {
	switch {
	case !datasetID.MatchString(d.ID):
		return fmt.Errorf("%w: dataset id %q: use 1 to 63 lowercase letters, digits and dashes, starting with a letter or digit", ErrInvalid, d.ID)
	case strings.TrimSpace(d.Title) == "":
		return fmt.Errorf("%w: dataset %s: title is required", ErrInvalid, d.ID)
	case len(d.Title) > 500 || len(d.Description) > 20000 || len(d.Licence) > 500 || len(d.Contact) > 500:
		return fmt.Errorf("%w: dataset %s: a field is too long", ErrInvalid, d.ID)
	case !accessRights[d.AccessRights]:
		return fmt.Errorf("%w: dataset %s: access rights %q: use PUBLIC, RESTRICTED or NON_PUBLIC", ErrInvalid, d.ID, d.AccessRights)
	case d.Tier < 1 || d.Tier > 3:
		return fmt.Errorf("%w: dataset %s: tier %d: use 1, 2 or 3", ErrInvalid, d.ID, d.Tier)
	}
	return nil
}

// ValidDatasetID reports whether id can name a dataset (and so a URL
// path segment).
func ValidDatasetID(id string) bool { return datasetID.MatchString(id) }

// CreateDataset adds a dataset; ErrExists if the id is taken. Empty
// access rights default to RESTRICTED and a zero tier to 1.
func (s *Store) CreateDataset(ctx context.Context, d Dataset) (Dataset, error) {
	if d.AccessRights == "" {
		d.AccessRights = "RESTRICTED"
	}
	if d.Tier == 0 {
		d.Tier = 1
	}
	if err := d.Validate(); err != nil {
		return d, err
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	d.Created, d.Updated, d.Changed = now, now, now
	ms := now.UnixMilli()
	_, err := s.db.Exec(ctx, `INSERT INTO datasets (id, title, description, licence, contact, access_rights, tier, created_at, updated_at, changed_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		d.ID, d.Title, d.Description, d.Licence, d.Contact, d.AccessRights, d.Tier, ms, ms, ms)
	if err != nil {
		return d, err
	}
	got, err := s.Dataset(ctx, d.ID)
	if err != nil {
		return d, err
	}
	if !got.Created.Equal(d.Created) || got.Title != d.Title {
		return d, fmt.Errorf("%w: dataset %s", ErrExists, d.ID)
	}
	return got, nil
}

// UpdateDataset changes a dataset's descriptive fields with edit.
func (s *Store) UpdateDataset(ctx context.Context, id string, edit func(*Dataset) error) (Dataset, error) {
	var out Dataset
	err := s.db.InTx(ctx, func(tx *sqldbTx) error {
		d, err := scanDataset(tx.QueryRow(ctx, qDatasetByID, id))
		if err != nil {
			return err
		}
		if err := edit(&d); err != nil {
			return err
		}
		d.ID = id
		if err := d.Validate(); err != nil {
			return err
		}
		d.Updated = s.now().UTC().Truncate(time.Millisecond)
		_, err = tx.Exec(ctx, `UPDATE datasets SET title = ?, description = ?, licence = ?, contact = ?, access_rights = ?, tier = ?, updated_at = ?, changed_at = ? WHERE id = ?`,
			d.Title, d.Description, d.Licence, d.Contact, d.AccessRights, d.Tier, d.Updated.UnixMilli(), d.Updated.UnixMilli(), id)
		out = d
		out.Changed = d.Updated
		return err
	})
	return out, err
}

const datasetSelect = `SELECT id, title, description, licence, contact, access_rights, tier, created_at, updated_at, changed_at FROM datasets`

const qDatasetByID = datasetSelect + ` WHERE id = ?`

type rowScanner interface{ Scan(...any) error }

func scanDataset(r rowScanner) (Dataset, error) {
	var d Dataset
	var c, u, ch int64
	err := r.Scan(&d.ID, &d.Title, &d.Description, &d.Licence, &d.Contact, &d.AccessRights, &d.Tier, &c, &u, &ch)
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("%w: dataset", ErrNotFound)
	}
	d.Created, d.Updated, d.Changed = time.UnixMilli(c).UTC(), time.UnixMilli(u).UTC(), time.UnixMilli(ch).UTC()
	return d, err
}

// Dataset returns one dataset; ErrNotFound if unknown.
func (s *Store) Dataset(ctx context.Context, id string) (Dataset, error) {
	return scanDataset(s.db.QueryRow(ctx, qDatasetByID, id))
}

// Datasets lists every dataset by id.
func (s *Store) Datasets(ctx context.Context) ([]Dataset, error) {
	rows, err := s.db.Query(ctx, datasetSelect+` ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Dataset
	for rows.Next() {
		d, err := scanDataset(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// DeleteDataset removes an empty dataset and revokes the tokens for it
// alone. One that holds instances, clinical rows or research tables is
// refused: delete its content first.
func (s *Store) DeleteDataset(ctx context.Context, id string) error {
	return s.db.InTx(ctx, func(tx *sqldbTx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM patients WHERE dataset_id = ?) + (SELECT COUNT(*) FROM cdm_patient WHERE dataset_id = ?)
			+ (SELECT COUNT(*) FROM research_tables WHERE dataset_id = ?)`, id, id, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: dataset %s holds data; it cannot be deleted", ErrInvalid, id)
		}
		res, err := tx.Exec(ctx, `DELETE FROM datasets WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: dataset %s", ErrNotFound, id)
		}
		// Tokens for the dataset go with it, so that they do not come
		// to life again for a new dataset of the same id.
		_, err = tx.Exec(ctx, `UPDATE tokens SET revoked_at = ? WHERE dataset_id = ? AND revoked_at IS NULL`, s.now().UnixMilli(), id)
		return err
	})
}
