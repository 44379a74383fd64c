package stats

import (
	"fmt"
	"math"
	"sort"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/table"
)

// MaxSummaryVars bounds the variables of one summary.
const MaxSummaryVars = 100

// SummaryPart is one node's part of summaries of numeric variables:
// counts, sums and sums of squares (mean and variance pooled exactly).
type SummaryPart struct {
	Vars  []string
	N     []float64
	Sum   []float64
	SumSq []float64
	Used  []int `json:"-"`
}

// NodeSummary computes a node's summary part over the rows where every
// variable is present, refused under the floor (RefusedFloor), for as
// many variables as a fraction MaxParamFraction of the rows
// (RefusedSaturated: many moments over few rows let rows be solved
// for), or when a variable takes two values one of which fewer rows
// than the floor hold (RefusedLevel: its mean would count a small
// group).
func NodeSummary(t *table.Table, vars []string, pol Policy) (*SummaryPart, error) {
	s, err := src(t)
	if err != nil {
		return nil, err
	}
	return nodeSummary(s, vars, pol)
}

func nodeSummary(s source, vars []string, pol Policy) (*SummaryPart, error) {
	if len(vars) == 0 || len(vars) > MaxSummaryVars {
		return nil, fmt.Errorf("stats: a summary takes 1 to %d variables", MaxSummaryVars)
	}
	seen := map[string]bool{}
	cols := make([][]float64, len(vars))
	for i, v := range vars {
		if seen[v] {
			return nil, fmt.Errorf("stats: variable %q named twice", v)
		}
		seen[v] = true
		kind, err := varKind(s, v)
		if err != nil {
			return nil, err
		}
		if kind != table.Numeric {
			return nil, fmt.Errorf("stats: column %q is categorical; ask for a contingency table", v)
		}
		if cols[i], err = s.Float(v); err != nil {
			return nil, fmt.Errorf("stats: column %q: %w", v, err)
		}
	}
	used := completeRows(s.Rows(), cols)
	k := pol.floor()
	if len(used) < k {
		return nil, refuse(fed.RefusedFloor, "fewer complete rows than the node's floor")
	}
	if float64(len(vars)) >= pol.fraction()*float64(len(used)) {
		return nil, refuse(fed.RefusedSaturated, "%d variables for too few rows", len(vars))
	}
	p := &SummaryPart{Vars: append([]string(nil), vars...), Used: used}
	for i, x := range cols {
		if err := checkBinary(vars[i], x, used, k); err != nil {
			return nil, err
		}
		var sum, sq float64
		for _, r := range used {
			sum += x[r]
			sq += x[r] * x[r]
		}
		p.N = append(p.N, float64(len(used)))
		p.Sum = append(p.Sum, sum)
		p.SumSq = append(p.SumSq, sq)
	}
	return p, nil
}

func completeRows(n int, cols [][]float64) []int {
	used := make([]int, 0, n)
rows:
	for r := 0; r < n; r++ {
		for _, x := range cols {
			if math.IsNaN(x[r]) {
				continue rows
			}
		}
		used = append(used, r)
	}
	return used
}

// Vector flattens the part for secure aggregation: N, sums, then sums
// of squares, each per variable.
func (p *SummaryPart) Vector() []float64 {
	if p == nil {
		return nil
	}
	v := append(append(append([]float64{}, p.N...), p.Sum...), p.SumSq...)
	return v
}

// SummaryPartFromVector reads a vector made by Vector (or a sum).
func SummaryPartFromVector(vars []string, v []float64) (*SummaryPart, error) {
	n := len(vars)
	if n == 0 || len(v) != 3*n {
		return nil, fmt.Errorf("stats: a summary part of %d values for %d variables", len(v), n)
	}
	if !finite(v) {
		return nil, fmt.Errorf("stats: a summary part holds values that are not finite numbers")
	}
	return &SummaryPart{Vars: append([]string(nil), vars...), N: v[:n:n], Sum: v[n : 2*n : 2*n], SumSq: v[2*n:]}, nil
}

// VarSummary is the pooled summary of one variable.
type VarSummary struct {
	Var      string  `json:"var"`
	N        int     `json:"n"`
	Mean     float64 `json:"mean"`
	Variance float64 `json:"variance"`
	SD       float64 `json:"sd"`
}

