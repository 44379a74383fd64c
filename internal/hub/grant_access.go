package hub

import (
	"context"
	"errors"
	"fmt"

	"github.com/mosaic-imaging/mosaic/internal/access"
)

// wireAccess lends the hub's snapshot, revocation, relay and landing-page
// hooks to an access service: the revoked permits each node is sent, the
// permits the relay route finds, and the snapshots the landing pages
// show (with the catalogue's dataset titles).
func (h *Hub) wireAccess(svc *access.Service) {
	h.SetRevocations(svc.RevocationsFor)
	h.SetPermits(func(ctx context.Context, id, user string) (PermitRef, error) {
		p, err := svc.Permit(ctx, id, user)
		if errors.Is(err, access.ErrNotFound) {
			return PermitRef{}, fmt.Errorf("permit %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return PermitRef{}, err
		}
		return PermitRef{Node: p.Node, Token: p.Token, Expires: p.Expires, Revoked: p.RevokedAt != nil}, nil
	})
	h.SetSnapshots(func(ctx context.Context, id string) (SnapshotView, error) {
		s, err := svc.Snapshot(ctx, id)
		if errors.Is(err, access.ErrNotFound) {
			return SnapshotView{}, fmt.Errorf("snapshot %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return SnapshotView{}, err
		}
		v := SnapshotView{ID: s.ID, Title: s.Title, Query: s.QueryDescription, Created: s.Created}
		for _, p := range s.Datasets {
			d := SnapshotDataset{Node: p.Node, Dataset: p.Dataset, Digest: p.Digest, Subjects: p.Subjects, Studies: p.Studies, Floor: p.Floor, Created: p.Created}
			if e, ok, err := h.findDataset(ctx, p.Node, p.Dataset); err == nil && ok {
				d.Title = e.Title
			}
			v.Datasets = append(v.Datasets, d)
		}
		return v, nil
	})
}
