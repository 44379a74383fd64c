package node

import "net/http"

// tableRoutes mounts the research tables API (contract stub).
func (n *Node) tableRoutes(route func(string, http.HandlerFunc, string)) {}
