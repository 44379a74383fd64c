package hub

import (
	"context"

	"github.com/mosaic-imaging/mosaic/internal/fed"
)

// PutCatalogue lets the external tests publish a catalogue without a
// node (the hub takes catalogues only from nodes over NATS).
func (h *Hub) PutCatalogue(ctx context.Context, c fed.Catalogue) error {
	return h.store.PutCatalogue(ctx, c)
}
