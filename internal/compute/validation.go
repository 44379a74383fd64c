package compute

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/fl"
	"github.com/mosaic-imaging/mosaic/internal/stats"
	"github.com/mosaic-imaging/mosaic/internal/table"
)

// ValidationRequest is a federated validation as the API takes it: a
// fitted model (Formula, Family, Levels, Coefficients, Estimates) or a
// program with weights, the table (for a fitted model), the threshold
// grid (default 0, 0.1, ..., 1) and the calibration bins (default 10).
type ValidationRequest = ValidationSpec

// DefaultGrid is the thresholds 0, 0.1, ..., 1: coarse enough that
// each interval holds a node's floor of rows in most cohorts (a node
// refuses a grid finer than its floor allows).
func DefaultGrid() []float64 {
	g := make([]float64, 11)
	for i := range g {
		g[i] = float64(i) / 10
	}
	return g
}

// check fills defaults and refuses a malformed spec.
func (v *ValidationSpec) check() error {
	if len(v.Grid) == 0 {
		v.Grid = DefaultGrid()
	}
	if v.Bins == 0 {
		v.Bins = 10
	}
	if v.Bins < 1 || v.Bins > 1000 || len(v.Grid) > 10000 || !slices.IsSorted(v.Grid) {
		return errors.New("grid must be ascending (at most 10000 thresholds) and bins 1 to 1000")
	}
	if v.Program == nil {
		if _, err := stats.ParseFormula(v.Formula); err != nil {
			return fmt.Errorf("formula: %w", err)
		}
		if !table.ValidName(v.Table) {
			return errors.New("table: give a research table's name")
		}
		if len(v.Coefficients) == 0 || len(v.Coefficients) != len(v.Estimates) {
			return errors.New("coefficients and estimates: one estimate per coefficient")
		}
	}
	return nil
}

// plan is the spec's plan: the coarsened one the hub sent, else its
// grid and bins.
func (v *ValidationSpec) plan() (fl.Plan, error) {
	if v.Plan != nil {
		return *v.Plan, v.Plan.Validate()
	}
	return fl.NewPlan(v.Grid, v.Bins)
}

// MarshalJSON writes the merged metrics and, beside them, the plan, the
// rows per node and the refusals (the metrics' own encoding writes
// empty calibration bins as null).
func (v ValidationResult) MarshalJSON() ([]byte, error) {
	out := map[string]json.RawMessage{}
	if v.ValidationResult != nil {
		b, err := json.Marshal(v.ValidationResult)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, &out); err != nil {
			return nil, err
		}
	}
	for k, x := range map[string]any{"plan": v.Plan, "rows_per_node": v.RowsPerNode, "refused": v.Refused} {
		b, err := json.Marshal(x)
		if err != nil {
			return nil, err
		}
		out[k] = b
	}
	return json.Marshal(out)
}

// ValidationResult is a federated validation's merged metrics, the rows
// each node scored and the nodes that refused or dropped.
type ValidationResult struct {
	*fl.ValidationResult
	// Plan is the grid and bins after the nodes' floors coarsened them.
	Plan        fl.Plan           `json:"plan"`
	RowsPerNode map[string]int    `json:"rows_per_node"`
	Refused     map[string]string `json:"refused"`
}

// Validate runs a federated validation over targets: each node scores
// its rows (they never leave it); a first secure aggregation sums the
// cuts of the grid each node needs dropped to keep its floor, the hub
// coarsens the grid and bins accordingly, and a second one sums the
// nodes' counts on the coarser plan, which the hub merges into the
// metrics (equal to the pooled computation on that plan).
func (r *Runner) Validate(ctx context.Context, comp string, spec ValidationSpec, targets []Target) (*ValidationResult, error) {
	spec.Plan = nil
	if err := spec.check(); err != nil {
		return nil, err
	}
	plan, err := spec.plan()
	if err != nil {
		return nil, err
	}
	defer r.End(context.WithoutCancel(ctx), comp, targets)
	res := &ValidationResult{RowsPerNode: map[string]int{}, Refused: map[string]string{}}
	cuts := len(plan.Cuts())
	var coarse fl.Plan
	live := targets
	if cuts == 0 {
		coarse = plan
	} else {
		agg, err := r.Aggregate(ctx, comp, 1, comp+"/suppress", targets, Part{Kind: PartSuppress, Validation: &spec}, cuts)
		if agg != nil {
			res.Refused = agg.Left
		}
		if err != nil {
			return res, err
		}
		if coarse, err = plan.Coarsen(agg.Sum); err != nil {
			return res, err
		}
		live = nil
		for _, t := range targets {
			if _, ok := agg.Rows[t.Node]; ok {
				live = append(live, t)
			}
		}
	}
	spec.Plan = &coarse
	agg, err := r.Aggregate(ctx, comp, 2, comp+"/validation", live, Part{Kind: PartValidation, Validation: &spec}, coarse.VectorLength())
	if agg != nil {
		res.RowsPerNode = agg.Rows
		for n, why := range agg.Left {
			res.Refused[n] = why
		}
	}
	if err != nil {
		return res, err
	}
	sum, err := fl.PartFromVector(coarse, agg.Sum)
	if err != nil {
		return res, err
	}
	m, err := fl.Merge(sum)
	if err != nil {
		return res, err
	}
	res.ValidationResult, res.Plan = m, coarse
	return res, nil
}

