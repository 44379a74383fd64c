package compute

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/permit"
)

// Chunked transfer. A signed message carries at most fed.MaxMessage, so
// large payloads travel as a series of steps of the same computation,
// each carrying and checking the permit as every step does:
//
//   - hub to node, the round's global weights: StepWeightsChunk sends
//     byte ranges of the safetensors file; StepTrain then names the
//     file's digest and length (TrainParams.WeightsDigest) instead of
//     carrying it. The node assembles the chunks per computation, round
//     and permit in a bounded buffer and checks the digest.
//   - node to hub, a large answer (a secure aggregation's masked part,
//     a plain update): the node keeps the answer and says only its digest
//     and length (a ChunkedResult); the hub fetches it with
//     StepResultChunk and checks the digest before reading it.
//
// Small payloads stay inline.
const (
	// StepWeightsChunk sends a range of the round's global weights.
	StepWeightsChunk = "weights-chunk"
	// StepResultChunk asks for a range of a large answer kept at the node.
	StepResultChunk = "result-chunk"
)

// Sizes of chunked transfer. A chunk of chunkSize raw bytes travels as
// base64 inside base64 (16/9), well under fed.MaxMessage.
const (
	chunkSize = 512 << 10
	// maxInlineResult is the largest answer (its JSON) sent inline.
	maxInlineResult = 640 << 10
	// DefaultMaxTransfer is a node's default bound on one transfer's
	// total (Node.MaxTransfer).
	DefaultMaxTransfer = 512 << 20
	// maxTransfers and maxOffers bound the pending transfers at a node,
	// maxTransferMemory their bytes, transferLife their age.
	maxTransfers      = 16
	maxOffers         = 32
	maxTransferMemory = 2 << 30
	transferLife      = 15 * time.Minute
	// maxResultBytes bounds a large answer the hub fetches.
	maxResultBytes = 1 << 30
	// MaxWeightsBytes bounds a learning run's weights file.
	MaxWeightsBytes = 128 << 20
)

// WeightsChunkParams are the parameters of StepWeightsChunk: a range of
// the weights file whose SHA-256 digest (sha256:hex) and total length
// are named.
type WeightsChunkParams struct {
	Digest string `json:"digest"`
	Offset int64  `json:"offset"`
	Total  int64  `json:"total"`
	Data   []byte `json:"data"`
}

// WeightsChunkResult answers StepWeightsChunk: the bytes the node holds
// of the file so far.
type WeightsChunkResult struct {
	Received int64 `json:"received"`
}

// ChunkedResult stands for a large answer kept at the node, to be
// fetched with StepResultChunk.
type ChunkedResult struct {
	Digest string `json:"digest"`
	Length int64  `json:"length"`
}

// chunkedAnswer is how a node's answer names a kept large answer.
type chunkedAnswer struct {
	Chunked ChunkedResult `json:"chunked_result"`
}

var chunkedPrefix = []byte(`{"chunked_result":`)

// ResultChunkParams are the parameters of StepResultChunk.
type ResultChunkParams struct {
	Digest string `json:"digest"`
	Offset int64  `json:"offset"`
	Length int64  `json:"length"`
}

