package hub

import (
	"context"
	"encoding/json"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/permit"
)

// GrantTestPermit signs c with the hub's key and stores it as the access
// service's permit (under a minimal closed request), as if an access
// request had granted it: for the jobs tests, which need permits of
// every shape (expired, view-only, another dataset).
func (h *Hub) GrantTestPermit(ctx context.Context, c permit.Claims) (string, error) {
	if c.Request == "" {
		c.Request = "req-" + c.ID
	}
	tok, err := permit.Sign(h.key, c)
	if err != nil {
		return "", err
	}
	now := time.Now().UnixMilli()
	if _, err := h.store.db.Exec(ctx, `INSERT INTO access_requests (id, researcher, title, description, duo, query, operations, days, state, created_at, updated_at)
		VALUES (?, ?, 'test', 'test', '[]', '{}', '[]', 1, 'closed', ?, ?) ON CONFLICT DO NOTHING`, c.Request, c.Researcher, now, now); err != nil {
		return "", err
	}
	ops, _ := json.Marshal(c.Operations)
	_, err = h.store.db.Exec(ctx, `INSERT INTO access_permits (id, request_id, researcher, node_id, dataset_id, snapshot_id, operations, expires_at, token)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, c.ID, c.Request, c.Researcher, c.Node, c.Dataset, c.Snapshot, string(ops), c.Expires*1000, tok)
	return tok, err
}

// RevokeTestPermit marks a permit revoked in the access service's
// records only (the node is not told).
func (h *Hub) RevokeTestPermit(ctx context.Context, id string) error {
	_, err := h.store.db.Exec(ctx, `UPDATE access_permits SET revoked_at = ?, revoked_by = 'admin' WHERE id = ?`, time.Now().UnixMilli(), id)
	return err
}
