package hub

import (
	"context"
	"crypto/ed25519"
	"maps"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/fed"
)

// subscribe listens to the nodes' heartbeats, catalogues and leaving
// messages. Every message is signed by its node; the subject names the
// node, and NATS permissions ensure a node publishes only on its own
// subjects.
func (h *Hub) subscribe() error {
	handlers := map[fed.NodeMessage]func(node string, data []byte){
		fed.MsgHeartbeat: h.onHeartbeat,
		fed.MsgCatalogue: h.onCatalogue,
		fed.MsgLeaving:   h.onLeaving,
		fed.MsgJob:       h.onJobEvent,
	}
	for _, kind := range fed.NodeMessages {
		fn := handlers[kind]
		s, err := h.nc.Subscribe(fed.NodeSubjects(kind), func(m *nats.Msg) {
			node, k, ok := fed.ParseNodeSubject(m.Subject)
			if !ok || k != kind {
				return
			}
			fn(node, m.Data)
		})
		if err != nil {
			return err
		}
		h.subs = append(h.subs, s)
	}
	return nil
}

// nodeKey returns an enrolled node's public key (cached).
func (h *Hub) nodeKey(ctx context.Context, id string) ed25519.PublicKey {
	h.mu.Lock()
	k, ok := h.keys[id]
	h.mu.Unlock()
	if ok {
		return k
	}
	nodes, err := h.store.Nodes(ctx)
	if err != nil {
		return nil
	}
	for _, n := range nodes {
		if n.ID == id && n.Removed == nil && n.PublicKey != "" {
			if pk, err := fed.DecodeKey(n.PublicKey); err == nil {
				h.mu.Lock()
				h.keys[id] = pk
				h.mu.Unlock()
				return pk
			}
		}
	}
	return nil
}

func (h *Hub) forgetKey(id string) {
	h.mu.Lock()
	delete(h.keys, id)
	delete(h.live, id)
	h.mu.Unlock()
}

// verifyFrom checks that data was signed by node and decodes it.
func (h *Hub) verifyFrom(node string, data []byte, v any) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	pk := h.nodeKey(ctx, node)
	if pk == nil {
		return false
	}
	signer, err := fed.Unseal(pk, data, v)
	if err != nil || signer != node {
		h.log.Warn("node message refused", "node", node, "err", errString(err, signer != node))
		h.m.refused.WithLabelValues("signature").Inc()
		return false
	}
	return true
}

func errString(err error, wrongSigner bool) string {
	if err != nil {
		return err.Error()
	}
	if wrongSigner {
		return "signed as another node"
	}
	return ""
}

func (h *Hub) onHeartbeat(node string, data []byte) {
	var hb fed.Heartbeat
	if !h.verifyFrom(node, data, &hb) || hb.Node != node {
		return
	}
	now := time.Now()
	h.mu.Lock()
	prev := h.live[node]
	if prev != nil && !prev.left.IsZero() && !hb.Time.After(prev.left) && now.Sub(prev.leftAt) < h.cfg.HeartbeatTimeout {
		// Sent before the node said it was leaving, and came after.
		h.mu.Unlock()
		return
	}
	first := prev == nil || !prev.left.IsZero()
	h.live[node] = &liveNode{heartbeat: hb, seen: now}
	h.mu.Unlock()
	if first {
		h.log.Info("node online", "node", node, "version", hb.Version)
	}
	h.nodeCameOnline(node, first)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := h.store.SeenNode(ctx, node, hb.Version, now); err != nil {
		h.log.Warn("recording heartbeat failed", "node", node, "err", err)
	}
}