// validation scores the node's rows (once per computation: the scores
// are kept in memory for its second step) and returns its part: the
// cuts it needs dropped (PartSuppress) or its counts on the plan.
func (n *Node) validation(ctx context.Context, s *session) ([]float64, int, error) {
	spec := s.part.Validation
	if spec == nil {
		return nil, 0, refuse(fed.RefusedInvalid, "no model to validate")
	}
	if err := spec.check(); err != nil {
		return nil, 0, refuse(fed.RefusedInvalid, "%s", err.Error())
	}
	plan, err := spec.plan()
	if err != nil {
		return nil, 0, refuse(fed.RefusedInvalid, "%s", err.Error())
	}
	sc := n.keptScores(s.comp, s.claims.ID)
	if sc == nil {
		var scores, labels []float64
		if spec.Program != nil {
			scores, labels, err = n.scoreProgram(ctx, s, spec)
		} else {
			scores, labels, err = n.scoreModel(ctx, s, spec)
		}
		if err != nil {
			return nil, 0, err
		}
		sc = &scored{comp: s.comp, permit: s.claims.ID, scores: scores, labels: labels, created: n.now()}
		n.keepScores(sc)
	}
	floorErr := func(err error) error {
		if errors.Is(err, fl.ErrFloor) || errors.Is(err, fl.ErrCoarsen) {
			return refuse(fed.RefusedFloor, "%s", err.Error())
		}
		return refuse(fed.RefusedInvalid, "%s", err.Error())
	}
	if s.part.Kind == PartSuppress {
		v, err := fl.Suppress(sc.scores, sc.labels, plan, n.env.Floor())
		if err != nil {
			return nil, 0, floorErr(err)
		}
		return v, len(sc.scores), nil
	}
	part, err := fl.NodeValidationPlan(sc.scores, sc.labels, plan, n.env.Floor())
	if err != nil {
		return nil, 0, floorErr(err)
	}
	return part.Vector(), len(sc.scores), nil
}

func (n *Node) scoreProgram(ctx context.Context, s *session, spec *ValidationSpec) ([]float64, []float64, error) {
	if err := n.checkProgram(*spec.Program); err != nil {
		return nil, nil, err
	}
	if _, err := fl.ReadSafetensors(bytes.NewReader(spec.Weights)); err != nil {
		return nil, nil, refuse(fed.RefusedInvalid, "the model's weights: %v", err)
	}
	pj, err := json.Marshal(spec.Params)
	if err != nil || spec.Params == nil {
		pj = []byte("{}")
	}
	d, err := n.prepare(ctx, s.claims, *spec.Program, map[string][]byte{"model.safetensors": spec.Weights, "params.json": pj})
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(d.root)
	if err := n.run(ctx, s.comp, d, *spec.Program); err != nil {
		return nil, nil, err
	}
	b, err := readLimited(filepath.Join(d.out, "scores.csv"), maxScoresBytes)
	if err != nil {
		return nil, nil, errors.New("the program wrote no readable scores.csv")
	}
	sc, lb, err := readScores(b)
	if err != nil {
		return nil, nil, refuse(fed.RefusedInvalid, "%s", err.Error())
	}
	return sc, lb, nil
}

