package node

import (
	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/fed"
)

// onRevoke handles a fed.TaskRevoke task (not built yet).
func (l *Link) onRevoke(m *nats.Msg, task fed.Task) {
	l.n.log.Warn("task kind not supported yet", "kind", string(task.Kind))
}
