package node

import "net/http"

// airlockRoutes mounts the airlock API and page (contract stub).
func (n *Node) airlockRoutes(route func(string, http.HandlerFunc, string)) {}
