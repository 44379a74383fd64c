package hub

import "net/http"

// enableJobs starts the jobs service and the tool catalogue (contract
// stub; the jobs work fills it in).
func (h *Hub) enableJobs() error { return nil }

// jobRoutes mounts the jobs API and pages.
func (h *Hub) jobRoutes(route func(string, http.HandlerFunc)) {}

// onJobEvent takes a node's signed JobEvent.
func (h *Hub) onJobEvent(node string, data []byte) {}
