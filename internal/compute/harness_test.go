package compute

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/airlock"
	"github.com/mosaic-imaging/mosaic/internal/executor"
	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/permit"
	"github.com/mosaic-imaging/mosaic/internal/stats"
	"github.com/mosaic-imaging/mosaic/internal/table"
)

// testEnv is a node's environment with real tables in memory.
type testEnv struct {
	id      string
	key     ed25519.PrivateKey
	floor   int
	tables  map[string]*table.Table
	ex      executor.Executor
	allow   []string
	work    string
	audits  atomic.Int64
	refuse  bool // refuse every permit
	hist    stats.History
	auditMu sync.Mutex
	actions []map[string]any
}

func (e *testEnv) ID() string              { return e.id }
func (e *testEnv) Key() ed25519.PrivateKey { return e.key }
func (e *testEnv) Floor() int              { return e.floor }
func (e *testEnv) Airlock() airlock.Policy { return airlock.Policy{} }
func (e *testEnv) AllowPrograms() []string { return e.allow }
func (e *testEnv) Executor() executor.Executor {
	return e.ex
}
func (e *testEnv) WorkDir() string        { return e.work }
func (e *testEnv) History() stats.History { return e.hist }
func (e *testEnv) CheckPermit(ctx context.Context, token, researcher string) (permit.Claims, error) {
	if e.refuse || token != "permit-"+e.id || researcher != "rosa" {
		return permit.Claims{}, errors.New("permit refused: the permit does not allow this operation")
	}
	return permit.Claims{ID: "pm-" + e.id, Researcher: researcher, Node: e.id, Dataset: "d", Snapshot: "s", Operations: []permit.Op{permit.OpProcess}}, nil
}
func (e *testEnv) Table(ctx context.Context, dataset, snapshot, name string) (*table.Table, error) {
	t, ok := e.tables[name]
	if !ok || dataset != "d" {
		return nil, fmt.Errorf("no table %s", name)
	}
	return t, nil
}
func (e *testEnv) Tables(ctx context.Context, dataset string) ([]string, error) {
	var out []string
	for n := range e.tables {
		out = append(out, n)
	}
	return out, nil
}
func (e *testEnv) Audit(action, subject string, detail map[string]any) error {
	e.audits.Add(1)
	e.auditMu.Lock()
	e.actions = append(e.actions, detail)
	e.auditMu.Unlock()
	return nil
}

// memAsker carries steps to in-memory nodes, through JSON as the link
// would; a node in down does not answer steps of that name.
type memAsker struct {
	nodes map[string]*Node
	envs  map[string]*testEnv
	mu    sync.Mutex
	down  map[string]string // node -> step it stops answering at ("*": all)
	steps atomic.Int64
	bytes atomic.Int64
}

func (a *memAsker) Step(ctx context.Context, node string, body fed.ComputeBody, wait time.Duration) (fed.ComputeAnswer, error) {
	a.steps.Add(1)
	a.mu.Lock()
	d := a.down[node]
	a.mu.Unlock()
	if d == "*" || d == body.Step {
		return fed.ComputeAnswer{}, errors.New("node offline")
	}
	n, ok := a.nodes[node]
	if !ok {
		return fed.ComputeAnswer{}, errors.New("unknown node")
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return fed.ComputeAnswer{}, err
	}
	a.bytes.Add(int64(len(raw)))
	var b fed.ComputeBody
	if err := json.Unmarshal(raw, &b); err != nil {
		return fed.ComputeAnswer{}, err
	}
	ans := n.Handle(ctx, "task-1", b)
	raw, _ = json.Marshal(ans)
	a.bytes.Add(int64(len(raw)))
	var out fed.ComputeAnswer
	err = json.Unmarshal(raw, &out)
	return out, err
}

func (a *memAsker) NodeKey(ctx context.Context, node string) ed25519.PublicKey {
	if e, ok := a.envs[node]; ok {
		return e.key.Public().(ed25519.PublicKey)
	}
	return nil
}

func (a *memAsker) setDown(node, step string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.down == nil {
		a.down = map[string]string{}
	}
	a.down[node] = step
}

// federation makes nodes with the given CSV tables (name -> CSV) each.
func federation(t testing.TB, floor int, tables ...map[string]string) (*memAsker, []Target) {
	t.Helper()
	a := &memAsker{nodes: map[string]*Node{}, envs: map[string]*testEnv{}}
	var targets []Target
	for i, tabs := range tables {
		id := fmt.Sprintf("node%d", i+1)
		_, key, _ := ed25519.GenerateKey(rand.Reader)
		env := &testEnv{id: id, key: key, floor: floor, tables: map[string]*table.Table{}, work: t.TempDir(), hist: stats.NewMemoryHistory()}
		for name, csv := range tabs {
			tb, err := table.ReadCSV(strings.NewReader(csv), nil, table.Limits{})
			if err != nil {
				t.Fatalf("%s table %s: %v", id, name, err)
			}
			env.tables[name] = tb
		}
		a.envs[id], a.nodes[id] = env, NewNode(env)
		targets = append(targets, Target{Node: id, PermitID: "pm-" + id, Token: "permit-" + id})
	}
	return a, targets
}

// synth writes n rows of a table: y = 1 + 2x − 0.5z + stage effect +
// noise, a binary outcome from the same linear predictor, and a stage
// with levels I, II, III.
func synth(seed uint64, n int, shift float64) string {
	r := mrand.New(mrand.NewPCG(seed, 7))
	var b strings.Builder
	b.WriteString("y,x,z,stage,outcome\n")
	stages := []string{"I", "II", "III"}
	eff := map[string]float64{"I": 0, "II": 0.7, "III": -0.4}
	for i := 0; i < n; i++ {
		x := r.NormFloat64() + shift
		z := r.Float64() * 10
		s := stages[r.IntN(3)]
		y := 1 + 2*x - 0.5*z + eff[s] + r.NormFloat64()
		eta := -0.5 + 0.8*x - 0.1*z + eff[s]
		o := 0
		if r.Float64() < 1/(1+math.Exp(-eta)) {
			o = 1
		}
		fmt.Fprintf(&b, "%.6f,%.6f,%.6f,%s,%d\n", y, x, z, s, o)
	}
	return b.String()
}

func relClose(a, b, tol float64) bool {
	return math.Abs(a-b) <= tol*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

// needCI fails under CI and skips elsewhere.
func needCI(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(why)
	}
	t.Skip(why)
}
