package fl

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
)

// Federated validation. Each node scores its rows with the model and
// returns counts only: confusion counts at each threshold of a grid,
// and per calibration bin the rows, the positives and the sum of
// scores. The parts are summed (under secure aggregation) and Merge
// turns the sum into AUC, sensitivity, specificity and a calibration
// curve: exactly what the pooled computation over all nodes' rows
// gives on the same grid and bins, because every part is a vector of
// counts (and of sums of scores rounded to multiples of 2^-24, see
// ScoreQuantum), whose sums are exact in any order.
//
// The floor rule. The grid's thresholds and the calibration bins' inner
// edges together cut the score axis into intervals ("atoms"): below
// the first cut, between adjacent cuts, at or above the last cut. Every
// count that leaves a node is a sum over whole atoms, and the
// difference of two such counts is again one, so the rule is on atoms:
// at every node, every atom holds at least floor positives and at least
// floor negatives. A node with fewer than floor positives or negatives
// in all refuses (ErrFloor). Empty atoms and atoms of one class are
// merged too, since they would tell that every row in some score range
// has the same label.
//
// Atoms are merged identically at every node, in two steps:
//
//  1. The hub sends the plan (grid and bins). Each node returns
//     Suppress: a 0/1 vector over the plan's cuts naming the cuts it
//     cannot keep (see Suppress for the rule, on intervals the plan
//     fixes, the same at every node). The vectors are summed, under
//     secure aggregation, so the hub learns how many nodes marked each
//     cut, not which.
//  2. Plan.Coarsen drops every cut some node marked, from both the grid
//     and the bins. Every atom of the coarser plan then holds at least
//     floor positives and negatives at every node. Nodes answer
//     NodeValidationPlan on the coarser plan; Merge of the sum equals
//     the pooled computation on the coarser plan.
//
// The rule limits what counts tell about small groups of rows; it does
// not stop a validation program from writing data into its scores (a
// score that is the label itself): programs run only when approved, and
// scores never leave the node.

// ScoreQuantum is the precision of the scores summed in calibration
// bins: each score is rounded to a multiple of it first, so that sums of
// up to 2^29 scores are exact in float64 in any order.
const ScoreQuantum = 1.0 / (1 << 24)

// MaxGrid bounds a validation grid's thresholds and calibration bins.
const MaxGrid = 100000

// ErrFloor reports a node whose positives or negatives are under the
// floor (the refusal code fed.RefusedFloor).
var ErrFloor = errors.New("fl: validation: fewer positives or negatives than the floor")

// ErrCoarsen reports a plan too fine for a node's rows: some atom holds
// fewer than floor positives or negatives. Run Suppress and Coarsen.
var ErrCoarsen = errors.New("fl: validation: the grid is too fine for this node's rows; coarsen it first")

// Plan is the threshold grid and calibration bins of a validation.
type Plan struct {
	// Grid are the thresholds, strictly ascending.
	Grid []float64 `json:"grid"`
	// CalEdges are the calibration bins' edges, from 0 to 1 strictly
	// ascending (bin j is [CalEdges[j], CalEdges[j+1]), the last one
	// includes 1); empty for no calibration. Scores must then be in
	// [0, 1].
	CalEdges []float64 `json:"cal_edges,omitempty"`
}

// EqualWidth returns the edges of bins bins of equal width over [0, 1]
// (nil for none).
func EqualWidth(bins int) []float64 {
	if bins <= 0 {
		return nil
	}
	e := make([]float64, bins+1)
	for j := range e {
		e[j] = float64(j) / float64(bins)
	}
	return e
}

// NewPlan is the plan of grid and bins equal-width calibration bins.
func NewPlan(grid []float64, bins int) (Plan, error) {
	if bins < 0 || bins > MaxGrid {
		return Plan{}, fmt.Errorf("fl: validation: %d calibration bins (want 0 to %d)", bins, MaxGrid)
	}
	p := Plan{Grid: slices.Clone(grid), CalEdges: EqualWidth(bins)}
	return p, p.Validate()
}

// Bins is the number of calibration bins.
func (p Plan) Bins() int { return max(0, len(p.CalEdges)-1) }

