package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/fed"
)

// The hub's side of cohort snapshots and permit revocations: the tasks
// it sends one node over the federation link, signed with its key
// (fed.TaskSnapshot, fed.TaskRevoke), and the loop that sends every
// linked node the full list of revoked permits. What is revoked and what
// a snapshot is for are decided elsewhere (package access); this file
// only carries them, through hooks set with SetRevocations.

// Errors of Snapshot, for errors.Is.
var (
	// ErrNodeOffline: the node has no open link to the hub.
	ErrNodeOffline = errors.New("hub: the node is not connected to the hub")
	// ErrNodeTimeout: the node did not answer in time.
	ErrNodeTimeout = errors.New("hub: the node did not answer in time")
	// ErrNodeAnswer: the node's answer was refused (bad signature, not
	// the task's, malformed) or said it made no snapshot.
	ErrNodeAnswer = errors.New("hub: the node's answer was refused")
)

// snapshotTimeout bounds how long Snapshot waits for a node (less when
// the caller's context ends sooner); the task expires with it.
const snapshotTimeout = 60 * time.Second

// Audit actions of snapshots: the request is on record before the node
// is sent it, and the node's answer (digest and floored counts, never
// members) after.
const (
	actionSnapshotRequested = "snapshot-requested"
	actionSnapshotMade      = "snapshot-made"
	actionSnapshotFailed    = "snapshot-failed"
)

// accessWiring holds what package access lends the hub: hooks that
// start unset, set once at start-up (cmd/mosaic wires them).
type accessWiring struct {
	mu          sync.Mutex
	revocations func(ctx context.Context, node string) ([]fed.Revocation, error)
	permits     func(ctx context.Context, id, user string) (PermitRef, error)
	forwarder   Forwarder
	snapshots   func(ctx context.Context, id string) (SnapshotView, error)
	// kick asks the revocation loop to send one node its full list at
	// once (a node that came online); sentConn is, per node, the newest
	// NATS client id that was sent its list.
	kick     chan string
	sentConn map[string]uint64
}

func (a *accessWiring) init() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.kick == nil {
		a.kick = make(chan string, 64)
		a.sentConn = map[string]uint64{}
	}
}

// SetRevocations sets the hook that lists the revoked, unexpired permits
// of one node; the hub sends each linked node that list every
// RevocationInterval and whenever the node comes online. Without it the
// list sent is empty: a node uses even an empty list as a sign that it
// still hears from the hub.
func (h *Hub) SetRevocations(fn func(ctx context.Context, node string) ([]fed.Revocation, error)) {
	h.acc.mu.Lock()
	h.acc.revocations = fn
	h.acc.mu.Unlock()
}

