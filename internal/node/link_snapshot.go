package node

import (
	"context"
	"encoding/json"

	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/audit"
	"github.com/mosaic-imaging/mosaic/internal/fed"
)

// actionSnapshot is the audit record of a snapshot task answered.
const actionSnapshot = "snapshot-made"

// onSnapshot answers a fed.TaskSnapshot task: it makes (or finds) the
// cohort snapshot and replies with the answer signed by the node. The
// answer carries the digest and floored counts, or an error without
// data; it leaves only once it is in the audit log.
func (l *Link) onSnapshot(m *nats.Msg, task fed.Task) {
	ans := l.snapshotAnswer(task)
	msg, err := fed.Seal(l.key, l.f.Node, ans)
	if err != nil {
		l.n.log.Error("snapshot answer not signed", "err", err)
		return
	}
	if m.Reply != "" {
		if err := m.Respond(msg); err != nil {
			l.n.log.Warn("snapshot answer not sent", "err", err)
		}
	}
}

// snapshotAnswer runs a snapshot task, bounded by its expiry, and records
// it in the audit log.
func (l *Link) snapshotAnswer(task fed.Task) fed.SnapshotAnswer {
	var body fed.SnapshotBody
	var ans fed.SnapshotAnswer
	if err := json.Unmarshal(task.Body, &body); err != nil {
		ans.Error = "malformed snapshot body"
	} else {
		ctx, cancel := context.WithDeadline(context.Background(), task.Expires)
		var err error
		ans, err = l.n.MakeSnapshot(ctx, body)
		cancel()
		if err != nil {
			l.n.log.Warn("snapshot not made", "snapshot", body.Snapshot, "dataset", body.Dataset, "err", err)
			ans = fed.SnapshotAnswer{Snapshot: body.Snapshot, Dataset: body.Dataset, Floor: ans.Floor, Error: snapshotAnswerError(err)}
		}
	}
	ans.Node, ans.TaskID = l.f.Node, task.ID
	if _, err := l.audit.Append(audit.Entry{Actor: actorHub, Action: actionSnapshot, Subject: task.ID, Detail: map[string]any{
		"snapshot": body.Snapshot, "request": body.Request, "dataset": body.Dataset, "subjects": ans.Subjects, "studies": ans.Studies,
		"digest": ans.Digest, "error": ans.Error}}); err != nil {
		l.n.log.Error("audit append failed: the snapshot is not answered", "err", err)
		return fed.SnapshotAnswer{Node: l.f.Node, TaskID: task.ID, Snapshot: body.Snapshot, Dataset: body.Dataset, Floor: ans.Floor,
			Error: "the node could not record the snapshot in its audit log"}
	}
	return ans
}
