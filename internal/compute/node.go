package compute

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/airlock"
	"github.com/mosaic-imaging/mosaic/internal/executor"
	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/permit"
	"github.com/mosaic-imaging/mosaic/internal/secagg"
	"github.com/mosaic-imaging/mosaic/internal/stats"
	"github.com/mosaic-imaging/mosaic/internal/table"
)

// NodeEnv is what the node lends its compute handler.
type NodeEnv interface {
	// ID and Key are the node's id and enrolment key.
	ID() string
	Key() ed25519.PrivateKey
	// CheckPermit checks a process permit for researcher and audits the
	// use; a refusal is an error whose text says why without data.
	CheckPermit(ctx context.Context, token, researcher string) (permit.Claims, error)
	// Table returns research table name of dataset as snapshot sees it.
	Table(ctx context.Context, dataset, snapshot, name string) (*table.Table, error)
	// Tables names dataset's research tables.
	Tables(ctx context.Context, dataset string) ([]string, error)
	// Floor is the node's disclosure floor.
	Floor() int
	// Executor runs training and validation programs (nil: none);
	// AllowPrograms are the digests it may run.
	Executor() executor.Executor
	AllowPrograms() []string
	// Airlock is the node's airlock policy.
	Airlock() airlock.Policy
	// Audit appends to the node's audit log; a step that cannot be
	// recorded is not answered.
	Audit(action, subject string, detail map[string]any) error
	// WorkDir is where runs get their folders.
	WorkDir() string
	// History remembers the row sets of the node's answers against
	// differencing (nil: no overlap control).
	History() stats.History
}

// Limits of the node's state.
const (
	maxSessions = 64
	sessionLife = 30 * time.Minute
	maxUpdates  = 16
)

// Node answers the steps of computations at a node.
type Node struct {
	env NodeEnv

	mu       sync.Mutex
	sessions map[string]*session // by secure aggregation session
	updates  map[string]*update  // by computation and round
	scores   map[string]*scored  // by computation
	now      func() time.Time

	// MaxTransfer bounds the bytes of one chunked transfer to the node
	// (default DefaultMaxTransfer).
	MaxTransfer int64
	chunks      chunkStore
}

type session struct {
	comp    string
	part    Part
	cfg     secagg.Config
	client  *secagg.Client
	claims  permit.Claims
	created time.Time
}

// scored are a validation's scores and labels at the node, kept
// between its two steps; they never leave the node.
type scored struct {
	comp           string
	permit         string // the permit the rows were scored under
	scores, labels []float64
	created        time.Time
}

type update struct {
	comp   string
	permit string // the permit it was trained under
	round  int
	// plain: the training step asked for the update in the clear
	// (StepPlain); an update trained for secure aggregation only leaves
	// masked.
	plain bool
	// minSurvivors is the fewest nodes its DP noise share assumed in the
	// sum (0 without DP).
	minSurvivors int
	weights      []float64
	samples      float64
	created      time.Time
}

// NewNode returns a node's compute handler.
func NewNode(env NodeEnv) *Node {
	return &Node{env: env, sessions: map[string]*session{}, updates: map[string]*update{}, scores: map[string]*scored{}, now: time.Now}
}

// refusal is a step refused with a code.
type refusal struct{ code, reason string }

func (r *refusal) Error() string { return r.code + ": " + r.reason }

func refuse(code, format string, a ...any) error {
	return &refusal{code: code, reason: fmt.Sprintf(format, a...)}
}

