package node

import (
	"net/http"

	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/fed"
)

// onJob takes a signed job task (contract stub).
func (l *Link) onJob(m *nats.Msg, task fed.Task) {}

// onJobCancel takes a signed job-cancel task (contract stub).
func (l *Link) onJobCancel(m *nats.Msg, task fed.Task) {}

// jobRoutes mounts the node's jobs API (contract stub).
func (n *Node) jobRoutes(route func(string, http.HandlerFunc, string)) {}
