package hub

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/mail"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/sqldb"
)

// RoleRepresentative is a data holder's representative: a user who
// decides access requests for the datasets they represent (see
// AddRepresentative). Admins and researchers may represent datasets too.
const RoleRepresentative = "representative"

// AnyDataset stands for every dataset of a node in a representation.
const AnyDataset = "*"

// Person is a user as access requests need them: who, in which role,
// and where to write to.
type Person struct {
	ID    string `json:"id"`
	Role  string `json:"role"`
	Email string `json:"email,omitempty"`
	Name  string `json:"name,omitempty"`
}

// Representation is a dataset (or with Dataset AnyDataset, every
// dataset of a node) a user represents.
type Representation struct {
	Node    string `json:"node"`
	Dataset string `json:"dataset"`
}

// validRole reports whether role names a role of users.
func validRole(role string) bool {
	return role == RoleAdmin || role == RoleResearcher || role == RoleRepresentative
}

// SetEmail sets a user's e-mail address and display name.
func (s *store) SetEmail(ctx context.Context, user, email, name string, rec record) error {
	if email != "" {
		a, err := mail.ParseAddress(email)
		if err != nil || a.Address != email {
			return fmt.Errorf("%w: e-mail address %q", ErrInvalid, email)
		}
	}
	if len(name) > 200 {
		return fmt.Errorf("%w: display name too long", ErrInvalid)
	}
	return s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE users SET email = ?, display_name = ? WHERE id = ?`, email, name, user)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: user %s", ErrNotFound, user)
		}
		return rec.run()
	})
}

// AddRepresentative makes user a representative of dataset at node
// (AnyDataset: of every dataset of the node).
func (s *store) AddRepresentative(ctx context.Context, user string, r Representation, rec record) error {
	if !fed.ValidNodeID(r.Node) || r.Dataset == "" || len(r.Dataset) > 64 {
		return fmt.Errorf("%w: representation %s/%s", ErrInvalid, r.Node, r.Dataset)
	}
	return s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE id = ?`, user).Scan(&one); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: user %s", ErrNotFound, user)
			}
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO representatives (user_id, node_id, dataset_id, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			user, r.Node, r.Dataset, s.now().UnixMilli()); err != nil {
			return err
		}
		return rec.run()
	})
}

// RemoveRepresentative ends a representation.
func (s *store) RemoveRepresentative(ctx context.Context, user string, r Representation, rec record) error {
	return s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM representatives WHERE user_id = ? AND node_id = ? AND dataset_id = ?`, user, r.Node, r.Dataset); err != nil {
			return err
		}
		return rec.run()
	})
}

// Represents reports whether user represents dataset at node, directly
// or through AnyDataset. Disabled users represent nothing.
func (s *store) Represents(ctx context.Context, user, node, dataset string) (bool, error) {
	var one int
	err := s.db.QueryRow(ctx, `SELECT 1 FROM representatives r JOIN users u ON u.id = r.user_id
		WHERE r.user_id = ? AND r.node_id = ? AND (r.dataset_id = ? OR r.dataset_id = '*') AND u.disabled_at IS NULL`,
		user, node, dataset).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// Representations lists what user represents.
func (s *store) Representations(ctx context.Context, user string) ([]Representation, error) {
	rows, err := s.db.Query(ctx, `SELECT node_id, dataset_id FROM representatives WHERE user_id = ? ORDER BY node_id, dataset_id`, user)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Representation{}
	for rows.Next() {
		var r Representation
		if err := rows.Scan(&r.Node, &r.Dataset); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Representatives lists the enabled users who represent dataset at node.
func (s *store) Representatives(ctx context.Context, node, dataset string) ([]Person, error) {
	return s.people(ctx, `SELECT DISTINCT u.id, u.role, u.email, u.display_name FROM representatives r JOIN users u ON u.id = r.user_id
		WHERE r.node_id = ? AND (r.dataset_id = ? OR r.dataset_id = '*') AND u.disabled_at IS NULL ORDER BY u.id`, node, dataset)
}

// Admins lists the enabled hub administrators.
func (s *store) Admins(ctx context.Context) ([]Person, error) {
	return s.people(ctx, `SELECT id, role, email, display_name FROM users WHERE role = ? AND disabled_at IS NULL ORDER BY id`, RoleAdmin)
}

// Person returns one user.
func (s *store) Person(ctx context.Context, id string) (Person, error) {
	ps, err := s.people(ctx, `SELECT id, role, email, display_name FROM users WHERE id = ?`, id)
	if err != nil {
		return Person{}, err
	}
	if len(ps) == 0 {
		return Person{}, fmt.Errorf("%w: user %s", ErrNotFound, id)
	}
	return ps[0], nil
}

func (s *store) people(ctx context.Context, q string, args ...any) ([]Person, error) {
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Person{}
	for rows.Next() {
		var p Person
		if err := rows.Scan(&p.ID, &p.Role, &p.Email, &p.Name); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
