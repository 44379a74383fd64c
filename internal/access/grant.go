package access

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/lens"
	"github.com/mosaic-imaging/mosaic/internal/permit"
	"github.com/mosaic-imaging/mosaic/internal/sqldb"
)

// snapshotTimeout bounds a node's answer to a snapshot task.
const snapshotTimeout = 60 * time.Second

// snapshot makes sure the request has its snapshot id, asks the node to
// freeze the dataset's cohort, and returns what the grant's transaction
// stores: the snapshot part and the signed permit. A failed snapshot
// leaves the dataset in its state, with the error recorded on it.
func (s *Service) snapshot(ctx context.Context, r *Request, d DatasetState) (func(tx *sqldb.Tx) error, error) {
	snap, err := s.snapshotID(ctx, r)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
	ans, err := s.granter.Snapshot(sctx, d.Node, fed.SnapshotBody{Snapshot: snap, Request: r.ID, Dataset: d.Dataset, Query: r.Query})
	cancel()
	switch {
	case err != nil:
		err = fmt.Errorf("%w: node %s: %v", ErrSnapshot, d.Node, err)
	case ans.Error != "":
		err = fmt.Errorf("%w: node %s: %s", ErrSnapshot, d.Node, ans.Error)
	case ans.Node != d.Node || ans.Snapshot != snap || ans.Dataset != d.Dataset:
		err = fmt.Errorf("%w: node %s answered for another snapshot", ErrSnapshot, d.Node)
	case !ans.DigestOK() || ans.Subjects < 0 || ans.Studies < 0 || ans.Floor < 0:
		err = fmt.Errorf("%w: node %s sent a malformed answer", ErrSnapshot, d.Node)
	}
	if err != nil {
		msg := err.Error()
		if len(msg) > 500 {
			msg = msg[:500]
		}
		if _, uerr := s.db.Exec(ctx, `UPDATE access_datasets SET error = ? WHERE request_id = ? AND node_id = ? AND dataset_id = ?`,
			msg, r.ID, d.Node, d.Dataset); uerr != nil {
			s.log.Error("access: recording a failed snapshot", "err", uerr)
		}
		return nil, err
	}
	now := s.now()
	claims := permit.Claims{
		ID:         randomID("", 16),
		Researcher: r.Researcher,
		Node:       d.Node,
		Dataset:    d.Dataset,
		Snapshot:   snap,
		Request:    r.ID,
		Operations: r.Operations,
		Purpose:    r.Title,
		IssuedAt:   now.Unix(),
		NotBefore:  now.Unix(),
		Expires:    now.Add(time.Duration(r.Days) * 24 * time.Hour).Unix(),
	}
	token, err := permit.Sign(s.key, claims)
	if err != nil {
		return nil, fmt.Errorf("access: signing the permit: %w", err)
	}
	ops, _ := json.Marshal(claims.Operations)
	created := ans.Created
	if created.IsZero() {
		created = now
	}
	return func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO access_snapshot_parts (snapshot_id, node_id, dataset_id, digest, subjects, studies, floor, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, snap, d.Node, d.Dataset, ans.Digest, ans.Subjects, ans.Studies, ans.Floor, ms(created)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO access_permits (id, request_id, researcher, node_id, dataset_id, snapshot_id, operations, expires_at, token)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, claims.ID, r.ID, r.Researcher, d.Node, d.Dataset, snap, string(ops), claims.Expires*1000, token)
		return err
	}, nil
}

