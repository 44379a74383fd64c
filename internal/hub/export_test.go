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

// SealOIDCState makes a login state cookie as the hub does, for tests of
// the callback's checks.
func (h *Hub) SealOIDCState(state, nonce, verifier, next string) string {
	s := oidcState{Next: next, Expires: h.cfg.Clock().Add(oidcStateTTL).Unix()}
	s.State, s.Nonce, s.Verifier = state, nonce, verifier
	return h.sealState(s)
}
