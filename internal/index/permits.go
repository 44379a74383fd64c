package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// The node's memory of permits (migration 008): what it checked, what
// was revoked, what its operator approved, which datasets need that
// approval, and when it last heard the hub's revocation list. The node
// (internal/node/permits.go) decides; this file only stores.

// PermitUse is one or more checks of a permit whose signature was good:
// its claims, the first and last of the checks, and how many were
// honoured (Uses) and refused (Refusals).
type PermitUse struct {
	ID, Researcher, Node, Dataset, Snapshot string
	Ops                                     []string
	Expires                                 time.Time
	First, Last                             time.Time
	Uses, Refusals                          int64
}

// RecordPermitUse notes checks of a permit: the first adds it to the
// permits seen, every one moves its last use on and adds to its counts.
func (s *Store) RecordPermitUse(ctx context.Context, u PermitUse) error {
	_, err := s.db.Exec(ctx, `INSERT INTO permits_seen (id, researcher, node, dataset_id, snapshot, ops, expires_at, first_at, last_at, uses, refusals)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET last_at = CASE WHEN excluded.last_at > permits_seen.last_at THEN excluded.last_at ELSE permits_seen.last_at END,
			uses = permits_seen.uses + excluded.uses, refusals = permits_seen.refusals + excluded.refusals`,
		u.ID, u.Researcher, u.Node, u.Dataset, u.Snapshot, strings.Join(u.Ops, ","), u.Expires.UnixMilli(), u.First.UnixMilli(), u.Last.UnixMilli(), u.Uses, u.Refusals)
	return err
}

// BindPermit records the content first seen under a permit id: u's
// claims (no counts) and digest, the hex SHA-256 of the canonical
// claims, unless the id is bound already. It returns the digest the id
// is bound to, which differs from digest when other content came first.
func (s *Store) BindPermit(ctx context.Context, u PermitUse, digest string) (string, error) {
	if digest == "" {
		return "", fmt.Errorf("%w: a permit's content digest is empty", ErrInvalid)
	}
	var bound string
	err := s.db.InTx(ctx, func(tx *sqldbTx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO permits_seen (id, researcher, node, dataset_id, snapshot, ops, expires_at, first_at, last_at, uses, refusals, digest)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?)
			ON CONFLICT (id) DO UPDATE SET digest = CASE WHEN permits_seen.digest = '' THEN excluded.digest ELSE permits_seen.digest END`,
			u.ID, u.Researcher, u.Node, u.Dataset, u.Snapshot, strings.Join(u.Ops, ","), u.Expires.UnixMilli(), u.First.UnixMilli(), u.First.UnixMilli(), digest); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT digest FROM permits_seen WHERE id = ?`, u.ID).Scan(&bound)
	})
	return bound, err
}

// RecordPermitConflict counts a permit refused because its content
// differs from the content bound to its id.
func (s *Store) RecordPermitConflict(ctx context.Context, id string, at time.Time) error {
	_, err := s.db.Exec(ctx, `UPDATE permits_seen SET conflicts = conflicts + 1,
		last_conflict_at = CASE WHEN ? > last_conflict_at THEN ? ELSE last_conflict_at END WHERE id = ?`, at.UnixMilli(), at.UnixMilli(), id)
	return err
}

// PermitStatus is what the node's store says of one permit at one
// dataset, read in one query for each check.
type PermitStatus struct {
	// SeenDigest is the content digest the permit id is bound to (""
	// when not bound); ApprovedDigest the one its approval names (""
	// when not approved, or approved before approvals named content).
	SeenDigest, ApprovedDigest string
	DatasetExists              bool
	// RevokedBy is who revoked the permit ("" when it is not revoked).
	RevokedBy       string
	Approved        bool
	RequireApproval bool
	// HubHeard is when the node last heard the hub's revocation list
	// (zero: never).
	HubHeard time.Time
}

// statusHubHeard names the time of the last revocation list from the
// hub in permit_state.
const statusHubHeard = "hub_heard"

