package node

import (
	"context"
	"encoding/json"

	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/audit"
	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/index"
)

// maxRevocations bounds one revocation list.
const maxRevocations = 100000

// onRevoke takes a fed.TaskRevoke task: the hub's list of the permits
// revoked and not yet expired for this node, sent every 15 s and at once
// on a new revocation. Every revocation is stored but those of permits
// past their expiry (refused as expired anyway), which are dropped, as
// are stored ones whose permits have expired since. The list's time is
// recorded as the last time the hub was heard, even for an empty list:
// permits are refused when that is older than permit_offline_limit. A
// revocation counts from the next permit check. Nothing is answered.
func (l *Link) onRevoke(m *nats.Msg, task fed.Task) {
	now := l.clock()
	var body fed.RevokeBody
	if err := json.Unmarshal(task.Body, &body); err != nil || len(body.Revocations) > maxRevocations {
		reason := "malformed revocation list"
		if err == nil {
			reason = "revocation list too long"
		}
		l.n.log.Warn("task refused", "kind", string(task.Kind), "err", reason)
		if _, aerr := l.audit.Append(audit.Entry{Actor: actorHub, Action: actionTaskRefused, Subject: task.ID, Detail: map[string]any{"reason": reason}}); aerr != nil {
			l.n.log.Error("audit append failed: a refused task is not recorded", "err", aerr)
		}
		return
	}
	revs := make([]index.PermitRevocation, 0, len(body.Revocations))
	skipped := 0
	for _, r := range body.Revocations {
		switch {
		case checkPermitID(r.Permit) != nil || len(r.By) > 64:
			skipped++
		case !r.Expires.IsZero() && r.Expires.Before(now):
			// The permit expired: it is refused as expired anyway.
		default:
			revs = append(revs, index.PermitRevocation{Permit: r.Permit, Time: r.Time, Expires: r.Expires, By: r.By, Source: index.RevokedAtHub})
		}
	}
	if skipped > 0 {
		l.n.log.Warn("revocation list: entries with a bad permit id skipped", "task", task.ID, "skipped", skipped)
	}
	// The list is as fresh as the hub says it is, never fresher than the
	// node's own clock.
	heard := task.Issued
	if heard.After(now) {
		heard = now
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.n.cfg.CommitTimeout)
	defer cancel()
	added, err := l.n.ix.SaveHubRevocations(ctx, revs, heard, now)
	if err != nil {
		// Not recorded as heard either: the node stays as stale as it was.
		l.n.log.Error("revocation list not stored", "task", task.ID, "err", err)
		return
	}
	byPermit := make(map[string]string, len(revs))
	for _, r := range revs {
		byPermit[r.Permit] = r.By
	}
	for _, id := range added {
		by := byPermit[id]
		l.n.log.Info("permit revoked by the hub", "permit", id, "by", by)
		if _, aerr := l.audit.Append(audit.Entry{Actor: actorHub, Action: actionPermitRevoked, Subject: id, Detail: map[string]any{"by": by, "task": task.ID}}); aerr != nil {
			l.n.log.Error("audit append failed: a revocation is not recorded", "err", aerr)
		}
	}
}
