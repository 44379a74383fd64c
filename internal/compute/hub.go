package compute

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/secagg"
)

// Asker carries steps to nodes: the hub implements it with its signed
// tasks (hub.Ask) and its directory of enrolment keys.
type Asker interface {
	// Step sends one step to node and waits at most wait for the node's
	// signed answer.
	Step(ctx context.Context, node string, body fed.ComputeBody, wait time.Duration) (fed.ComputeAnswer, error)
	// NodeKey returns node's enrolment key, nil when unknown.
	NodeKey(ctx context.Context, node string) ed25519.PublicKey
}

// Target is one node's part in a computation: the node and the
// researcher's process permit for its dataset.
type Target struct {
	Node     string `json:"node"`
	PermitID string `json:"permit"`
	Token    string `json:"-"`
}

// Runner drives computations from the hub.
type Runner struct {
	Ask        Asker
	Researcher string
	// StepTimeout bounds one node's answer to one step (default 2
	// minutes); nodes that do not answer in time drop.
	StepTimeout time.Duration
	// Record, when set, writes each step to the hub's audit log.
	Record func(action, subject string, detail map[string]any)
	// Encoding of secure aggregation (default 128 bits, 40 fractional).
	Encoding secagg.Encoding
}

// ErrTooFew is wrapped by the error of a computation left with fewer
// nodes than it needs.
var ErrTooFew = errors.New("compute: too few nodes")

func (r *Runner) timeout() time.Duration {
	if r.StepTimeout > 0 {
		return r.StepTimeout
	}
	return 2 * time.Minute
}

func (r *Runner) encoding() secagg.Encoding {
	if r.Encoding.Bits != 0 {
		return r.Encoding
	}
	return secagg.Encoding{Bits: 128, Frac: 40}
}

// reply is one node's answer to one step.
type reply struct {
	node string
	ans  fed.ComputeAnswer
	err  error
}

// outcome says why a node left a step: a refusal code and words, or a
// drop (timeout, offline, error).
type outcome struct {
	Code   string
	Reason string
}

func (o outcome) String() string {
	if o.Code == "" {
		return o.Reason
	}
	return o.Code + ": " + o.Reason
}

// each sends step to every target at once with its own params and
// collects the answers. A node that fails or refuses is put in left.
func (r *Runner) each(ctx context.Context, comp, step string, round int, targets []Target, wait time.Duration, params func(Target) (any, error), peers []fed.Peer, left map[string]outcome) map[string]fed.ComputeAnswer {
	out := make(chan reply, len(targets))
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := params(t)
			if err != nil {
				out <- reply{node: t.Node, err: err}
				return
			}
			raw, err := json.Marshal(p)
			if err != nil {
				out <- reply{node: t.Node, err: err}
				return
			}
			body := fed.ComputeBody{Computation: comp, Step: step, Round: round, Permit: t.Token, Researcher: r.Researcher, Params: raw, Peers: peers}
			ans, err := r.Ask.Step(ctx, t.Node, body, wait)
			if err == nil {
				ans, err = r.fetchResult(ctx, t, body, ans, wait)
			}
			if err == nil && (ans.Node != t.Node || ans.Computation != comp || ans.Step != step || ans.Round != round) {
				err = fmt.Errorf("compute: %s answered another step", t.Node)
			}
			out <- reply{node: t.Node, ans: ans, err: err}
		}()
	}
	wg.Wait()
	close(out)
	got := map[string]fed.ComputeAnswer{}
	for rp := range out {
		switch {
		case rp.err != nil:
			left[rp.node] = outcome{Code: "dropped", Reason: "no answer to " + step + ": " + rp.err.Error()}
		case rp.ans.Refused != "":
			left[rp.node] = outcome{Code: rp.ans.Refused, Reason: rp.ans.Reason}
		case rp.ans.Error != "":
			left[rp.node] = outcome{Code: "error", Reason: rp.ans.Error}
		default:
			got[rp.node] = rp.ans
		}
	}
	if r.Record != nil {
		detail := map[string]any{"step": step, "round": round, "answered": sortedKeys(got)}
		if len(left) > 0 {
			ls := map[string]string{}
			for n, o := range left {
				ls[n] = o.String()
			}
			detail["left"] = ls
		}
		r.Record("compute-step", comp, detail)
	}
	return got
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Threshold is the fewest survivors of a secure aggregation among n
// participants: two thirds rounded up, and more than half.
func Threshold(n int) int {
	t := (2*n + 2) / 3
	if t <= n/2 {
		t = n/2 + 1
	}
	return max(t, 1)
}

// Aggregation is the outcome of one secure aggregation.
type Aggregation struct {
	Sum []float64
	// Rows per surviving node, as the nodes said in the clear.
	Rows map[string]int
	// Left are the nodes that refused or dropped, with why.
	Left map[string]string
}

