package hub

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/sqldb"
)

// Node is a registered node as the hub knows it.
type Node struct {
	ID        string     `json:"id"`
	Title     string     `json:"title"`
	Created   time.Time  `json:"created"`
	Enrolled  *time.Time `json:"enrolled,omitempty"`
	PublicKey string     `json:"-"`
	Version   string     `json:"version"`
	LastSeen  *time.Time `json:"last_seen,omitempty"`
	Removed   *time.Time `json:"removed,omitempty"`
	// HeldBack are the datasets the node holds back from the catalogue
	// until their checks pass, with the reasons, as its last catalogue
	// said. For administrators only: never in the public catalogue.
	HeldBack []fed.HeldBack `json:"held_back,omitempty"`
}

// AddNode registers a node and returns a one-time enrolment token valid
// for ttl.
func (s *store) AddNode(ctx context.Context, id, title string, ttl time.Duration, rec record) (string, error) {
	if !fed.ValidNodeID(id) {
		return "", fmt.Errorf("%w: node name %q: use lowercase letters, digits and dashes", ErrInvalid, id)
	}
	tok := newSecret("mhe_")
	now := s.now()
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, `INSERT INTO nodes (id, title, created_at, enroll_hash, enroll_expires_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			id, title, now.UnixMilli(), hashSecret(tok), now.Add(ttl).UnixMilli())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: node %s", ErrExists, id)
		}
		return rec.run()
	})
	if err != nil {
		return "", err
	}
	return tok, nil
}

// Enroll consumes an enrolment token: it records the node's public key
// and a NATS password hash, and returns the node id. A token works once,
// before it expires, for a node not removed. rec, when set, is called
// with the node id inside the transaction, after the change.
func (s *store) Enroll(ctx context.Context, token, publicKey, natsPassword, version string, rec func(id string) error) (string, error) {
	var id string
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		var exp sql.NullInt64
		var removed sql.NullInt64
		err := tx.QueryRow(ctx, `SELECT id, enroll_expires_at, removed_at FROM nodes WHERE enroll_hash = ?`, hashSecret(token)).Scan(&id, &exp, &removed)
		if err != nil || removed.Valid || !exp.Valid || s.now().UnixMilli() > exp.Int64 {
			return ErrAuth
		}
		// The token is consumed in the same statement that checks it, so
		// two concurrent enrolments with it cannot both succeed.
		res, err := tx.Exec(ctx, `UPDATE nodes SET enroll_hash = NULL, enroll_expires_at = NULL, enrolled_at = ?, public_key = ?, nats_hash = ?, version = ?
			WHERE id = ? AND enroll_hash = ?`,
			s.now().UnixMilli(), publicKey, hashSecret(natsPassword), version, id, hashSecret(token))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrAuth
		}
		if rec != nil {
			return rec(id)
		}
		return nil
	})
	return id, err
}

// CheckNodePassword verifies a node's NATS credentials: false for
// unknown, removed or not yet enrolled nodes.
func (s *store) CheckNodePassword(ctx context.Context, id, password string) bool {
	var hash string
	var removed sql.NullInt64
	if err := s.db.QueryRow(ctx, `SELECT nats_hash, removed_at FROM nodes WHERE id = ?`, id).Scan(&hash, &removed); err != nil {
		return false
	}
	return !removed.Valid && hash != "" && subtle.ConstantTimeCompare([]byte(hash), []byte(hashSecret(password))) == 1
}

// RemoveNode marks a node removed: its credentials stop working at once.
func (s *store) RemoveNode(ctx context.Context, id string, rec record) error {
	return s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE nodes SET removed_at = ?, nats_hash = '' WHERE id = ? AND removed_at IS NULL`, s.now().UnixMilli(), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: node %s (or already removed)", ErrNotFound, id)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM catalogue WHERE node_id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM held_back WHERE node_id = ?`, id); err != nil {
			return err
		}
		return rec.run()
	})
}

// SeenNode records a heartbeat.
func (s *store) SeenNode(ctx context.Context, id, version string, at time.Time) error {
	_, err := s.db.Exec(ctx, `UPDATE nodes SET last_seen_at = ?, version = ? WHERE id = ? AND removed_at IS NULL`, at.UnixMilli(), version, id)
	return err
}

