package node

import (
	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/fed"
)

// onCompute answers one step of a federated computation (contract stub).
func (l *Link) onCompute(m *nats.Msg, task fed.Task) {}
