package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/fed"
)

// maxAsk bounds how long Ask waits for a node, whatever the caller asks.
const maxAsk = 10 * time.Minute

// Ask sends node a signed task of kind with body and waits, at most wait
// (and no longer than ctx allows), for the node's signed answer, which it
// decodes into answer. It fails at once with ErrNodeOffline when the node
// is not connected or goes away before answering, with ErrNodeTimeout
// when no answer comes in time; answers not signed by the node are
// dropped (and counted) while it waits. It returns the task's id, which
// the caller checks the answer against. Ask writes nothing to the audit
// log: its callers record what they ask and what they get.
func (h *Hub) Ask(ctx context.Context, node string, kind fed.TaskKind, body any, wait time.Duration, answer any) (taskID string, err error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if !fed.ValidNodeID(node) {
		return "", fmt.Errorf("hub: %q is not a node id", node)
	}
	if _, ok := h.online()[node]; !ok {
		return "", fmt.Errorf("%w: %s", ErrNodeOffline, node)
	}
	pk := h.nodeKey(ctx, node)
	if pk == nil {
		return "", fmt.Errorf("%w: %s has no enrolment key at the hub", ErrNodeOffline, node)
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return "", err
	}
	wait = min(max(wait, time.Second), maxAsk)
	if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
		wait = max(time.Until(d), 0)
	}
	now := time.Now()
	// A task's window is at most an hour (fed.OpenTask); the node must
	// receive it within the wait, so the window need not be longer.
	task := fed.Task{ID: fed.NewID(), Kind: kind, Issued: now, Expires: now.Add(min(wait+30*time.Second, time.Hour)), Audience: node, Body: raw}
	msg, err := fed.Seal(h.key, fed.SignerHub, task)
	if err != nil {
		return "", err
	}
	if len(msg) > fed.MaxMessage {
		return "", fmt.Errorf("hub: the %s task for %s is %d bytes, more than %d", kind, node, len(msg), fed.MaxMessage)
	}
	changed := h.nodesChanged()
	inbox := h.nc.NewRespInbox()
	ch := make(chan *nats.Msg, 4)
	sub, err := h.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return task.ID, err
	}
	defer sub.Unsubscribe()
	if err := h.nc.PublishRequest(fed.TaskSubject(node), inbox, msg); err != nil {
		return task.ID, fmt.Errorf("hub: sending the %s task to %s: %w", kind, node, err)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	look := time.NewTicker(500 * time.Millisecond)
	defer look.Stop()
	for {
		select {
		case <-ctx.Done():
			return task.ID, fmt.Errorf("%w: %s, %s task: %v", ErrNodeTimeout, node, kind, ctx.Err())
		case <-timer.C:
			return task.ID, fmt.Errorf("%w: %s did not answer the %s task within %s", ErrNodeTimeout, node, kind, wait.Round(time.Millisecond))
		case <-look.C:
			if _, ok := h.online()[node]; !ok {
				return task.ID, fmt.Errorf("%w: %s went offline before answering", ErrNodeOffline, node)
			}
		case <-changed:
			changed = h.nodesChanged()
			if _, ok := h.online()[node]; !ok {
				return task.ID, fmt.Errorf("%w: %s went offline before answering", ErrNodeOffline, node)
			}
		case m := <-ch:
			if len(m.Data) == 0 {
				return task.ID, fmt.Errorf("%w: %s does not listen for tasks", ErrNodeOffline, node)
			}
			signer, err := fed.Unseal(pk, m.Data, answer)
			if err != nil || signer != node {
				h.m.refused.WithLabelValues("signature").Inc()
				h.log.Warn("answer refused", "node", node, "kind", string(kind), "err", errString(err, signer != node))
				continue
			}
			return task.ID, nil
		}
	}
}

// NodeKey returns an enrolled node's public key, nil when the node is
// unknown: for checking what nodes sign, and for the peers of a secure
// aggregation.
func (h *Hub) NodeKey(ctx context.Context, node string) []byte { return h.nodeKey(ctx, node) }

// Online lists the nodes linked to the hub now.
func (h *Hub) Online() []string {
	var ids []string
	for id := range h.online() {
		ids = append(ids, id)
	}
	return ids
}
