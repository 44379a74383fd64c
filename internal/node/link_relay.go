package node

import (
	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/fed"
)

// onRelay handles a fed.TaskRelay task (not built yet).
func (l *Link) onRelay(m *nats.Msg, task fed.Task) {
	l.n.log.Warn("task kind not supported yet", "kind", string(task.Kind))
}