// PermitStatus reads, in one query, whether dataset exists, whether the
// permit is revoked or approved, whether the dataset needs approval, and
// when the hub was last heard.
func (s *Store) PermitStatus(ctx context.Context, permitID, dataset string) (PermitStatus, error) {
	var st PermitStatus
	var ds, appr, req, heard int64
	err := s.db.QueryRow(ctx, `SELECT
		(SELECT COUNT(*) FROM datasets WHERE id = ?),
		(SELECT COALESCE(MAX(by_whom), '') FROM permit_revocations WHERE permit_id = ?),
		(SELECT COUNT(*) FROM permit_approvals WHERE permit_id = ?),
		(SELECT COALESCE(MAX(digest), '') FROM permit_approvals WHERE permit_id = ?),
		(SELECT COALESCE(MAX(digest), '') FROM permits_seen WHERE id = ?),
		(SELECT COUNT(*) FROM permit_datasets WHERE dataset_id = ? AND require_approval = 1),
		(SELECT COALESCE(MAX(value), 0) FROM permit_state WHERE name = ?)`,
		dataset, permitID, permitID, permitID, permitID, dataset, statusHubHeard).Scan(&ds, &st.RevokedBy, &appr, &st.ApprovedDigest, &st.SeenDigest, &req, &heard)
	if err != nil {
		return st, err
	}
	st.DatasetExists, st.Approved, st.RequireApproval = ds > 0, appr > 0, req > 0
	if heard > 0 {
		st.HubHeard = time.UnixMilli(heard).UTC()
	}
	return st, nil
}

// PermitRevocation is one revoked permit.
type PermitRevocation struct {
	Permit string
	Time   time.Time
	// Expires is the permit's own expiry, after which the revocation may
	// be forgotten; zero when not known (kept for good).
	Expires time.Time
	By      string // "admin", "representative", "researcher", "node", ...
	Reason  string
	// Source is "hub" or "local".
	Source string
}

// Sources of revocations.
const (
	RevokedAtHub   = "hub"
	RevokedLocally = "local"
)

// SaveHubRevocations stores the revocations of a list the hub sent (a
// permit revoked before keeps its first record), forgets revocations
// whose permits expired before now, and moves the time the hub was last
// heard on to heard (never back), all in one transaction. It returns
// the permits whose revocation is new.
func (s *Store) SaveHubRevocations(ctx context.Context, revs []PermitRevocation, heard, now time.Time) ([]string, error) {
	var added []string
	err := s.db.InTx(ctx, func(tx *sqldbTx) error {
		added = added[:0]
		for _, r := range revs {
			res, err := tx.Exec(ctx, `INSERT INTO permit_revocations (permit_id, revoked_at, expires_at, by_whom, reason, source)
				VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (permit_id) DO NOTHING`,
				r.Permit, r.Time.UnixMilli(), expiresMS(r.Expires), r.By, r.Reason, RevokedAtHub)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err == nil && n > 0 {
				added = append(added, r.Permit)
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM permit_revocations WHERE expires_at > 0 AND expires_at < ?`, now.UnixMilli()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO permit_state (name, value) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET value = CASE WHEN excluded.value > permit_state.value THEN excluded.value ELSE permit_state.value END`,
			statusHubHeard, heard.UnixMilli())
		return err
	})
	return added, err
}

func expiresMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// RevokePermitLocally records the node's own revocation of a permit
// (seen or not); ErrExists when it is revoked already.
func (s *Store) RevokePermitLocally(ctx context.Context, id, reason string, at time.Time) error {
	var exp int64
	err := s.db.QueryRow(ctx, `SELECT expires_at FROM permits_seen WHERE id = ?`, id).Scan(&exp)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	res, err := s.db.Exec(ctx, `INSERT INTO permit_revocations (permit_id, revoked_at, expires_at, by_whom, reason, source)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (permit_id) DO NOTHING`, id, at.UnixMilli(), exp, "node", reason, RevokedLocally)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("%w: permit %s is revoked already", ErrExists, id)
	}
	return nil
}

// ApprovePermit records the operator's approval of the content whose
// digest is given under a permit id; ErrExists when the id is approved
// already. The caller checks that the id is bound to that content.
func (s *Store) ApprovePermit(ctx context.Context, id, digest string, at time.Time) error {
	res, err := s.db.Exec(ctx, `INSERT INTO permit_approvals (permit_id, approved_at, digest) VALUES (?, ?, ?) ON CONFLICT (permit_id) DO NOTHING`, id, at.UnixMilli(), digest)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("%w: permit %s is approved already", ErrExists, id)
	}
	return nil
}

