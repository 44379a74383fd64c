package node

import (
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/audit"
	"github.com/mosaic-imaging/mosaic/internal/fed"
)

// onTask takes a signed task sent to this node alone (fed.TaskSubject):
// snapshots, permit revocations and relayed DICOMweb requests. Tasks
// that are unsigned, forged, expired, replayed or for another node are
// refused and recorded, never acted on.
func (l *Link) onTask(m *nats.Msg) {
	now := l.clock()
	task, err := fed.OpenTask(l.hubKey, m.Data, l.f.Node, now, 30*time.Second, &l.replay)
	if err != nil {
		l.n.log.Warn("task refused", "err", err)
		if _, aerr := l.audit.Append(audit.Entry{Actor: actorHub, Action: actionTaskRefused, Subject: task.ID, Detail: map[string]any{"reason": err.Error()}}); aerr != nil {
			l.n.log.Error("audit append failed: a refused task is not recorded", "err", aerr)
		}
		return
	}
	switch task.Kind {
	case fed.TaskSnapshot:
		l.onSnapshot(m, task)
	case fed.TaskRevoke:
		l.onRevoke(m, task)
	case fed.TaskRelay:
		l.onRelay(m, task)
	case fed.TaskJob:
		l.onJob(m, task)
	case fed.TaskJobCancel:
		l.onJobCancel(m, task)
	case fed.TaskCompute:
		l.onCompute(m, task)
	default:
		l.n.log.Warn("task refused", "err", "unknown kind", "kind", string(task.Kind))
		if _, aerr := l.audit.Append(audit.Entry{Actor: actorHub, Action: actionTaskRefused, Subject: task.ID, Detail: map[string]any{"reason": "unknown kind"}}); aerr != nil {
			l.n.log.Error("audit append failed: a refused task is not recorded", "err", aerr)
		}
	}
}