// Handle answers one step. The answer is audited before it is returned;
// when the audit cannot be written, the answer is an error.
func (n *Node) Handle(ctx context.Context, taskID string, body fed.ComputeBody) fed.ComputeAnswer {
	ans := fed.ComputeAnswer{Node: n.env.ID(), TaskID: taskID, Computation: body.Computation, Step: body.Step, Round: body.Round}
	var result any
	var err error
	var claims permit.Claims
	if body.Step == StepEnd {
		n.forget(body.Computation)
		result = struct{}{}
	} else if claims, err = n.env.CheckPermit(ctx, body.Permit, body.Researcher); err != nil {
		err = refuse(fed.RefusedPermit, "%s", err.Error())
	} else {
		result, err = n.step(ctx, claims, body)
	}
	var rf *refusal
	var sr *stats.Refusal
	switch {
	case errors.As(err, &rf):
		ans.Refused, ans.Reason = rf.code, rf.reason
	case errors.As(err, &sr):
		ans.Refused, ans.Reason = sr.Code, sr.Reason
	case err != nil:
		ans.Error = err.Error()
	default:
		raw, jerr := json.Marshal(result)
		if jerr == nil {
			raw, jerr = n.offerResult(claims, body, raw)
		}
		var orf *refusal
		if errors.As(jerr, &orf) {
			ans.Refused, ans.Reason = orf.code, orf.reason
		} else if jerr != nil {
			ans.Error = "the answer could not be encoded"
		} else {
			ans.Result = raw
		}
	}
	detail := map[string]any{"step": body.Step, "round": body.Round, "researcher": body.Researcher, "dataset": claims.Dataset, "permit": claims.ID}
	if ans.Refused != "" {
		detail["refused"], detail["reason"] = ans.Refused, ans.Reason
	}
	if ans.Error != "" {
		detail["error"] = ans.Error
	}
	if aerr := n.env.Audit("compute-step", body.Computation, detail); aerr != nil {
		return fed.ComputeAnswer{Node: ans.Node, TaskID: taskID, Computation: body.Computation, Step: body.Step, Round: body.Round,
			Error: "the node could not record the step in its audit log"}
	}
	return ans
}

func (n *Node) step(ctx context.Context, claims permit.Claims, body fed.ComputeBody) (any, error) {
	if res, ok, err := n.chunkStep(claims, body); ok {
		return res, err
	}
	switch body.Step {
	case StepLevels:
		var p LevelsParams
		if err := json.Unmarshal(body.Params, &p); err != nil {
			return nil, refuse(fed.RefusedInvalid, "malformed levels parameters")
		}
		return n.levels(ctx, claims, p)
	case StepAdvert:
		var p AdvertParams
		if err := json.Unmarshal(body.Params, &p); err != nil {
			return nil, refuse(fed.RefusedInvalid, "malformed advert parameters")
		}
		return n.advert(claims, body, p)
	case StepShares:
		var p SharesParams
		if err := json.Unmarshal(body.Params, &p); err != nil {
			return nil, refuse(fed.RefusedInvalid, "malformed shares parameters")
		}
		s, err := n.session(p.Session, body, claims)
		if err != nil {
			return nil, err
		}
		sh, err := s.client.Shares(p.Adverts)
		if err != nil {
			return nil, fmt.Errorf("secure aggregation: %w", err)
		}
		return SharesResult{Shares: sh}, nil
	case StepMask:
		var p MaskParams
		if err := json.Unmarshal(body.Params, &p); err != nil {
			return nil, refuse(fed.RefusedInvalid, "malformed mask parameters")
		}
		s, err := n.session(p.Session, body, claims)
		if err != nil {
			return nil, err
		}
		vec, rows, err := n.part(ctx, s)
		if err != nil {
			return nil, err
		}
		if len(vec) != s.cfg.Length {
			return nil, refuse(fed.RefusedInvalid, "the part has %d values where the aggregation expects %d", len(vec), s.cfg.Length)
		}
		m, err := s.client.Mask(p.Shares, vec)
		if err != nil {
			return nil, fmt.Errorf("secure aggregation: %w", err)
		}
		return MaskResult{Masked: m, Rows: rows}, nil
	case StepReveal:
		var p RevealParams
		if err := json.Unmarshal(body.Params, &p); err != nil {
			return nil, refuse(fed.RefusedInvalid, "malformed reveal parameters")
		}
		s, err := n.session(p.Session, body, claims)
		if err != nil {
			return nil, err
		}
		rv, err := s.client.Reveal(p.Survivors)
		if err != nil {
			return nil, fmt.Errorf("secure aggregation: %w", err)
		}
		return RevealResult{Reveal: rv}, nil
	case StepTrain:
		var p TrainParams
		if err := json.Unmarshal(body.Params, &p); err != nil {
			return nil, refuse(fed.RefusedInvalid, "malformed training parameters")
		}
		return n.train(ctx, claims, body, p)
	case StepPlain:
		var p PlainParams
		if err := json.Unmarshal(body.Params, &p); err != nil {
			return nil, refuse(fed.RefusedInvalid, "malformed parameters")
		}
		u := n.kept(body.Computation, p.Round)
		if u == nil || u.permit != claims.ID {
			return nil, refuse(fed.RefusedInvalid, "no update kept for round %d", p.Round)
		}
		if !u.plain {
			return nil, refuse(fed.RefusedInvalid, "the update of round %d was trained for secure aggregation and leaves only masked", p.Round)
		}
		return PlainResult{Weights: floatsBytes(u.weights), Samples: u.samples}, nil
	}
	return nil, refuse(fed.RefusedInvalid, "unknown step %q", body.Step)
}