// ResultChunkResult answers StepResultChunk.
type ResultChunkResult struct {
	Data []byte `json:"data"`
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// transfer is a weights file being assembled at the node.
type transfer struct {
	comp, permit, digest string
	round                int
	data                 []byte
	total                int64
	created              time.Time
}

// offer is a large answer kept at the node until the hub fetched it.
type offer struct {
	comp, permit string
	data         []byte
	created      time.Time
}

// chunkStore holds a node's pending transfers.
type chunkStore struct {
	mu        sync.Mutex
	transfers map[string]*transfer // by computation, round and digest
	offers    map[string]*offer    // by digest
}

func transferKey(comp string, round int, digest string) string {
	return fmt.Sprintf("%s/%d/%s", comp, round, digest)
}

// bytes counts the memory held; the caller holds mu.
func (c *chunkStore) held() int64 {
	var n int64
	for _, t := range c.transfers {
		n += int64(cap(t.data))
	}
	for _, o := range c.offers {
		n += int64(len(o.data))
	}
	return n
}

// expire drops old transfers; the caller holds mu.
func (c *chunkStore) expire(now time.Time) {
	for k, t := range c.transfers {
		if now.Sub(t.created) > transferLife {
			delete(c.transfers, k)
		}
	}
	for k, o := range c.offers {
		if now.Sub(o.created) > transferLife {
			delete(c.offers, k)
		}
	}
}

// forget drops what the store keeps of comp.
func (c *chunkStore) forget(comp string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, t := range c.transfers {
		if t.comp == comp {
			delete(c.transfers, k)
		}
	}
	for k, o := range c.offers {
		if o.comp == comp {
			delete(c.offers, k)
		}
	}
}

func (n *Node) maxTransfer() int64 {
	if n.MaxTransfer > 0 {
		return n.MaxTransfer
	}
	return DefaultMaxTransfer
}

// chunkStep answers the chunk steps; ok is false for any other step.
func (n *Node) chunkStep(claims permit.Claims, body fed.ComputeBody) (result any, ok bool, err error) {
	switch body.Step {
	case StepWeightsChunk:
		var p WeightsChunkParams
		if err := json.Unmarshal(body.Params, &p); err != nil {
			return nil, true, refuse(fed.RefusedInvalid, "malformed chunk parameters")
		}
		r, err := n.weightsChunk(claims, body, p)
		return r, true, err
	case StepResultChunk:
		var p ResultChunkParams
		if err := json.Unmarshal(body.Params, &p); err != nil {
			return nil, true, refuse(fed.RefusedInvalid, "malformed chunk parameters")
		}
		r, err := n.resultChunk(claims, body, p)
		return r, true, err
	}
	return nil, false, nil
}

func (n *Node) weightsChunk(claims permit.Claims, body fed.ComputeBody, p WeightsChunkParams) (any, error) {
	if len(p.Digest) != len("sha256:")+64 || p.Digest[:7] != "sha256:" {
		return nil, refuse(fed.RefusedInvalid, "a chunk must name its file's sha256 digest")
	}
	if p.Total < 1 || p.Total > n.maxTransfer() {
		return nil, refuse(fed.RefusedInvalid, "a transfer of %d bytes; this node takes 1 to %d", p.Total, n.maxTransfer())
	}
	if len(p.Data) == 0 || len(p.Data) > chunkSize || p.Offset < 0 || p.Offset+int64(len(p.Data)) > p.Total {
		return nil, refuse(fed.RefusedInvalid, "a chunk of %d bytes at %d does not fit a transfer of %d", len(p.Data), p.Offset, p.Total)
	}
	c := &n.chunks
	c.mu.Lock()
	defer c.mu.Unlock()
	now := n.now()
	c.expire(now)
	if c.transfers == nil {
		c.transfers = map[string]*transfer{}
	}
	key := transferKey(body.Computation, body.Round, p.Digest)
	t, found := c.transfers[key]
	if found && (t.permit != claims.ID || t.total != p.Total) {
		return nil, refuse(fed.RefusedInvalid, "the chunk does not belong to the transfer under way")
	}
	if !found {
		if p.Offset != 0 {
			return nil, refuse(fed.RefusedInvalid, "no transfer under way for this chunk")
		}
		if len(c.transfers) >= maxTransfers || c.held()+p.Total > maxTransferMemory {
			return nil, refuse(fed.RefusedBusy, "the node holds as many transfers as it allows")
		}
		t = &transfer{comp: body.Computation, permit: claims.ID, digest: p.Digest, round: body.Round, data: make([]byte, 0, p.Total), total: p.Total, created: now}
		c.transfers[key] = t
	}
	switch {
	case p.Offset == int64(len(t.data)):
		t.data = append(t.data, p.Data...)
	case p.Offset+int64(len(p.Data)) <= int64(len(t.data)) && bytes.Equal(t.data[p.Offset:p.Offset+int64(len(p.Data))], p.Data):
		// A chunk sent again: nothing new.
	default:
		return nil, refuse(fed.RefusedInvalid, "a chunk at %d where the node holds %d bytes", p.Offset, len(t.data))
	}
	if int64(len(t.data)) == t.total && digestOf(t.data) != t.digest {
		delete(c.transfers, key)
		return nil, refuse(fed.RefusedInvalid, "the transferred file does not match its digest")
	}
	return WeightsChunkResult{Received: int64(len(t.data))}, nil
}

// takeWeights returns and forgets the complete, checked weights file of
// a computation's round.
func (n *Node) takeWeights(claims permit.Claims, body fed.ComputeBody, digest string, length int64) ([]byte, error) {
	c := &n.chunks
	c.mu.Lock()
	defer c.mu.Unlock()
	key := transferKey(body.Computation, body.Round, digest)
	t, ok := c.transfers[key]
	if !ok || t.permit != claims.ID || t.total != length || int64(len(t.data)) != t.total {
		return nil, refuse(fed.RefusedInvalid, "the round's weights have not all arrived at this node")
	}
	delete(c.transfers, key)
	return t.data, nil
}

// offerResult keeps a large answer for the hub to fetch and returns what
// stands for it; small answers and chunk answers are returned as they
// are.
func (n *Node) offerResult(claims permit.Claims, body fed.ComputeBody, raw []byte) ([]byte, error) {
	if len(raw) <= maxInlineResult || body.Step == StepResultChunk {
		return raw, nil
	}
	if int64(len(raw)) > maxResultBytes {
		return nil, refuse(fed.RefusedInvalid, "the answer is %d bytes, more than the %d a transfer carries", len(raw), maxResultBytes)
	}
	d := digestOf(raw)
	c := &n.chunks
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(n.now())
	if c.offers == nil {
		c.offers = map[string]*offer{}
	}
	for len(c.offers) > 0 && (len(c.offers) >= maxOffers || c.held()+int64(len(raw)) > maxTransferMemory) {
		var oldest string
		for k, o := range c.offers {
			if oldest == "" || o.created.Before(c.offers[oldest].created) {
				oldest = k
			}
		}
		delete(c.offers, oldest)
	}
	if c.held()+int64(len(raw)) > maxTransferMemory {
		return nil, refuse(fed.RefusedBusy, "the node holds as many transfers as it allows")
	}
	c.offers[d] = &offer{comp: body.Computation, permit: claims.ID, data: raw, created: n.now()}
	return json.Marshal(chunkedAnswer{Chunked: ChunkedResult{Digest: d, Length: int64(len(raw))}})
}

func (n *Node) resultChunk(claims permit.Claims, body fed.ComputeBody, p ResultChunkParams) (any, error) {
	c := &n.chunks
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.offers[p.Digest]
	if !ok || o.comp != body.Computation || o.permit != claims.ID {
		return nil, refuse(fed.RefusedInvalid, "no such answer kept at this node")
	}
	if p.Offset < 0 || p.Length < 1 || p.Length > chunkSize || p.Offset+p.Length > int64(len(o.data)) {
		return nil, refuse(fed.RefusedInvalid, "a range of %d bytes at %d does not fit an answer of %d", p.Length, p.Offset, len(o.data))
	}
	data := o.data[p.Offset : p.Offset+p.Length]
	if p.Offset+p.Length == int64(len(o.data)) {
		delete(c.offers, p.Digest)
	}
	return ResultChunkResult{Data: data}, nil
}

// sendWeights sends the round's weights to every target in chunks when
// they are too large for one step, and has tp name them by digest. A
// target that fails a chunk is put in left and not returned.
func (r *Runner) sendWeights(ctx context.Context, comp string, round int, tp *TrainParams, targets []Target, left map[string]outcome) []Target {
	if len(tp.Weights) <= chunkSize {
		return targets
	}
	w := tp.Weights
	d := digestOf(w)
	tp.Weights, tp.WeightsDigest, tp.WeightsLength = nil, d, int64(len(w))
	type res struct {
		t   Target
		err error
	}
	// Every node gets the same chunks: each is encoded once.
	var chunks []json.RawMessage
	for off := 0; off < len(w); off += chunkSize {
		raw, _ := json.Marshal(WeightsChunkParams{Digest: d, Offset: int64(off), Total: int64(len(w)), Data: w[off:min(off+chunkSize, len(w))]})
		chunks = append(chunks, raw)
	}
	out := make(chan res, len(targets))
	for _, t := range targets {
		go func() {
			var err error
			for _, raw := range chunks {
				if err != nil {
					break
				}
				body := fed.ComputeBody{Computation: comp, Step: StepWeightsChunk, Round: round, Permit: t.Token, Researcher: r.Researcher, Params: raw}
				var ans fed.ComputeAnswer
				ans, err = r.Ask.Step(ctx, t.Node, body, r.timeout())
				switch {
				case err != nil:
				case ans.Refused != "":
					err = &refusal{code: ans.Refused, reason: ans.Reason}
				case ans.Error != "":
					err = fmt.Errorf("%s", ans.Error)
				case ans.Node != t.Node || ans.Computation != comp || ans.Step != StepWeightsChunk || ans.Round != round:
					err = fmt.Errorf("compute: %s answered another step", t.Node)
				}
			}
			out <- res{t: t, err: err}
		}()
	}
	got := map[string]bool{}
	for range targets {
		x := <-out
		var rf *refusal
		switch {
		case x.err == nil:
			got[x.t.Node] = true
		case errors.As(x.err, &rf):
			left[x.t.Node] = outcome{Code: rf.code, Reason: rf.reason}
		default:
			left[x.t.Node] = outcome{Code: "dropped", Reason: "the weights did not arrive: " + x.err.Error()}
		}
	}
	if r.Record != nil {
		r.Record("compute-step", comp, map[string]any{"step": StepWeightsChunk, "round": round, "bytes": len(w), "chunks": (len(w) + chunkSize - 1) / chunkSize, "answered": sortedKeys(got)})
	}
	var live []Target
	for _, t := range targets {
		if got[t.Node] {
			live = append(live, t)
		}
	}
	return live
}

// fetchResult replaces an answer that names a large answer kept at the
// node by that answer, fetched in chunks and checked against its digest.
func (r *Runner) fetchResult(ctx context.Context, t Target, body fed.ComputeBody, ans fed.ComputeAnswer, wait time.Duration) (fed.ComputeAnswer, error) {
	if ans.Refused != "" || ans.Error != "" || !bytes.HasPrefix(ans.Result, chunkedPrefix) {
		return ans, nil
	}
	var ca chunkedAnswer
	if err := json.Unmarshal(ans.Result, &ca); err != nil {
		return ans, fmt.Errorf("compute: %s named a malformed kept answer", t.Node)
	}
	if ca.Chunked.Length < 1 || ca.Chunked.Length > maxResultBytes {
		return ans, fmt.Errorf("compute: %s kept an answer of %d bytes; the hub takes 1 to %d", t.Node, ca.Chunked.Length, maxResultBytes)
	}
	buf := make([]byte, 0, ca.Chunked.Length)
	for off := int64(0); off < ca.Chunked.Length; off += chunkSize {
		ln := min(chunkSize, ca.Chunked.Length-off)
		raw, _ := json.Marshal(ResultChunkParams{Digest: ca.Chunked.Digest, Offset: off, Length: ln})
		cb := fed.ComputeBody{Computation: body.Computation, Step: StepResultChunk, Round: body.Round, Permit: t.Token, Researcher: r.Researcher, Params: raw}
		a, err := r.Ask.Step(ctx, t.Node, cb, wait)
		if err != nil {
			return ans, err
		}
		if a.Refused != "" || a.Error != "" {
			return ans, fmt.Errorf("compute: %s did not give its kept answer: %s%s", t.Node, a.Refused, a.Error)
		}
		var rc ResultChunkResult
		if err := json.Unmarshal(a.Result, &rc); err != nil || int64(len(rc.Data)) != ln || a.Node != t.Node || a.Computation != body.Computation || a.Step != StepResultChunk {
			return ans, fmt.Errorf("compute: %s gave a malformed chunk", t.Node)
		}
		buf = append(buf, rc.Data...)
	}
	if digestOf(buf) != ca.Chunked.Digest {
		return ans, fmt.Errorf("compute: %s's answer does not match its digest", t.Node)
	}
	ans.Result = buf
	return ans, nil
}
