package compute

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/mosaic-imaging/mosaic/internal/stats"
	"github.com/mosaic-imaging/mosaic/internal/table"
)

// Analysis types.
const (
	TypeSummary = "summary"
	TypeLM      = "lm"
	TypeGLM     = "glm"
)

// AnalysisRequest is a federated analysis as the API takes it.
type AnalysisRequest struct {
	Type      string   `json:"type"`
	Formula   string   `json:"formula,omitempty"`
	Table     string   `json:"table"`
	Family    string   `json:"family,omitempty"`
	Variables []string `json:"variables,omitempty"`
}

// Check refuses a malformed request with a clear error.
func (q *AnalysisRequest) Check() error {
	if !table.ValidName(q.Table) {
		return errors.New("table: give the name of a research table (letters, digits, - and _)")
	}
	switch q.Type {
	case TypeSummary:
		if len(q.Variables) == 0 || len(q.Variables) > 100 {
			return errors.New("variables: a summary needs 1 to 100 numeric variables")
		}
	case TypeLM, TypeGLM:
		if _, err := stats.ParseFormula(q.Formula); err != nil {
			return fmt.Errorf("formula: %w", err)
		}
		if q.Type == TypeGLM {
			if q.Family == "" {
				q.Family = "binomial"
			}
			if q.Family != "binomial" {
				return errors.New("family: only binomial (logistic regression) is supported")
			}
		} else if q.Family != "" && q.Family != "gaussian" {
			return errors.New("family: lm is gaussian; use type glm for binomial")
		}
	default:
		return errors.New("type: summary, lm or glm")
	}
	return nil
}

// VarSummary is the pooled summary of one numeric variable.
type VarSummary struct {
	Variable string  `json:"variable"`
	N        float64 `json:"n"`
	Mean     float64 `json:"mean"`
	SD       float64 `json:"sd"`
}

// AnalysisResult is a federated analysis's outcome: the fit (lm, glm)
// or the summaries, the rows each node used, and the nodes that refused
// or dropped with why.
type AnalysisResult struct {
	*stats.Fit
	Summary []VarSummary `json:"summary,omitempty"`
	// Levels are the categorical variables' levels the fit used (each
	// over every node's floor), for validating the fitted model.
	Levels      stats.Levels      `json:"levels,omitempty"`
	RowsPerNode map[string]int    `json:"rows_per_node"`
	Refused     map[string]string `json:"refused"`
}