func (n *Node) levels(ctx context.Context, claims permit.Claims, p LevelsParams) (any, error) {
	f, err := stats.ParseFormula(p.Formula)
	if err != nil {
		return nil, refuse(fed.RefusedInvalid, "%s", err.Error())
	}
	t, err := n.table(ctx, claims, p.Table)
	if err != nil {
		return nil, err
	}
	lv, err := stats.NodeLevels(t, f, n.policy())
	if err != nil {
		return nil, err
	}
	types := map[string]string{}
	for _, v := range f.Variables() {
		found := false
		for _, c := range t.Schema.Columns {
			if c.Name == v {
				types[v], found = string(c.Type), true
			}
		}
		if !found {
			return nil, refuse(fed.RefusedInvalid, "table %s has no column %s", p.Table, v)
		}
	}
	if lv == nil {
		lv = stats.Levels{}
	}
	return LevelsResult{Levels: lv, Types: types}, nil
}

func (n *Node) policy() stats.Policy {
	return stats.Policy{Floor: n.env.Floor(), MaxParamFraction: 1.0 / 3}
}

func (n *Node) table(ctx context.Context, claims permit.Claims, name string) (*table.Table, error) {
	if !table.ValidName(name) {
		return nil, refuse(fed.RefusedInvalid, "not a table name")
	}
	t, err := n.env.Table(ctx, claims.Dataset, claims.Snapshot, name)
	if err != nil {
		return nil, refuse(fed.RefusedInvalid, "table %s is not available under this permit: %v", name, err)
	}
	return t, nil
}

func (n *Node) advert(claims permit.Claims, body fed.ComputeBody, p AdvertParams) (any, error) {
	dir := secagg.Directory{}
	for _, peer := range body.Peers {
		k, err := fed.DecodeKey(peer.Key)
		if err != nil {
			return nil, refuse(fed.RefusedInvalid, "a peer's key is malformed")
		}
		dir[peer.Node] = k
	}
	if pk, ok := dir[n.env.ID()]; !ok || !pk.Equal(n.env.Key().Public()) {
		return nil, refuse(fed.RefusedInvalid, "the peers do not list this node with its key")
	}
	if p.Config.Session == "" || len(p.Config.Session) > 256 {
		return nil, refuse(fed.RefusedInvalid, "a session must be named")
	}
	c, err := secagg.NewClient(p.Config, n.env.ID(), n.env.Key(), dir, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("secure aggregation: %w", err)
	}
	adv, err := c.Advert()
	if err != nil {
		return nil, fmt.Errorf("secure aggregation: %w", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.expire()
	if _, ok := n.sessions[p.Config.Session]; ok {
		return nil, refuse(fed.RefusedInvalid, "session %s already started", p.Config.Session)
	}
	if len(n.sessions) >= maxSessions {
		return nil, refuse(fed.RefusedBusy, "the node keeps as many aggregations as it allows")
	}
	n.sessions[p.Config.Session] = &session{comp: body.Computation, part: p.Part, cfg: p.Config, client: c, claims: claims, created: n.now()}
	return AdvertResult{Advert: adv}, nil
}

// session finds a started session of the same computation and permit.
func (n *Node) session(id string, body fed.ComputeBody, claims permit.Claims) (*session, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.expire()
	s, ok := n.sessions[id]
	if !ok || s.comp != body.Computation || s.claims.ID != claims.ID {
		return nil, refuse(fed.RefusedInvalid, "no such aggregation session at this node")
	}
	return s, nil
}

func (n *Node) expire() {
	now := n.now()
	for id, s := range n.sessions {
		if now.Sub(s.created) > sessionLife {
			delete(n.sessions, id)
		}
	}
	for id, u := range n.updates {
		if now.Sub(u.created) > sessionLife*4 {
			delete(n.updates, id)
		}
	}
	for id, sc := range n.scores {
		if now.Sub(sc.created) > sessionLife {
			delete(n.scores, id)
		}
	}
}

func (n *Node) keptScores(comp, permit string) *scored {
	n.mu.Lock()
	defer n.mu.Unlock()
	if sc := n.scores[comp]; sc != nil && sc.permit == permit {
		return sc
	}
	return nil
}

func (n *Node) keepScores(sc *scored) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.expire()
	for len(n.scores) >= maxUpdates {
		var oldest string
		for id, x := range n.scores {
			if oldest == "" || x.created.Before(n.scores[oldest].created) {
				oldest = id
			}
		}
		delete(n.scores, oldest)
	}
	n.scores[sc.comp] = sc
}

func (n *Node) forget(comp string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, s := range n.sessions {
		if s.comp == comp {
			delete(n.sessions, id)
		}
	}
	for id, u := range n.updates {
		if u.comp == comp {
			delete(n.updates, id)
		}
	}
	delete(n.scores, comp)
	n.chunks.forget(comp)
}

func (n *Node) kept(comp string, round int) *update {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.updates[fmt.Sprintf("%s/%d", comp, round)]
}

func (n *Node) keep(u *update) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.expire()
	for len(n.updates) >= maxUpdates {
		var oldest string
		for id, x := range n.updates {
			if oldest == "" || x.created.Before(n.updates[oldest].created) {
				oldest = id
			}
		}
		delete(n.updates, oldest)
	}
	n.updates[fmt.Sprintf("%s/%d", u.comp, u.round)] = u
}

