package hub

import (
	"context"
	"crypto/ed25519"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/fed"
)

// subscribe listens to the nodes' heartbeats and catalogues. Every
// message is signed by its node; the subject names the node, and NATS
// permissions ensure a node publishes only on its own subjects.
func (h *Hub) subscribe() error {
	for _, sub := range []struct {
		subject string
		fn      func(node string, data []byte)
	}{
		{"mosaic.node.*.heartbeat", h.onHeartbeat},
		{"mosaic.node.*.catalogue", h.onCatalogue},
	} {
		fn := sub.fn
		s, err := h.nc.Subscribe(sub.subject, func(m *nats.Msg) {
			tok := splitSubject(m.Subject)
			if len(tok) != 4 || !fed.ValidNodeID(tok[2]) {
				return
			}
			fn(tok[2], m.Data)
		})
		if err != nil {
			return err
		}
		h.subs = append(h.subs, s)
	}
	return nil
}

func splitSubject(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
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
	first := h.live[node] == nil
	h.live[node] = &liveNode{heartbeat: hb, seen: now}
	h.mu.Unlock()
	if first {
		h.log.Info("node online", "node", node, "version", hb.Version)
	}
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
	if len(c.Datasets) > 1000 {
		h.log.Warn("catalogue refused: too many datasets", "node", node)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.store.PutCatalogue(ctx, c); err != nil {
		h.log.Error("catalogue update failed", "node", node, "err", err)
		return
	}
	h.log.Info("catalogue updated", "node", node, "datasets", len(c.Datasets))
}

// online lists the nodes with a heartbeat within the timeout.
func (h *Hub) online() map[string]fed.Heartbeat {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]fed.Heartbeat{}
	for id, l := range h.live {
		if time.Since(l.seen) <= h.cfg.HeartbeatTimeout {
			out[id] = l.heartbeat
		}
	}
	return out
}