// SetPermitApproval sets whether permits for dataset need the node's
// own approval; ErrNotFound for a dataset that does not exist.
func (s *Store) SetPermitApproval(ctx context.Context, dataset string, required bool, at time.Time) error {
	if _, err := s.Dataset(ctx, dataset); err != nil {
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("%w: no dataset %q", ErrNotFound, dataset)
		}
		return err
	}
	on := 0
	if required {
		on = 1
	}
	_, err := s.db.Exec(ctx, `INSERT INTO permit_datasets (dataset_id, require_approval, changed_at) VALUES (?, ?, ?)
		ON CONFLICT (dataset_id) DO UPDATE SET require_approval = excluded.require_approval, changed_at = excluded.changed_at`,
		dataset, on, at.UnixMilli())
	return err
}

// PermitApprovalRequired lists the datasets whose permits need the
// node's approval.
func (s *Store) PermitApprovalRequired(ctx context.Context) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT dataset_id FROM permit_datasets WHERE require_approval = 1 ORDER BY dataset_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// PermitRecord is all the node knows of one permit: seen (claims and
// use), approved, revoked, or any of these.
type PermitRecord struct {
	ID         string     `json:"id"`
	Researcher string     `json:"researcher,omitempty"`
	Node       string     `json:"node,omitempty"`
	Dataset    string     `json:"dataset,omitempty"`
	Snapshot   string     `json:"snapshot,omitempty"`
	Ops        []string   `json:"ops,omitempty"`
	Expires    *time.Time `json:"expires,omitempty"`
	FirstUsed  *time.Time `json:"first_used,omitempty"`
	LastUsed   *time.Time `json:"last_used,omitempty"`
	Uses       int64      `json:"uses"`
	Refusals   int64      `json:"refusals"`
	Approved   *time.Time `json:"approved,omitempty"`
	Revoked    *time.Time `json:"revoked,omitempty"`
	RevokedBy  string     `json:"revoked_by,omitempty"`
	// RevokedAt is "hub" or "local" for a revoked permit.
	RevokedAt    string `json:"revoked_at,omitempty"`
	RevokeReason string `json:"revoke_reason,omitempty"`
	// Digest is the SHA-256 of the claims bound to the id (first seen);
	// Conflicts counts permits refused under the id for other claims.
	Digest       string     `json:"digest,omitempty"`
	Conflicts    int64      `json:"conflicts"`
	LastConflict *time.Time `json:"last_conflict,omitempty"`
}

// Permits lists every permit the node knows of, by id.
func (s *Store) Permits(ctx context.Context) ([]PermitRecord, error) {
	byID := map[string]*PermitRecord{}
	get := func(id string) *PermitRecord {
		if r := byID[id]; r != nil {
			return r
		}
		r := &PermitRecord{ID: id}
		byID[id] = r
		return r
	}
	ms := func(v int64) *time.Time {
		if v == 0 {
			return nil
		}
		t := time.UnixMilli(v).UTC()
		return &t
	}
	rows, err := s.db.Query(ctx, `SELECT id, researcher, node, dataset_id, snapshot, ops, expires_at, first_at, last_at, uses, refusals, digest, conflicts, last_conflict_at FROM permits_seen`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id, ops string
		var exp, first, last, lastConflict int64
		var r PermitRecord
		if err := rows.Scan(&id, &r.Researcher, &r.Node, &r.Dataset, &r.Snapshot, &ops, &exp, &first, &last, &r.Uses, &r.Refusals, &r.Digest, &r.Conflicts, &lastConflict); err != nil {
			rows.Close()
			return nil, err
		}
		p := get(id)
		*p = r
		p.ID, p.Expires, p.FirstUsed, p.LastUsed, p.LastConflict = id, ms(exp), ms(first), ms(last), ms(lastConflict)
		if ops != "" {
			p.Ops = strings.Split(ops, ",")
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.db.Query(ctx, `SELECT permit_id, approved_at FROM permit_approvals`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		var at int64
		if err := rows.Scan(&id, &at); err != nil {
			rows.Close()
			return nil, err
		}
		get(id).Approved = ms(at)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.db.Query(ctx, `SELECT permit_id, revoked_at, expires_at, by_whom, reason, source FROM permit_revocations`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id, by, reason, source string
		var at, exp int64
		if err := rows.Scan(&id, &at, &exp, &by, &reason, &source); err != nil {
			rows.Close()
			return nil, err
		}
		p := get(id)
		p.Revoked, p.RevokedBy, p.RevokeReason, p.RevokedAt = ms(at), by, reason, source
		if p.Expires == nil {
			p.Expires = ms(exp)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]PermitRecord, 0, len(byID))
	for _, r := range byID {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