// Validate checks the plan.
func (p Plan) Validate() error {
	if len(p.Grid) > MaxGrid || len(p.CalEdges) > MaxGrid+1 {
		return fmt.Errorf("fl: validation: more than %d thresholds or bins", MaxGrid)
	}
	for i, t := range p.Grid {
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return errors.New("fl: validation: a threshold is not a finite number")
		}
		if i > 0 && !(t > p.Grid[i-1]) {
			return errors.New("fl: validation: thresholds are not strictly ascending")
		}
	}
	if len(p.CalEdges) == 0 {
		return nil
	}
	if len(p.CalEdges) < 2 || p.CalEdges[0] != 0 || p.CalEdges[len(p.CalEdges)-1] != 1 {
		return errors.New("fl: validation: calibration edges must go from 0 to 1")
	}
	for i := 1; i < len(p.CalEdges); i++ {
		if !(p.CalEdges[i] > p.CalEdges[i-1]) {
			return errors.New("fl: validation: calibration edges are not strictly ascending")
		}
	}
	return nil
}

// Cuts are the points that cut the score axis into atoms: the grid's
// thresholds and the calibration bins' inner edges, ascending, each
// once.
func (p Plan) Cuts() []float64 {
	c := slices.Clone(p.Grid)
	if len(p.CalEdges) > 2 {
		c = append(c, p.CalEdges[1:len(p.CalEdges)-1]...)
	}
	slices.Sort(c)
	return slices.Compact(c)
}

// Coarsen drops from the plan every cut whose entry of suppress (a sum
// of Suppress vectors, one entry per cut of Cuts) is not zero.
func (p Plan) Coarsen(suppress []float64) (Plan, error) {
	if err := p.Validate(); err != nil {
		return Plan{}, err
	}
	cuts := p.Cuts()
	if len(suppress) != len(cuts) {
		return Plan{}, fmt.Errorf("fl: validation: suppress vector has %d entries, the plan %d cuts", len(suppress), len(cuts))
	}
	drop := map[float64]bool{}
	for i, s := range suppress {
		if math.IsNaN(s) || math.IsInf(s, 0) || s < 0 {
			return Plan{}, errors.New("fl: validation: suppress vector is not counts")
		}
		// Sums arrive through fixed-point encodings: a count is at least 1.
		if s >= 0.5 {
			drop[cuts[i]] = true
		}
	}
	var q Plan
	for _, t := range p.Grid {
		if !drop[t] {
			q.Grid = append(q.Grid, t)
		}
	}
	if len(p.CalEdges) > 0 {
		q.CalEdges = []float64{0}
		for _, e := range p.CalEdges[1 : len(p.CalEdges)-1] {
			if !drop[e] {
				q.CalEdges = append(q.CalEdges, e)
			}
		}
		q.CalEdges = append(q.CalEdges, 1)
	}
	return q, nil
}

// atoms counts positives, negatives and rounded score sums per atom.
type atoms struct {
	cuts          []float64
	pos, neg, sum []float64
	p, n          float64
}

func countAtoms(scores, labels []float64, p Plan) (*atoms, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if len(scores) != len(labels) {
		return nil, fmt.Errorf("fl: validation: %d scores and %d labels", len(scores), len(labels))
	}
	a := &atoms{cuts: p.Cuts()}
	k := len(a.cuts) + 1
	a.pos, a.neg, a.sum = make([]float64, k), make([]float64, k), make([]float64, k)
	cal := len(p.CalEdges) > 0
	for i, s := range scores {
		if math.IsNaN(s) || math.IsInf(s, 0) {
			return nil, fmt.Errorf("fl: validation: score of row %d is not a finite number", i+1)
		}
		if cal && (s < 0 || s > 1) {
			return nil, fmt.Errorf("fl: validation: score of row %d is outside [0, 1], as calibration needs", i+1)
		}
		j := sort.Search(len(a.cuts), func(c int) bool { return a.cuts[c] > s })
		switch labels[i] {
		case 1:
			a.pos[j]++
			a.p++
		case 0:
			a.neg[j]++
			a.n++
		default:
			return nil, fmt.Errorf("fl: validation: label of row %d is not 0 or 1", i+1)
		}
		a.sum[j] += math.Round(s/ScoreQuantum) * ScoreQuantum
	}
	return a, nil
}

func checkFloor(a *atoms, floor int) error {
	if floor < 1 {
		return fmt.Errorf("fl: validation: floor %d must be at least 1", floor)
	}
	if a.p < float64(floor) || a.n < float64(floor) {
		return ErrFloor
	}
	return nil
}