// snapshotID returns the request's snapshot id, making it (and the
// snapshot's record) on the first grant.
func (s *Service) snapshotID(ctx context.Context, r *Request) (string, error) {
	if r.Snapshot != "" {
		return r.Snapshot, nil
	}
	id := randomID("snap-", 10)
	desc := ""
	if q, err := lens.Parse(r.Query); err == nil {
		desc = q.Describe()
	}
	var out string
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE access_requests SET snapshot = ? WHERE id = ? AND snapshot = ''`, id, r.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			if _, err := tx.Exec(ctx, `INSERT INTO access_snapshots (id, request_id, query, description, created_at) VALUES (?, ?, ?, ?, ?)`,
				id, r.ID, string(r.Query), desc, ms(s.now())); err != nil {
				return err
			}
		}
		return tx.QueryRow(ctx, `SELECT snapshot FROM access_requests WHERE id = ?`, r.ID).Scan(&out)
	})
	return out, err
}

// SnapshotPart is one dataset's part of a snapshot: the node's digest of
// its member list and its counts as the node floored them.
type SnapshotPart struct {
	Node     string    `json:"node"`
	Dataset  string    `json:"dataset"`
	Digest   string    `json:"digest"`
	Subjects int       `json:"subjects"`
	Studies  int       `json:"studies"`
	Floor    int       `json:"floor"`
	Created  time.Time `json:"created"`
}

// SnapshotRecord is a snapshot as its public landing page shows it.
type SnapshotRecord struct {
	ID               string          `json:"id"`
	Title            string          `json:"title"`
	Query            json.RawMessage `json:"query"`
	QueryDescription string          `json:"query_description"`
	Created          time.Time       `json:"created"`
	Datasets         []SnapshotPart  `json:"datasets"`
}

// Snapshot returns a snapshot's public record.
func (s *Service) Snapshot(ctx context.Context, id string) (*SnapshotRecord, error) {
	var r SnapshotRecord
	var query string
	var created int64
	err := s.db.QueryRow(ctx, `SELECT s.id, r.title, s.query, s.description, s.created_at FROM access_snapshots s JOIN access_requests r ON r.id = s.request_id WHERE s.id = ?`, id).
		Scan(&r.ID, &r.Title, &query, &r.QueryDescription, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: snapshot %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	r.Query, r.Created = json.RawMessage(query), fromMS(created)
	rows, err := s.db.Query(ctx, `SELECT node_id, dataset_id, digest, subjects, studies, floor, created_at FROM access_snapshot_parts WHERE snapshot_id = ? ORDER BY node_id, dataset_id`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	r.Datasets = []SnapshotPart{}
	for rows.Next() {
		var p SnapshotPart
		var c int64
		if err := rows.Scan(&p.Node, &p.Dataset, &p.Digest, &p.Subjects, &p.Studies, &p.Floor, &c); err != nil {
			return nil, err
		}
		p.Created = fromMS(c)
		r.Datasets = append(r.Datasets, p)
	}
	return &r, rows.Err()
}

func (s *Service) permitRecord(ctx context.Context, id string) (PermitRecord, error) {
	var p PermitRecord
	var ops string
	var exp int64
	var revoked sql.NullInt64
	err := s.db.QueryRow(ctx, `SELECT id, request_id, researcher, node_id, dataset_id, snapshot_id, operations, expires_at, token, revoked_at FROM access_permits WHERE id = ?`, id).
		Scan(&p.ID, &p.Request, &p.Researcher, &p.Node, &p.Dataset, &p.Snapshot, &ops, &exp, &p.Token, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("%w: permit %s", ErrNotFound, id)
	}
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal([]byte(ops), &p.Operations); err != nil {
		return p, err
	}
	p.Expires = fromMS(exp)
	if revoked.Valid {
		t := fromMS(revoked.Int64)
		p.RevokedAt = &t
	}
	return p, nil
}

// Permit returns permit id of user, for the relay. Another user's permit
// is not found: its existence is not revealed.
func (s *Service) Permit(ctx context.Context, id, user string) (PermitRecord, error) {
	p, err := s.permitRecord(ctx, id)
	if err != nil {
		return PermitRecord{}, err
	}
	if p.Researcher != user {
		return PermitRecord{}, fmt.Errorf("%w: permit %s", ErrNotFound, id)
	}
	return p, nil
}

// Revoke revokes a permit: by a hub admin, a representative of its
// dataset, or its researcher. Anyone else is told it does not exist. The
// revocation is stored, then sent to the node at once; a node that does
// not hear of it then learns it from RevocationsFor.
func (s *Service) Revoke(ctx context.Context, actor Person, id string) error {
	p, err := s.permitRecord(ctx, id)
	if err != nil {
		return err
	}
	by := ""
	switch {
	case p.Researcher == actor.ID:
		by = RoleResearcher
	case actor.Role == RoleAdmin:
		by = RoleAdmin
	default:
		ok, err := s.dir.Represents(ctx, actor.ID, p.Node, p.Dataset)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: permit %s", ErrNotFound, id)
		}
		by = RoleRepresentative
	}
	now := s.now()
	err = s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE access_permits SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL`, ms(now), by, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: permit %s is already revoked", ErrConflict, id)
		}
		if _, err := tx.Exec(ctx, `UPDATE access_datasets SET state = ?, since = ? WHERE request_id = ? AND node_id = ? AND dataset_id = ? AND state = ?`,
			DSRevoked, ms(now), p.Request, p.Node, p.Dataset, DSGranted); err != nil {
			return err
		}
		return s.audit(actor.ID, "access.revoke", id, map[string]any{"node": p.Node, "dataset": p.Dataset, "by": by})
	})
	if err != nil {
		return err
	}
	rev := fed.Revocation{Permit: id, Time: now.UTC(), Expires: p.Expires, By: by}
	if err := s.pub.Revoked(ctx, p.Node, rev); err != nil {
		s.log.Warn("access: revocation not delivered at once; it is sent again with the others", "node", p.Node, "permit", id, "err", err)
	}
	to := s.people(ctx, p.Researcher)
	if reps, err := s.dir.Representatives(ctx, p.Node, p.Dataset); err == nil {
		to = append(to, reps...)
	}
	title := ""
	s.db.QueryRow(ctx, `SELECT title FROM access_requests WHERE id = ?`, p.Request).Scan(&title)
	s.notify(ctx, actor.ID, p.Request, to, "Permit revoked: "+title,
		fmt.Sprintf("The permit %s for dataset %s/%s was revoked (by the %s).", id, p.Node, p.Dataset, by))
	return nil
}

// RevocationsFor lists the revoked permits of node that have not
// expired yet: the hub sends them to the node periodically.
func (s *Service) RevocationsFor(ctx context.Context, node string) ([]fed.Revocation, error) {
	rows, err := s.db.Query(ctx, `SELECT id, revoked_at, revoked_by, expires_at FROM access_permits
		WHERE node_id = ? AND revoked_at IS NOT NULL AND expires_at > ? ORDER BY revoked_at, id`, node, ms(s.now()))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []fed.Revocation{}
	for rows.Next() {
		var r fed.Revocation
		var at, exp int64
		if err := rows.Scan(&r.Permit, &at, &r.By, &exp); err != nil {
			return nil, err
		}
		r.Time, r.Expires = fromMS(at), fromMS(exp)
		out = append(out, r)
	}
	return out, rows.Err()
}

// cleanHeader keeps a mail header value on one line.
func cleanHeader(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r < 0x20 {
			return ' '
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