// Analyze runs a federated analysis over targets.
func (r *Runner) Analyze(ctx context.Context, comp string, q AnalysisRequest, targets []Target) (*AnalysisResult, error) {
	if err := q.Check(); err != nil {
		return nil, err
	}
	defer r.End(context.WithoutCancel(ctx), comp, targets)
	res := &AnalysisResult{RowsPerNode: map[string]int{}, Refused: map[string]string{}}
	if q.Type == TypeSummary {
		n := len(q.Variables)
		agg, err := r.Aggregate(ctx, comp, 1, comp+"/summary", targets, Part{Kind: PartSummary, Table: q.Table, Variables: q.Variables}, 3*n)
		if agg != nil {
			res.RowsPerNode, res.Refused = agg.Rows, agg.Left
		}
		if err != nil {
			return res, err
		}
		for i, v := range q.Variables {
			cnt, s, ss := agg.Sum[i], agg.Sum[n+i], agg.Sum[2*n+i]
			vs := VarSummary{Variable: v, N: math.Round(cnt)}
			if cnt > 0 {
				vs.Mean = s / cnt
			}
			if cnt > 1 {
				vs.SD = math.Sqrt(max((ss-s*s/cnt)/(cnt-1), 0))
			}
			res.Summary = append(res.Summary, vs)
		}
		return res, nil
	}
	f, err := stats.ParseFormula(q.Formula)
	if err != nil {
		return nil, err
	}
	// Levels: the sorted union of the nodes' levels over their floors.
	left := map[string]outcome{}
	got := r.each(ctx, comp, StepLevels, 0, targets, r.timeout(), func(Target) (any, error) {
		return LevelsParams{Table: q.Table, Formula: q.Formula}, nil
	}, nil, left)
	union := map[string]map[string]bool{}
	types := map[string]string{}
	var live []Target
	for _, t := range targets {
		a, ok := got[t.Node]
		if !ok {
			continue
		}
		var lr LevelsResult
		if err := json.Unmarshal(a.Result, &lr); err != nil {
			left[t.Node] = outcome{Code: "error", Reason: "malformed levels"}
			continue
		}
		for v, ls := range lr.Levels {
			if union[v] == nil {
				union[v] = map[string]bool{}
			}
			for _, l := range ls {
				union[v][l] = true
			}
		}
		for v, ty := range lr.Types {
			if old, ok := types[v]; ok && old != ty {
				left[t.Node] = outcome{Code: "invalid", Reason: "variable " + v + " has another type at this node"}
				continue
			}
			types[v] = ty
		}
		live = append(live, t)
	}
	for n, o := range left {
		res.Refused[n] = o.String()
	}
	if len(live) == 0 {
		return res, fmt.Errorf("%w: every node refused (%s)", ErrTooFew, describeLeft(left))
	}
	lv := stats.Levels{}
	for v, set := range union {
		ls := make([]string, 0, len(set))
		for l := range set {
			ls = append(ls, l)
		}
		sort.Strings(ls)
		lv[v] = ls
	}
	res.Levels = lv
	coefs, err := hubCoefficients(f, lv, types)
	if err != nil {
		return res, err
	}
	P := len(coefs)
	merge := func(agg *Aggregation) {
		for n, k := range agg.Rows {
			res.RowsPerNode[n] = k
		}
		for n, why := range agg.Left {
			res.Refused[n] = why
		}
	}
	if q.Type == TypeLM {
		agg, err := r.Aggregate(ctx, comp, 1, comp+"/lm", live, Part{Kind: PartLM, Table: q.Table, Formula: q.Formula, Levels: lv}, 2+P+P*(P+1)/2)
		if agg != nil {
			merge(agg)
		}
		if err != nil {
			return res, err
		}
		sum, err := stats.LMPartFromVector(P, agg.Sum)
		if err != nil {
			return res, err
		}
		fit, err := stats.FitLM(coefs, sum)
		if err != nil {
			return res, err
		}
		fit.RowsPerNode = res.RowsPerNode
		res.Fit = fit
		return res, nil
	}
	// glm: one secure aggregation per Newton step, over the nodes of the
	// first step (a node that leaves later would change the data).
	var fixed []Target
	eval := func(ctx context.Context, iter int, beta []float64) (*stats.GLMPart, error) {
		on := live
		if fixed != nil {
			on = fixed
		}
		agg, err := r.Aggregate(ctx, comp, iter, fmt.Sprintf("%s/glm/%d", comp, iter), on, Part{Kind: PartGLM, Table: q.Table, Formula: q.Formula, Family: q.Family, Levels: lv, Beta: beta}, 2+P+P*(P+1)/2)
		if agg != nil {
			merge(agg)
		}
		if err != nil {
			return nil, err
		}
		if fixed == nil {
			for _, t := range on {
				if _, ok := agg.Rows[t.Node]; ok {
					fixed = append(fixed, t)
				}
			}
		} else if len(agg.Rows) != len(fixed) {
			return nil, fmt.Errorf("compute: a node left the fit at Newton step %d; the fit would mix data and is stopped", iter)
		}
		return stats.GLMPartFromVector(P, agg.Sum)
	}
	fit, err := stats.FitGLM(ctx, coefs, q.Family, eval, 25)
	if err != nil {
		return res, err
	}
	fit.RowsPerNode = res.RowsPerNode
	res.Fit = fit
	return res, nil
}

// hubCoefficients names a model's coefficients at the hub, which has no
// rows: an empty table of the variables' types stands for the nodes'.
func hubCoefficients(f *stats.Formula, lv stats.Levels, types map[string]string) ([]string, error) {
	var header []string
	dict := &table.Dictionary{Columns: map[string]table.Type{}}
	for _, v := range f.Variables() {
		ty, ok := types[v]
		if !ok {
			return nil, fmt.Errorf("compute: no node described variable %s", v)
		}
		header = append(header, v)
		dict.Columns[v] = table.Type(ty)
	}
	t, err := table.ReadCSV(bytes.NewReader([]byte(strings.Join(header, ",")+"\n")), dict, table.Limits{})
	if err != nil {
		return nil, fmt.Errorf("compute: the variables' types: %w", err)
	}
	return stats.Coefficients(f, lv, t)
}
