package hub

import "net/http"

func (h *Hub) computePages(route func(string, http.HandlerFunc)) {}