// Aggregate runs one secure aggregation of part over targets: adverts,
// shares, masked parts, reveals, and the sum by secagg.Server. Nodes
// that refuse or do not answer drop; fewer survivors than the threshold
// fail it (ErrTooFew).
func (r *Runner) Aggregate(ctx context.Context, comp string, round int, session string, targets []Target, part Part, length int) (*Aggregation, error) {
	if len(targets) == 0 {
		return nil, fmt.Errorf("%w: no node takes part", ErrTooFew)
	}
	byNode := map[string]Target{}
	dir := secagg.Directory{}
	var ids []string
	var peers []fed.Peer
	for _, t := range targets {
		k := r.Ask.NodeKey(ctx, t.Node)
		if k == nil {
			return nil, fmt.Errorf("compute: node %s has no enrolment key at the hub", t.Node)
		}
		byNode[t.Node] = t
		dir[t.Node] = k
		ids = append(ids, t.Node)
	}
	sort.Strings(ids)
	for _, id := range ids {
		peers = append(peers, fed.Peer{Node: id, Key: fed.EncodeKey(dir[id])})
	}
	cfg := secagg.Config{Session: session, Participants: ids, Threshold: Threshold(len(ids)), Length: length, Encoding: r.encoding()}
	if part.MinSum > cfg.Threshold {
		cfg.Threshold = min(part.MinSum, len(ids))
	}
	srv, err := secagg.NewServer(cfg, dir)
	if err != nil {
		return nil, err
	}
	left := map[string]outcome{}
	wait := r.timeout()
	tooFew := func(step string, have int) error {
		return fmt.Errorf("%w: %d of %d nodes answered %s, %d needed (%s)", ErrTooFew, have, len(ids), step, cfg.Threshold, describeLeft(left))
	}

	got := r.each(ctx, comp, StepAdvert, round, targets, wait, func(Target) (any, error) { return AdvertParams{Config: cfg, Part: part}, nil }, peers, left)
	var adverts []secagg.Advert
	var live []Target
	for _, id := range sortedKeys(got) {
		var res AdvertResult
		if err := json.Unmarshal(got[id].Result, &res); err != nil || res.Advert.From != id {
			left[id] = outcome{Code: "error", Reason: "a malformed advert"}
			continue
		}
		adverts = append(adverts, res.Advert)
		live = append(live, byNode[id])
	}
	if len(live) < cfg.Threshold {
		return nil, tooFew(StepAdvert, len(live))
	}

	got = r.each(ctx, comp, StepShares, round, live, wait, func(Target) (any, error) { return SharesParams{Session: session, Adverts: adverts}, nil }, peers, left)
	to := map[string][]secagg.Share{}
	live = live[:0]
	for _, id := range sortedKeys(got) {
		var res SharesResult
		if err := json.Unmarshal(got[id].Result, &res); err != nil {
			left[id] = outcome{Code: "error", Reason: "malformed shares"}
			continue
		}
		for _, s := range res.Shares {
			if s.From == id {
				to[s.To] = append(to[s.To], s)
			}
		}
		live = append(live, byNode[id])
	}
	if len(live) < cfg.Threshold {
		return nil, tooFew(StepShares, len(live))
	}

	got = r.each(ctx, comp, StepMask, round, live, wait, func(t Target) (any, error) { return MaskParams{Session: session, Shares: to[t.Node]}, nil }, peers, left)
	var masked []secagg.Masked
	rows := map[string]int{}
	var survivors []string
	for _, id := range sortedKeys(got) {
		var res MaskResult
		if err := json.Unmarshal(got[id].Result, &res); err != nil || res.Masked.From != id {
			left[id] = outcome{Code: "error", Reason: "a malformed masked part"}
			continue
		}
		masked = append(masked, res.Masked)
		rows[id] = res.Rows
		survivors = append(survivors, id)
	}
	if len(survivors) < cfg.Threshold {
		return nil, tooFew(StepMask, len(survivors))
	}
	var sv []Target
	for _, id := range survivors {
		sv = append(sv, byNode[id])
	}
	revLeft := map[string]outcome{}
	got = r.each(ctx, comp, StepReveal, round, sv, wait, func(Target) (any, error) { return RevealParams{Session: session, Survivors: survivors}, nil }, peers, revLeft)
	var reveals []secagg.Reveal
	for _, id := range sortedKeys(got) {
		var res RevealResult
		if err := json.Unmarshal(got[id].Result, &res); err != nil || res.Reveal.From != id {
			continue
		}
		reveals = append(reveals, res.Reveal)
	}
	if len(reveals) < cfg.Threshold {
		for n, o := range revLeft {
			left[n] = o
		}
		return nil, tooFew(StepReveal, len(reveals))
	}
	sum, err := srv.Sum(adverts, masked, reveals)
	if err != nil {
		return nil, fmt.Errorf("compute: the secure sum failed: %w", err)
	}
	agg := &Aggregation{Sum: sum, Rows: rows, Left: map[string]string{}}
	for n, o := range left {
		agg.Left[n] = o.String()
	}
	return agg, nil
}

func describeLeft(left map[string]outcome) string {
	if len(left) == 0 {
		return "none left"
	}
	var parts []string
	for _, n := range sortedKeys(left) {
		parts = append(parts, n+" "+left[n].String())
	}
	return strings.Join(parts, "; ")
}

// End tells every target to forget what it keeps of comp; failures are
// ignored (nodes expire their state anyway).
func (r *Runner) End(ctx context.Context, comp string, targets []Target) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r.each(ctx, comp, StepEnd, 0, targets, 10*time.Second, func(Target) (any, error) { return struct{}{}, nil }, nil, map[string]outcome{})
}