// PoolSummary turns summed parts into means, variances (n − 1
// denominator, as R's var) and standard deviations.
func PoolSummary(sum *SummaryPart) ([]VarSummary, error) {
	if sum == nil || len(sum.N) != len(sum.Vars) || len(sum.Sum) != len(sum.Vars) || len(sum.SumSq) != len(sum.Vars) {
		return nil, fmt.Errorf("stats: a summary of the wrong shape")
	}
	var out []VarSummary
	for i, v := range sum.Vars {
		n := sum.N[i]
		if math.IsNaN(n) || n != math.Trunc(n) || n < 2 {
			return nil, fmt.Errorf("stats: %s: the summed count is not a count of at least 2", v)
		}
		mean := sum.Sum[i] / n
		variance := (sum.SumSq[i] - sum.Sum[i]*mean) / (n - 1)
		if variance < 0 {
			variance = 0
		}
		out = append(out, VarSummary{Var: v, N: int(n), Mean: mean, Variance: variance, SD: math.Sqrt(variance)})
	}
	return out, nil
}

// QuantilePart is a node's quantiles of one variable. Each value is
// the mean of a block of at least Floor sorted rows (never one row's
// value, never the minimum or maximum).
type QuantilePart struct {
	Var    string    `json:"var"`
	N      float64   `json:"n"`
	Probs  []float64 `json:"probs"`
	Values []float64 `json:"values"`
	Used   []int     `json:"-"`
}

// NodeQuantiles computes a node's quantiles of a numeric variable by
// this rule: the present values are sorted and cut into disjoint blocks
// of Floor rows (the last block takes the remainder); the quantile at p
// (R's type 7 position) is answered by the mean of the block that holds
// its position. The first and last blocks are never answered (a
// probability that falls in them is refused), so no answer is a single
// row's value, the minimum or the maximum, and answers to different
// probabilities are means of disjoint fixed groups that cannot be
// differenced down to a row.
func NodeQuantiles(t *table.Table, v string, probs []float64, pol Policy) (*QuantilePart, error) {
	s, err := src(t)
	if err != nil {
		return nil, err
	}
	return nodeQuantiles(s, v, probs, pol)
}

func nodeQuantiles(s source, v string, probs []float64, pol Policy) (*QuantilePart, error) {
	if len(probs) == 0 || len(probs) > 99 {
		return nil, fmt.Errorf("stats: 1 to 99 probabilities")
	}
	kind, err := varKind(s, v)
	if err != nil {
		return nil, err
	}
	if kind != table.Numeric {
		return nil, fmt.Errorf("stats: column %q is categorical", v)
	}
	x, err := s.Float(v)
	if err != nil {
		return nil, fmt.Errorf("stats: column %q: %w", v, err)
	}
	used := completeRows(s.Rows(), [][]float64{x})
	k := pol.floor()
	n := len(used)
	if n < 3*k {
		return nil, refuse(fed.RefusedFloor, "fewer than three times the floor's rows for quantiles")
	}
	if err := checkBinary(v, x, used, k); err != nil {
		return nil, err
	}
	vals := make([]float64, n)
	for i, r := range used {
		vals[i] = x[r]
	}
	sort.Float64s(vals)
	blocks := n / k // the last block holds k to 2k−1 rows
	p := &QuantilePart{Var: v, N: float64(n), Used: used}
	for _, pr := range probs {
		if !(pr > 0 && pr < 1) {
			return nil, fmt.Errorf("stats: probability %v outside (0, 1)", pr)
		}
		pos := int(math.Floor(pr * float64(n-1)))
		b := pos / k
		if b >= blocks {
			b = blocks - 1
		}
		if b == 0 || b == blocks-1 {
			return nil, refuse(fed.RefusedFloor, "probability %v falls among the smallest or largest rows", pr)
		}
		lo, hi := b*k, (b+1)*k
		sum := 0.0
		for _, y := range vals[lo:hi] {
			sum += y
		}
		p.Probs = append(p.Probs, pr)
		p.Values = append(p.Values, sum/float64(hi-lo))
	}
	return p, nil
}

// PoolQuantiles combines nodes' quantiles by their row-weighted mean.
// This is an approximation of the pooled quantile (each node answers
// with block means), not an exact figure; docs/processing.md says so.
func PoolQuantiles(parts []*QuantilePart) (*QuantilePart, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("stats: no quantile parts")
	}
	out := &QuantilePart{Var: parts[0].Var, Probs: parts[0].Probs, Values: make([]float64, len(parts[0].Probs))}
	for _, p := range parts {
		if p == nil || p.Var != out.Var || len(p.Probs) != len(out.Probs) || len(p.Values) != len(out.Probs) {
			return nil, fmt.Errorf("stats: quantile parts do not match")
		}
		for i := range p.Probs {
			if p.Probs[i] != out.Probs[i] {
				return nil, fmt.Errorf("stats: quantile parts do not match")
			}
			out.Values[i] += p.N * p.Values[i]
		}
		out.N += p.N
	}
	for i := range out.Values {
		out.Values[i] /= out.N
	}
	return out, nil
}

// ContingencyPart is a node's counts of the cells of a table of one or
// two categorical variables over the agreed levels, the first variable
// varying fastest.
type ContingencyPart struct {
	Vars   []string  `json:"vars"`
	Dims   []int     `json:"dims"`
	Counts []float64 `json:"counts"`
	Used   []int     `json:"-"`
}