func (h *Hub) onCatalogue(node string, data []byte) {
	var c fed.Catalogue
	if !h.verifyFrom(node, data, &c) || c.Node != node {
		return
	}
	if len(c.Datasets) > 1000 || len(c.HeldBack) > 1000 {
		h.log.Warn("catalogue refused: too many datasets", "node", node)
		return
	}
	for i := range c.HeldBack {
		c.HeldBack[i] = trimHeldBack(c.HeldBack[i])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.store.PutCatalogue(ctx, c); err != nil {
		h.log.Error("catalogue update failed", "node", node, "err", err)
		return
	}
	h.log.Info("catalogue updated", "node", node, "datasets", len(c.Datasets), "held_back", len(c.HeldBack))
}

// trimHeldBack bounds what the hub keeps of a held-back dataset: its
// title and at most 20 reasons, each cut to 200 characters.
func trimHeldBack(hb fed.HeldBack) fed.HeldBack {
	cut := func(s string) string {
		if r := []rune(s); len(r) > 200 {
			return string(r[:200]) + "…"
		}
		return s
	}
	hb.Title = cut(hb.Title)
	if len(hb.Reasons) > 20 {
		hb.Reasons = hb.Reasons[:20]
	}
	for i, r := range hb.Reasons {
		hb.Reasons[i] = cut(r)
	}
	return hb
}

// onLeaving takes a node offline at once: it said it is stopping.
func (h *Hub) onLeaving(node string, data []byte) {
	var lv fed.Leaving
	if !h.verifyFrom(node, data, &lv) || lv.Node != node {
		return
	}
	h.mu.Lock()
	l := h.live[node]
	if l == nil {
		l = &liveNode{}
		h.live[node] = l
	}
	l.left, l.leftAt = lv.Time, time.Now()
	h.notifyChangedLocked()
	h.mu.Unlock()
	h.log.Info("node offline: it is stopping", "node", node)
}

// nodesChanged returns a channel closed when a node next goes offline.
func (h *Hub) nodesChanged() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.changed == nil {
		h.changed = make(chan struct{})
	}
	return h.changed
}

// notifyChangedLocked wakes whoever waits on nodesChanged; h.mu is held.
func (h *Hub) notifyChangedLocked() {
	if h.changed != nil {
		close(h.changed)
	}
	h.changed = make(chan struct{})
}

// connectedNodes returns the nodes with a connection open to the
// embedded NATS server, or nil when the hub uses an external server
// (whose connections it cannot see). The server drops a connection as
// soon as its socket closes: a node whose process died is seen gone at
// once, without waiting for heartbeats to stop.
func (h *Hub) connectedNodes() map[string]bool {
	conn, _ := h.connections()
	return conn
}

// connections returns the nodes with a connection open and the closed
// connections h.clients still holds. The server is asked without h.mu
// held: it calls natsAuth.Check, which takes h.mu, under locks of its
// own.
func (h *Hub) connections() (map[string]bool, []uint64) {
	if h.ns == nil {
		return nil, nil
	}
	h.mu.Lock()
	clients := maps.Clone(h.clients)
	h.mu.Unlock()
	conn := map[string]bool{}
	var closed []uint64
	for cid, id := range clients {
		if h.ns.GetClient(cid) != nil {
			conn[id] = true
		} else {
			closed = append(closed, cid)
		}
	}
	return conn, closed
}

// checkConnections forgets closed connections and wakes the searches
// waiting for a node that lost its last one (watch calls it every
// second).
func (h *Hub) checkConnections() {
	conn, closed := h.connections()
	if conn == nil {
		return
	}
	var lost []string
	h.mu.Lock()
	for _, cid := range closed {
		delete(h.clients, cid)
	}
	for id := range h.linked {
		if !conn[id] {
			lost = append(lost, id)
		}
	}
	h.linked = conn
	if len(lost) > 0 {
		h.notifyChangedLocked()
	}
	h.mu.Unlock()
	for _, id := range lost {
		h.log.Info("node offline: its connection closed", "node", id)
	}
}

// online lists the nodes with a heartbeat within the timeout that did
// not say they are leaving and, on the embedded NATS server, still have
// a connection open.
func (h *Hub) online() map[string]fed.Heartbeat {
	conn := h.connectedNodes()
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]fed.Heartbeat{}
	for id, l := range h.live {
		if l.left.IsZero() && time.Since(l.seen) <= h.cfg.HeartbeatTimeout && (conn == nil || conn[id]) {
			out[id] = l.heartbeat
		}
	}
	return out
}