// Snapshot asks node to freeze the members that body's query selects in
// one dataset, and returns its signed answer once checked: signed by
// that node's key, for this task, echoing the snapshot and dataset. It
// fails at once with ErrNodeOffline when the node is not connected, with
// ErrNodeTimeout when it does not answer in time (at most a minute, less
// if ctx ends sooner), and with ErrNodeAnswer when the answer is refused
// or says the node made no snapshot. It implements access.Granter.
//
// The request is in the audit log before it is sent (ErrAudit when it
// cannot be written: nothing is sent), and so is the answer: the digest
// and the counts, never members.
func (h *Hub) Snapshot(ctx context.Context, node string, body fed.SnapshotBody) (fed.SnapshotAnswer, error) {
	var none fed.SnapshotAnswer
	switch {
	case ctx.Err() != nil:
		return none, ctx.Err()
	case !fed.ValidNodeID(node):
		return none, fmt.Errorf("hub: snapshot: %q is not a node id", node)
	case body.Snapshot == "" || body.Dataset == "":
		return none, errors.New("hub: snapshot: the snapshot id and the dataset are required")
	case len(body.Query) == 0 || !json.Valid(body.Query):
		return none, errors.New("hub: snapshot: the query is missing or not JSON")
	}
	if _, ok := h.online()[node]; !ok {
		return none, fmt.Errorf("%w: %s (a snapshot needs the node online; try again when it is)", ErrNodeOffline, node)
	}
	pk := h.nodeKey(ctx, node)
	if pk == nil {
		return none, fmt.Errorf("%w: %s has no enrolment key at the hub", ErrNodeOffline, node)
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return none, err
	}
	now := time.Now()
	wait := snapshotTimeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
		wait = max(time.Until(d), 0)
	}
	task := fed.Task{ID: fed.NewID(), Kind: fed.TaskSnapshot, Issued: now, Expires: now.Add(snapshotTimeout), Audience: node, Body: raw}
	msg, err := fed.Seal(h.key, fed.SignerHub, task)
	if err != nil {
		return none, err
	}
	subject := "snapshot:" + body.Snapshot
	if err := h.record("hub", actionSnapshotRequested, subject, map[string]any{
		"task": task.ID, "node": node, "dataset": body.Dataset, "request": body.Request}); err != nil {
		return none, err
	}
	fail := func(err error) (fed.SnapshotAnswer, error) {
		h.note("hub", actionSnapshotFailed, subject, map[string]any{"task": task.ID, "node": node, "dataset": body.Dataset, "error": err.Error()})
		return none, err
	}

	changed := h.nodesChanged()
	inbox := h.nc.NewRespInbox()
	ch := make(chan *nats.Msg, 4)
	sub, err := h.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return fail(err)
	}
	defer sub.Unsubscribe()
	if err := h.nc.PublishRequest(fed.TaskSubject(node), inbox, msg); err != nil {
		return fail(fmt.Errorf("hub: snapshot: sending the task to %s: %w", node, err))
	}
	h.nc.Flush()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	// The hub's watch wakes changed when a node it saw linked goes; a
	// look every half second also catches one that came and went
	// between two of its looks.
	look := time.NewTicker(500 * time.Millisecond)
	defer look.Stop()
	for {
		select {
		case <-ctx.Done():
			return fail(fmt.Errorf("%w: %s, snapshot %s: %v", ErrNodeTimeout, node, body.Snapshot, ctx.Err()))
		case <-timer.C:
			return fail(fmt.Errorf("%w: %s made no snapshot within %s", ErrNodeTimeout, node, wait.Round(time.Millisecond)))
		case <-look.C:
			if _, ok := h.online()[node]; !ok {
				return fail(fmt.Errorf("%w: %s went offline before answering the snapshot", ErrNodeOffline, node))
			}
		case <-changed:
			changed = h.nodesChanged()
			if _, ok := h.online()[node]; !ok {
				return fail(fmt.Errorf("%w: %s went offline before answering the snapshot", ErrNodeOffline, node))
			}
		case m := <-ch:
			if len(m.Data) == 0 {
				// NATS answers a request nobody listens to with an
				// empty "no responders" status.
				return fail(fmt.Errorf("%w: %s does not listen for tasks", ErrNodeOffline, node))
			}
			var a fed.SnapshotAnswer
			signer, err := fed.Unseal(pk, m.Data, &a)
			if err != nil || signer != node {
				h.m.refused.WithLabelValues("signature").Inc()
				h.log.Warn("snapshot answer refused", "node", node, "err", errString(err, signer != node))
				continue // not the node's: wait for its own
			}
			if err := checkSnapshotAnswer(a, node, task.ID, body); err != nil {
				return fail(err)
			}
			if err := h.record("node:"+node, actionSnapshotMade, subject, map[string]any{
				"task": task.ID, "node": node, "dataset": a.Dataset, "request": body.Request, "digest": a.Digest,
				"subjects": a.Subjects, "studies": a.Studies, "floor": a.Floor}); err != nil {
				return none, err
			}
			return a, nil
		}
	}
}

// checkSnapshotAnswer checks a signed answer against the task it answers.
func checkSnapshotAnswer(a fed.SnapshotAnswer, node, taskID string, body fed.SnapshotBody) error {
	switch {
	case a.Node != node:
		return fmt.Errorf("%w: it names node %q", ErrNodeAnswer, a.Node)
	case a.TaskID != taskID:
		return fmt.Errorf("%w: it answers another task", ErrNodeAnswer)
	case a.Snapshot != body.Snapshot || a.Dataset != body.Dataset:
		return fmt.Errorf("%w: it is for snapshot %q of dataset %q, not %q of %q", ErrNodeAnswer, a.Snapshot, a.Dataset, body.Snapshot, body.Dataset)
	case a.Error != "":
		e := a.Error
		if r := []rune(e); len(r) > 300 {
			e = string(r[:300]) + "…"
		}
		return fmt.Errorf("%w: %s made no snapshot: %s", ErrNodeAnswer, node, e)
	case a.Subjects < 0 || a.Studies < 0 || a.Floor < 0:
		return fmt.Errorf("%w: negative counts", ErrNodeAnswer)
	case (a.Subjects > 0 && a.Subjects < a.Floor) || (a.Studies > 0 && a.Studies < a.Floor):
		return fmt.Errorf("%w: counts under the node's own floor of %d", ErrNodeAnswer, a.Floor)
	}
	if !a.DigestOK() {
		return fmt.Errorf("%w: the digest is not 64 lowercase hexadecimal digits, nor empty with counts withheld", ErrNodeAnswer)
	}
	return nil
}