// NodeContingencyLevels returns the levels of categorical columns
// present in the node's complete rows (for the hub's MergeLevels),
// refused when a level has fewer rows than the floor.
func NodeContingencyLevels(t *table.Table, vars []string, pol Policy) (Levels, error) {
	s, err := src(t)
	if err != nil {
		return nil, err
	}
	return contingencyLevels(s, vars, pol)
}

func contingencyLevels(s source, vars []string, pol Policy) (Levels, error) {
	cp, err := contingency(s, vars, nil, pol)
	if err != nil {
		return nil, err
	}
	lv := Levels{}
	for _, v := range vars {
		codes, levels, _ := s.Codes(v)
		present := make([]bool, len(levels))
		for _, r := range cp.Used {
			present[codes[r]] = true
		}
		for l, ok := range present {
			if ok {
				lv[v] = append(lv[v], levels[l])
			}
		}
	}
	return lv, nil
}

// NodeContingency counts the cells of a table of one or two categorical
// columns over the agreed levels lv. It is refused under the floor and
// when any cell holds between 1 and Floor − 1 rows (RefusedLevel).
// Zero cells are counted as zero: they leave only inside a secure sum,
// and the hub's SuppressCells hides pooled cells under the floor,
// zeros included.
func NodeContingency(t *table.Table, vars []string, lv Levels, pol Policy) (*ContingencyPart, error) {
	s, err := src(t)
	if err != nil {
		return nil, err
	}
	if lv == nil {
		return nil, fmt.Errorf("stats: no agreed levels")
	}
	return contingency(s, vars, lv, pol)
}

// contingency counts cells; with lv nil it uses the node's own levels.
func contingency(s source, vars []string, lv Levels, pol Policy) (*ContingencyPart, error) {
	if len(vars) < 1 || len(vars) > 2 || (len(vars) == 2 && vars[0] == vars[1]) {
		return nil, fmt.Errorf("stats: a contingency table takes one or two distinct columns")
	}
	codes := make([][]int32, len(vars))
	lookup := make([][]int32, len(vars))
	dims := make([]int, len(vars))
	for i, v := range vars {
		kind, err := varKind(s, v)
		if err != nil {
			return nil, err
		}
		if kind != table.Categorical {
			return nil, fmt.Errorf("stats: column %q is not categorical", v)
		}
		c, levels, err := s.Codes(v)
		if err != nil {
			return nil, fmt.Errorf("stats: column %q: %w", v, err)
		}
		codes[i] = c
		agreed := levels
		if lv != nil {
			agreed = lv[v]
			if len(agreed) == 0 {
				return nil, fmt.Errorf("stats: no agreed levels for %s", v)
			}
		}
		pos := map[string]int32{}
		for j, l := range agreed {
			pos[l] = int32(j)
		}
		lookup[i] = make([]int32, len(levels))
		for j, l := range levels {
			g, ok := pos[l]
			if !ok {
				g = -1
			}
			lookup[i][j] = g
		}
		dims[i] = len(agreed)
	}
	cells := 1
	for _, d := range dims {
		cells *= d
	}
	if cells > 100000 {
		return nil, fmt.Errorf("stats: a contingency table of more than 100000 cells")
	}
	p := &ContingencyPart{Vars: append([]string(nil), vars...), Dims: dims, Counts: make([]float64, cells)}
rows:
	for r := 0; r < s.Rows(); r++ {
		cell, m := 0, 1
		for i := range vars {
			c := codes[i][r]
			if c < 0 {
				continue rows
			}
			g := lookup[i][c]
			if g < 0 {
				return nil, refuse(fed.RefusedInvalid, "%s has a level missing from the agreed levels", vars[i])
			}
			cell += int(g) * m
			m *= dims[i]
		}
		p.Counts[cell]++
		p.Used = append(p.Used, r)
	}
	k := float64(pol.floor())
	if float64(len(p.Used)) < k {
		return nil, refuse(fed.RefusedFloor, "fewer complete rows than the node's floor")
	}
	for _, c := range p.Counts {
		if c > 0 && c < k {
			return nil, refuse(fed.RefusedLevel, "a cell has fewer rows than the floor")
		}
	}
	return p, nil
}

// SuppressCells returns the pooled counts with every cell under the
// floor (zeros included, which can be as telling as small counts) set
// to NaN, and how many were suppressed.
func SuppressCells(counts []float64, floor int) ([]float64, int) {
	out := make([]float64, len(counts))
	n := 0
	for i, c := range counts {
		if c < float64(floor) {
			out[i] = math.NaN()
			n++
		} else {
			out[i] = c
		}
	}
	return out, n
}