// Suppress is a node's first step: over the plan's cuts (Cuts), 1 for
// each cut the node cannot keep, 0 for the others. The cuts form a
// balanced binary search tree by index (the root is the middle cut;
// each half of the cuts below and above it is a subtree, built the same
// way); a cut's two child intervals run from it to the nearest cuts
// above it in the tree on each side (to ±infinity if none). The node
// marks a cut when either child interval holds fewer than floor
// positives or negatives at this node.
//
// Coarsen keeps a cut only when no node marked it. Then each interval
// between adjacent kept cuts contains a child interval of one of its two
// ends (of the one deeper in the tree, or of both when their common
// ancestor lies between them), which passes at every node: so every
// atom of the coarser plan holds at least floor positives and negatives
// at every node. Because each cut's intervals are fixed by the plan, the
// nodes' marks agree where their data allow, and the coarser plan keeps
// the resolution the nodes share.
func Suppress(scores, labels []float64, p Plan, floor int) ([]float64, error) {
	a, err := countAtoms(scores, labels, p)
	if err != nil {
		return nil, err
	}
	if err := checkFloor(a, floor); err != nil {
		return nil, err
	}
	f := float64(floor)
	// Prefix sums over atoms: atoms i..j hold cp[j+1]-cp[i] positives.
	cp, cn := make([]float64, len(a.pos)+1), make([]float64, len(a.pos)+1)
	for j := range a.pos {
		cp[j+1], cn[j+1] = cp[j]+a.pos[j], cn[j]+a.neg[j]
	}
	fails := func(i, j int) bool { return cp[j+1]-cp[i] < f || cn[j+1]-cn[i] < f }
	drop := make([]float64, len(a.cuts))
	// Cuts lo..hi-1 form a subtree spanning atoms lo..hi; cut c sits
	// between atoms c and c+1.
	var walk func(lo, hi int)
	walk = func(lo, hi int) {
		if lo >= hi {
			return
		}
		mid := lo + (hi-lo)/2
		if fails(lo, mid) || fails(mid+1, hi) {
			drop[mid] = 1
		}
		walk(lo, mid)
		walk(mid+1, hi)
	}
	walk(0, len(a.cuts))
	return drop, nil
}

// ValidationPart is one node's aggregates over a threshold grid and
// calibration bins.
type ValidationPart struct {
	Grid []float64 // thresholds, ascending
	TP   []float64 // per threshold: score >= t and label 1
	FP   []float64
	TN   []float64
	FN   []float64
	// Calibration bins of equal width over [0,1]: count, sum of scores,
	// positives.
	BinCount []float64
	BinScore []float64
	BinPos   []float64
	// CalEdges are the bins' edges (a coarsened plan's bins need not be
	// of equal width); Positives and Negatives the rows of each label.
	CalEdges  []float64
	Positives float64
	Negatives float64
}

// NodeValidation computes a node's part from scores and labels (0 or 1)
// with floor applied (see its doc).
func NodeValidation(scores, labels []float64, grid []float64, bins int, floor int) (*ValidationPart, error) {
	p, err := NewPlan(grid, bins)
	if err != nil {
		return nil, err
	}
	return NodeValidationPlan(scores, labels, p, floor)
}

// NodeValidationPlan computes a node's part on a plan, refusing with
// ErrFloor when the node has fewer than floor positives or negatives,
// and with ErrCoarsen when an atom of the plan holds fewer than floor
// positives or negatives at this node (the floor rule above).
func NodeValidationPlan(scores, labels []float64, p Plan, floor int) (*ValidationPart, error) {
	a, err := countAtoms(scores, labels, p)
	if err != nil {
		return nil, err
	}
	if err := checkFloor(a, floor); err != nil {
		return nil, err
	}
	for j := range a.pos {
		if a.pos[j] < float64(floor) || a.neg[j] < float64(floor) {
			return nil, ErrCoarsen
		}
	}
	return a.part(p), nil
}