// part computes the node's vector for a session, after its checks.
func (n *Node) part(ctx context.Context, s *session) ([]float64, int, error) {
	switch s.part.Kind {
	case PartSummary:
		t, err := n.table(ctx, s.claims, s.part.Table)
		if err != nil {
			return nil, 0, err
		}
		sp, err := stats.NodeSummary(t, s.part.Variables, n.policy())
		if err != nil {
			return nil, 0, err
		}
		if err := n.admit(s, s.part.Table, sp.Used); err != nil {
			return nil, 0, err
		}
		vec := append(append(append([]float64{}, sp.N...), sp.Sum...), sp.SumSq...)
		return vec, len(sp.Used), nil
	case PartLM, PartGLM:
		f, err := stats.ParseFormula(s.part.Formula)
		if err != nil {
			return nil, 0, refuse(fed.RefusedInvalid, "%s", err.Error())
		}
		t, err := n.table(ctx, s.claims, s.part.Table)
		if err != nil {
			return nil, 0, err
		}
		if s.part.Kind == PartLM {
			p, err := stats.NodeLM(t, f, s.part.Levels, n.policy())
			if err != nil {
				return nil, 0, err
			}
			if err := n.admit(s, s.part.Table, p.Used); err != nil {
				return nil, 0, err
			}
			return p.Vector(), int(p.N), nil
		}
		p, err := stats.NodeGLM(t, f, s.part.Levels, s.part.Family, s.part.Beta, n.policy())
		if err != nil {
			return nil, 0, err
		}
		if err := n.admit(s, s.part.Table, p.Used); err != nil {
			return nil, 0, err
		}
		return p.Vector(), int(p.N), nil
	case PartUpdate:
		u := n.kept(s.comp, s.part.Round)
		if u == nil || u.permit != s.claims.ID {
			return nil, 0, refuse(fed.RefusedInvalid, "no update kept for round %d", s.part.Round)
		}
		if th := s.client.Config().Threshold; u.minSurvivors > 0 && th < u.minSurvivors {
			return nil, 0, refuse(fed.RefusedInvalid, "the update's noise assumed at least %d nodes in the sum; this aggregation may end with %d", u.minSurvivors, th)
		}
		return weighted(u), int(u.samples), nil
	case PartValidation, PartSuppress:
		return n.validation(ctx, s)
	}
	return nil, 0, refuse(fed.RefusedInvalid, "unknown part %q", s.part.Kind)
}

// admit asks the node's history whether a part over rows may leave: a
// row set a few rows from an earlier answer's, for the same researcher
// and table of a snapshot, is refused (RefusedOverlap).
func (n *Node) admit(s *session, table string, rows []int) error {
	h := n.env.History()
	if h == nil {
		return nil
	}
	return h.Admit(s.claims.Researcher, s.claims.Dataset+"/"+s.claims.Snapshot+"/"+table, rows, n.env.Floor())
}