// revokeTaskTTL is how long a revoke task stays valid.
const revokeTaskTTL = time.Minute

// maxRevocationsPerTask keeps a revoke task well under fed.MaxMessage
// (a revocation is about 150 bytes in JSON); longer lists go in several.
const maxRevocationsPerTask = 2000

// Revoked sends node a revoke task for one revoked permit at once. A
// node that is not connected misses it and gets the full list when it
// comes back (see revocationLoop), so Revoked fails only when the task
// cannot be sent (the hub's own NATS connection is down). It implements
// access.Publisher.
func (h *Hub) Revoked(ctx context.Context, node string, r fed.Revocation) error {
	if !fed.ValidNodeID(node) {
		return fmt.Errorf("hub: revocation: %q is not a node id", node)
	}
	if r.Permit == "" {
		return errors.New("hub: revocation: the permit id is required")
	}
	// Sent whether or not the hub counts the node online: a node
	// connected a moment ago gets it, and NATS drops it when no one
	// listens.
	return h.sendRevocations(node, []fed.Revocation{r})
}

// sendRevocations publishes revs to node in revoke tasks (one, empty,
// when revs is).
func (h *Hub) sendRevocations(node string, revs []fed.Revocation) error {
	if revs == nil {
		revs = []fed.Revocation{}
	}
	for first := true; first || len(revs) > 0; first = false {
		part := revs[:min(len(revs), maxRevocationsPerTask)]
		revs = revs[len(part):]
		body, err := json.Marshal(fed.RevokeBody{Revocations: part})
		if err != nil {
			return err
		}
		now := time.Now()
		msg, err := fed.Seal(h.key, fed.SignerHub, fed.Task{ID: fed.NewID(), Kind: fed.TaskRevoke, Issued: now,
			Expires: now.Add(revokeTaskTTL), Audience: node, Body: body})
		if err != nil {
			return err
		}
		if err := h.nc.Publish(fed.TaskSubject(node), msg); err != nil {
			return fmt.Errorf("hub: revocation to %s: %w", node, err)
		}
	}
	return h.nc.Flush()
}

// sendAllRevocations sends node its full list from the hook.
func (h *Hub) sendAllRevocations(ctx context.Context, node string) {
	h.acc.mu.Lock()
	fn := h.acc.revocations
	h.acc.mu.Unlock()
	var revs []fed.Revocation
	if fn != nil {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		list, err := fn(cctx, node)
		cancel()
		if err != nil {
			// Better nothing than an empty list, which would tell the
			// node that nothing is revoked.
			h.log.Error("listing revoked permits failed: the node is sent none this time", "node", node, "err", err)
			return
		}
		revs = list
	}
	if err := h.sendRevocations(node, revs); err != nil {
		h.log.Warn("sending revoked permits failed", "node", node, "err", err)
	}
}

// nodeCameOnline is called on each heartbeat of node (first: the hub
// counted it offline until now): when the node is on a NATS connection
// that was not sent the list of revoked permits yet, the loop sends it.
// Heartbeats come after a node's subscriptions, on every connection.
func (h *Hub) nodeCameOnline(node string, first bool) {
	h.acc.init()
	var newest uint64
	h.mu.Lock()
	for cid, id := range h.clients {
		if id == node && cid > newest {
			newest = cid
		}
	}
	h.mu.Unlock()
	h.acc.mu.Lock()
	send := first || newest > h.acc.sentConn[node]
	if newest > h.acc.sentConn[node] {
		h.acc.sentConn[node] = newest
	}
	kick := h.acc.kick
	h.acc.mu.Unlock()
	if send {
		select {
		case kick <- node:
		default: // the periodic round will do
		}
	}
}

// revocationLoop sends every linked node its full list of revoked
// permits every RevocationInterval, and a node that comes online at
// once, until ctx ends.
func (h *Hub) revocationLoop(ctx context.Context) {
	h.acc.init()
	h.acc.mu.Lock()
	kick := h.acc.kick
	h.acc.mu.Unlock()
	t := time.NewTicker(h.cfg.RevocationInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case node := <-kick:
			h.sendAllRevocations(ctx, node)
		case <-t.C:
			for node := range h.online() {
				if ctx.Err() != nil {
					return
				}
				h.sendAllRevocations(ctx, node)
			}
		}
	}
}

// startRevocations runs revocationLoop; the function it returns waits
// for the loop to end (after ctx does).
func (h *Hub) startRevocations(ctx context.Context) func() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.revocationLoop(ctx)
	}()
	return func() { <-done }
}