// part turns atom counts into the part of plan p.
func (a *atoms) part(p Plan) *ValidationPart {
	idx := func(c float64) int { i, _ := slices.BinarySearch(a.cuts, c); return i }
	k, m := len(p.Grid), p.Bins()
	v := &ValidationPart{Grid: slices.Clone(p.Grid), CalEdges: slices.Clone(p.CalEdges), Positives: a.p, Negatives: a.n,
		TP: make([]float64, k), FP: make([]float64, k), TN: make([]float64, k), FN: make([]float64, k),
		BinCount: make([]float64, m), BinScore: make([]float64, m), BinPos: make([]float64, m)}
	// Suffix sums: rows with score >= cut c are the atoms above c.
	sp, sn := make([]float64, len(a.pos)+1), make([]float64, len(a.pos)+1)
	for j := len(a.pos) - 1; j >= 0; j-- {
		sp[j], sn[j] = sp[j+1]+a.pos[j], sn[j+1]+a.neg[j]
	}
	for i, t := range p.Grid {
		c := idx(t)
		tp, fp := sp[c+1], sn[c+1]
		v.TP[i], v.FP[i], v.FN[i], v.TN[i] = tp, fp, a.p-tp, a.n-fp
	}
	for b := range m {
		lo, hi := 0, len(a.pos)
		if b > 0 {
			lo = idx(p.CalEdges[b]) + 1
		}
		if b < m-1 {
			hi = idx(p.CalEdges[b+1]) + 1
		}
		for j := lo; j < hi; j++ {
			v.BinCount[b] += a.pos[j] + a.neg[j]
			v.BinPos[b] += a.pos[j]
			v.BinScore[b] += a.sum[j]
		}
	}
	return v
}

// Vector flattens the part for secure aggregation.
func (p *ValidationPart) Vector() []float64 {
	var v []float64
	for _, s := range [][]float64{p.TP, p.FP, p.TN, p.FN, p.BinCount, p.BinScore, p.BinPos} {
		v = append(v, s...)
	}
	return append(v, p.Positives, p.Negatives)
}

// VectorLength is the length of the Vector of a part of plan p.
func (p Plan) VectorLength() int { return 4*len(p.Grid) + 3*p.Bins() + 2 }

// ValidationPartFromVector reads a vector made by Vector (or a sum).
func ValidationPartFromVector(grid []float64, bins int, v []float64) (*ValidationPart, error) {
	p, err := NewPlan(grid, bins)
	if err != nil {
		return nil, err
	}
	return PartFromVector(p, v)
}

// PartFromVector reads a vector made by Vector (or a sum) for plan p.
func PartFromVector(p Plan, v []float64) (*ValidationPart, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if len(v) != p.VectorLength() {
		return nil, fmt.Errorf("fl: validation: vector of %d values, the plan wants %d", len(v), p.VectorLength())
	}
	k, m := len(p.Grid), p.Bins()
	take := func(n int) []float64 { s := slices.Clone(v[:n]); v = v[n:]; return s }
	part := &ValidationPart{Grid: slices.Clone(p.Grid), CalEdges: slices.Clone(p.CalEdges)}
	part.TP, part.FP, part.TN, part.FN = take(k), take(k), take(k), take(k)
	part.BinCount, part.BinScore, part.BinPos = take(m), take(m), take(m)
	part.Positives, part.Negatives = v[0], v[1]
	return part, nil
}

// Add adds q to p (a plain sum of parts of one plan).
func (p *ValidationPart) Add(q *ValidationPart) error {
	if !slices.Equal(p.Grid, q.Grid) || !slices.Equal(p.CalEdges, q.CalEdges) {
		return errors.New("fl: validation: parts of different plans")
	}
	pv, qv := p.Vector(), q.Vector()
	if len(pv) != len(qv) {
		return errors.New("fl: validation: parts of different lengths")
	}
	for i := range pv {
		pv[i] += qv[i]
	}
	s, err := PartFromVector(Plan{Grid: p.Grid, CalEdges: p.CalEdges}, pv)
	if err != nil {
		return err
	}
	*p = *s
	return nil
}

// ValidationResult is the merged validation.
type ValidationResult struct {
	N           float64   `json:"n"`
	Positives   float64   `json:"positives"`
	AUC         float64   `json:"auc"`
	Grid        []float64 `json:"grid"`
	Sensitivity []float64 `json:"sensitivity"`
	Specificity []float64 `json:"specificity"`
	// Calibration per bin: mean predicted and observed rate (NaN for an
	// empty bin is written as null).
	CalPredicted []float64 `json:"cal_predicted"`
	CalObserved  []float64 `json:"cal_observed"`
	CalCount     []float64 `json:"cal_count"`
	// CalEdges are the calibration bins' edges.
	CalEdges []float64 `json:"cal_edges"`
}