// Nodes lists the registered nodes.
func (s *store) Nodes(ctx context.Context) ([]Node, error) {
	rows, err := s.db.Query(ctx, `SELECT id, title, created_at, enrolled_at, public_key, version, last_seen_at, removed_at FROM nodes ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Node
	for rows.Next() {
		var n Node
		var c int64
		var en, ls, rm sql.NullInt64
		if err := rows.Scan(&n.ID, &n.Title, &c, &en, &n.PublicKey, &n.Version, &ls, &rm); err != nil {
			return nil, err
		}
		n.Created = time.UnixMilli(c).UTC()
		n.Enrolled, n.LastSeen, n.Removed = msTime(en), msTime(ls), msTime(rm)
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	held, err := s.heldBack(ctx)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].HeldBack = held[out[i].ID]
	}
	return out, nil
}

// heldBack lists the datasets each node holds back, by node.
func (s *store) heldBack(ctx context.Context) (map[string][]fed.HeldBack, error) {
	rows, err := s.db.Query(ctx, `SELECT node_id, dataset_id, title, tier, reasons FROM held_back ORDER BY node_id, dataset_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]fed.HeldBack{}
	for rows.Next() {
		var node, reasons string
		var h fed.HeldBack
		if err := rows.Scan(&node, &h.ID, &h.Title, &h.Tier, &reasons); err != nil {
			return nil, err
		}
		if json.Unmarshal([]byte(reasons), &h.Reasons) != nil {
			h.Reasons = []string{"(reasons unreadable)"}
		}
		out[node] = append(out[node], h)
	}
	return out, rows.Err()
}

func msTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.UnixMilli(v.Int64).UTC()
	return &t
}

// PutCatalogue replaces a node's published datasets and the list of
// those it holds back. A dataset the message both publishes and holds
// back is held back.
func (s *store) PutCatalogue(ctx context.Context, c fed.Catalogue) error {
	held := map[string]bool{}
	for _, h := range c.HeldBack {
		held[h.ID] = true
	}
	return s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM catalogue WHERE node_id = ?`, c.Node); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM held_back WHERE node_id = ?`, c.Node); err != nil {
			return err
		}
		for _, h := range c.HeldBack {
			b, _ := json.Marshal(h.Reasons)
			if _, err := tx.Exec(ctx, `INSERT INTO held_back (node_id, dataset_id, title, tier, reasons, reported_at) VALUES (?, ?, ?, ?, ?, ?)
				ON CONFLICT (node_id, dataset_id) DO NOTHING`,
				c.Node, h.ID, h.Title, h.Tier, string(b), s.now().UnixMilli()); err != nil {
				return err
			}
		}
		for _, d := range c.Datasets {
			if held[d.ID] {
				continue
			}
			b, _ := json.Marshal(d)
			if _, err := tx.Exec(ctx, `INSERT INTO catalogue (node_id, dataset_id, summary, published_at) VALUES (?, ?, ?, ?)`,
				c.Node, d.ID, string(b), s.now().UnixMilli()); err != nil {
				return err
			}
		}
		return nil
	})
}

// Entry is one dataset of the catalogue.
type Entry struct {
	Node      string             `json:"node"`
	NodeTitle string             `json:"node_title"`
	Dataset   fed.DatasetSummary `json:"dataset"`
	Published time.Time          `json:"published"`
}

// Catalogue lists every published dataset of nodes not removed.
func (s *store) Catalogue(ctx context.Context) ([]Entry, error) {
	rows, err := s.db.Query(ctx, `SELECT c.node_id, n.title, c.summary, c.published_at FROM catalogue c JOIN nodes n ON n.id = c.node_id
		WHERE n.removed_at IS NULL ORDER BY c.node_id, c.dataset_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var sum string
		var p int64
		if err := rows.Scan(&e.Node, &e.NodeTitle, &sum, &p); err != nil {
			return nil, err
		}
		if json.Unmarshal([]byte(sum), &e.Dataset) != nil {
			continue
		}
		e.Published = time.UnixMilli(p).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}