// scoreModel scores a fitted lm or glm on the node's table.
func (n *Node) scoreModel(ctx context.Context, s *session, spec *ValidationSpec) ([]float64, []float64, error) {
	f, err := stats.ParseFormula(spec.Formula)
	if err != nil {
		return nil, nil, refuse(fed.RefusedInvalid, "%s", err.Error())
	}
	t, err := n.table(ctx, s.claims, spec.Table)
	if err != nil {
		return nil, nil, err
	}
	X, y, used, err := design(t, f, spec.Levels)
	if err != nil {
		return nil, nil, refuse(fed.RefusedInvalid, "%s", err.Error())
	}
	// The counts leave over these rows: a row set a few rows from an
	// earlier answer's would tell those rows' labels by difference.
	if err := n.admit(s, spec.Table, used); err != nil {
		return nil, nil, err
	}
	p := len(spec.Estimates)
	if len(X) > 0 && len(X[0]) != p {
		return nil, nil, refuse(fed.RefusedInvalid, "the model has %d coefficients where the formula gives %d columns", p, len(X[0]))
	}
	scores := make([]float64, len(X))
	for i, row := range X {
		var eta float64
		for j, x := range row {
			eta += x * spec.Estimates[j]
		}
		if spec.Family == "binomial" {
			eta = 1 / (1 + math.Exp(-eta))
		}
		scores[i] = eta
	}
	for _, l := range y {
		if l != 0 && l != 1 {
			return nil, nil, refuse(fed.RefusedInvalid, "the response is not 0/1: validation needs a binary outcome")
		}
	}
	return scores, y, nil
}

// Design builds the model matrix of f over t's complete rows with
// treatment contrasts over lv (R's order: the intercept, then each term;
// in an interaction the first variable varies fastest), and the
// response (a two-level categorical response is 1 for its second
// level). Rows stay at the node: validation scores them there.
func Design(t *table.Table, f *stats.Formula, lv stats.Levels) (X [][]float64, y []float64, err error) {
	X, y, _, err = design(t, f, lv)
	return X, y, err
}

// design is Design with the indices of the rows used.
func design(t *table.Table, f *stats.Formula, lv stats.Levels) (X [][]float64, y []float64, used []int, err error) {
	type colv struct {
		num    []float64
		codes  []int32
		levels []string
		cat    bool
	}
	cols := map[string]*colv{}
	isCat := func(name string) bool {
		for _, c := range t.Schema.Columns {
			if c.Name == name {
				return c.Type == table.Categorical
			}
		}
		return false
	}
	for _, v := range f.Variables() {
		if isCat(v) {
			codes, levels, err := t.Codes(v)
			if err != nil {
				return nil, nil, nil, err
			}
			cols[v] = &colv{codes: codes, levels: levels, cat: true}
		} else {
			x, err := t.Float(v)
			if err != nil {
				return nil, nil, nil, err
			}
			cols[v] = &colv{num: x}
		}
	}
	// map each categorical column's codes to the agreed levels.
	agreed := map[string]map[int32]int{}
	for v, c := range cols {
		if !c.cat {
			continue
		}
		ls, ok := lv[v]
		if v == f.Response && !ok {
			ls, ok = c.levels, true
		}
		if !ok {
			// The node's own levels could be fewer than the model's and
			// shift its columns: the agreed levels are needed.
			return nil, nil, nil, fmt.Errorf("the levels of %s are needed (the analysis's levels)", v)
		}
		m := map[int32]int{}
		for i, l := range c.levels {
			m[int32(i)] = slices.Index(ls, l)
		}
		agreed[v] = m
	}
	levelsOf := func(v string) []string {
		if l, ok := lv[v]; ok {
			return l
		}
		return cols[v].levels
	}
	for i := 0; i < t.Rows(); i++ {
		ok := true
		for v, c := range cols {
			if c.cat {
				if c.codes[i] < 0 || agreed[v][c.codes[i]] < 0 {
					ok = false
				}
			} else if math.IsNaN(c.num[i]) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		rc := cols[f.Response]
		var yv float64
		if rc.cat {
			yv = float64(agreed[f.Response][rc.codes[i]])
		} else {
			yv = rc.num[i]
		}
		var row []float64
		if f.Intercept {
			row = append(row, 1)
		}
		for ti, term := range f.Terms {
			block := []float64{1}
			for vi, v := range term.Vars {
				c := cols[v]
				var part []float64
				if c.cat || (vi < len(term.Factor) && term.Factor[vi]) {
					var idx int
					if c.cat {
						idx = agreed[v][c.codes[i]]
					} else {
						idx = slices.Index(levelsOf(v), fmt.Sprint(c.num[i]))
					}
					nl := len(levelsOf(v))
					full := !f.Intercept && ti == 0 && len(term.Vars) == 1
					start := 1
					if full {
						start = 0
					}
					for l := start; l < nl; l++ {
						if l == idx {
							part = append(part, 1)
						} else {
							part = append(part, 0)
						}
					}
				} else {
					part = []float64{c.num[i]}
				}
				// first variable varies fastest
				nb := make([]float64, 0, len(block)*len(part))
				for _, p := range part {
					for _, b := range block {
						nb = append(nb, b*p)
					}
				}
				block = nb
			}
			row = append(row, block...)
		}
		X, y, used = append(X, row), append(y, yv), append(used, i)
	}
	return X, y, used, nil
}