// MarshalJSON writes NaN (an empty bin) as null.
func (r ValidationResult) MarshalJSON() ([]byte, error) {
	type plain ValidationResult
	nulls := func(v []float64) []*float64 {
		out := make([]*float64, len(v))
		for i := range v {
			if !math.IsNaN(v[i]) && !math.IsInf(v[i], 0) {
				out[i] = &v[i]
			}
		}
		return out
	}
	var auc *float64
	if !math.IsNaN(r.AUC) {
		auc = &r.AUC
	}
	return json.Marshal(struct {
		plain
		AUC          *float64   `json:"auc"`
		CalPredicted []*float64 `json:"cal_predicted"`
		CalObserved  []*float64 `json:"cal_observed"`
	}{plain(r), auc, nulls(r.CalPredicted), nulls(r.CalObserved)})
}

// count rounds a summed count to an integer; sums that arrive through
// fixed-point encodings may carry a tiny error.
func count(x float64) (float64, error) {
	r := math.Round(x)
	if math.IsNaN(x) || math.IsInf(x, 0) || r < 0 || math.Abs(x-r) > 1e-6 {
		return 0, errors.New("fl: validation: a count is not a non-negative whole number")
	}
	return r, nil
}

// Merge turns a summed part into the metrics: sensitivity and
// specificity per threshold, the AUC by the trapezoid rule over the ROC
// points of the grid with (0,0) and (1,1), and the calibration curve.
func Merge(sum *ValidationPart) (*ValidationResult, error) {
	if sum == nil {
		return nil, errors.New("fl: validation: nothing to merge")
	}
	p := Plan{Grid: sum.Grid, CalEdges: sum.CalEdges}
	if len(p.CalEdges) == 0 && len(sum.BinCount) > 0 {
		p.CalEdges = EqualWidth(len(sum.BinCount))
	}
	// Round every count, through the vector.
	v := sum.Vector()
	s, err := PartFromVector(p, v)
	if err != nil {
		return nil, err
	}
	k, m := len(s.Grid), len(s.BinCount)
	for _, arr := range [][]float64{s.TP, s.FP, s.TN, s.FN, s.BinCount, s.BinPos} {
		for i := range arr {
			if arr[i], err = count(arr[i]); err != nil {
				return nil, err
			}
		}
	}
	if s.Positives, err = count(s.Positives); err != nil {
		return nil, err
	}
	if s.Negatives, err = count(s.Negatives); err != nil {
		return nil, err
	}
	P, N := s.Positives, s.Negatives
	if P == 0 || N == 0 {
		return nil, errors.New("fl: validation: no positives or no negatives in the sum")
	}
	r := &ValidationResult{N: P + N, Positives: P, Grid: slices.Clone(s.Grid), CalEdges: slices.Clone(s.CalEdges),
		Sensitivity: make([]float64, k), Specificity: make([]float64, k),
		CalPredicted: make([]float64, m), CalObserved: make([]float64, m), CalCount: slices.Clone(s.BinCount)}
	for i := range k {
		if s.TP[i]+s.FN[i] != P || s.FP[i]+s.TN[i] != N {
			return nil, fmt.Errorf("fl: validation: counts at threshold %d do not add up to the totals", i+1)
		}
		if i > 0 && (s.TP[i] > s.TP[i-1] || s.FP[i] > s.FP[i-1]) {
			return nil, errors.New("fl: validation: counts grow with the threshold")
		}
		r.Sensitivity[i] = s.TP[i] / P
		r.Specificity[i] = s.TN[i] / N
	}
	// ROC from the highest threshold (fewest positives called) down.
	x0, y0, auc := 0.0, 0.0, 0.0
	for i := k - 1; i >= -1; i-- {
		x, y := 1.0, 1.0
		if i >= 0 {
			x, y = s.FP[i]/N, s.TP[i]/P
		}
		auc += (x - x0) * (y + y0) / 2
		x0, y0 = x, y
	}
	r.AUC = auc
	var binRows float64
	for b := range m {
		c := s.BinCount[b]
		binRows += c
		if s.BinPos[b] > c {
			return nil, errors.New("fl: validation: a bin has more positives than rows")
		}
		if c == 0 {
			r.CalPredicted[b], r.CalObserved[b] = math.NaN(), math.NaN()
			continue
		}
		r.CalPredicted[b] = s.BinScore[b] / c
		r.CalObserved[b] = s.BinPos[b] / c
	}
	if m > 0 && binRows != P+N {
		return nil, errors.New("fl: validation: calibration bins do not hold every row")
	}
	return r, nil
}
