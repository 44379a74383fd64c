package hub

import "net/http"

// enableCompute starts federated computations (contract stub; the
// compute work fills it in).
func (h *Hub) enableCompute() error { return nil }

// computeRoutes mounts the analyses, learning and validation API and
// pages.
func (h *Hub) computeRoutes(route func(string, http.HandlerFunc)) {}
