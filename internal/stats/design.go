package stats

import (
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/table"
)

// MaxCoefficients bounds a model's number of coefficients.
const MaxCoefficients = 1000

// source is what the statistics read of a table: tables satisfy it
// through tableSource; tests may use their own.
type source interface {
	Rows() int
	Float(name string) ([]float64, error)
	Codes(name string) ([]int32, []string, error)
	columnType(name string) (table.Type, bool)
}

type tableSource struct{ t *table.Table }

func (s tableSource) Rows() int                                 { return s.t.Rows() }
func (s tableSource) Float(n string) ([]float64, error)         { return s.t.Float(n) }
func (s tableSource) Codes(n string) ([]int32, []string, error) { return s.t.Codes(n) }
func (s tableSource) columnType(n string) (table.Type, bool) {
	for _, c := range s.t.Schema.Columns {
		if c.Name == n {
			return c.Type, true
		}
	}
	return "", false
}

func src(t *table.Table) (source, error) {
	if t == nil {
		return nil, fmt.Errorf("stats: no table")
	}
	return tableSource{t}, nil
}

func refuse(code, format string, a ...any) error {
	return &Refusal{Code: code, Reason: fmt.Sprintf(format, a...)}
}

func (pol Policy) floor() int {
	if pol.Floor < 1 {
		return 1
	}
	return pol.Floor
}

func (pol Policy) fraction() float64 {
	if pol.MaxParamFraction <= 0 || pol.MaxParamFraction > 1 {
		return 1.0 / 3
	}
	return pol.MaxParamFraction
}

// pvar is one variable of a model at a node.
type pvar struct {
	v      fvar
	factor bool      // coded as levels (categorical column or factor())
	num    []float64 // numeric data (numeric vars, factor() of numbers)
	codes  []int32   // categorical codes
	levels []string  // agreed levels (factors)
	// lookup maps a categorical code to the agreed level's index;
	// numLookup does the same for factor() of a numeric column.
	lookup    []int32
	numLookup map[float64]int32
}

// missing reports whether row i is missing for the variable.
func (pv *pvar) missing(i int) bool {
	if pv.codes != nil {
		return pv.codes[i] < 0
	}
	if pv.num != nil {
		return math.IsNaN(pv.num[i])
	}
	return false
}

// level returns the agreed level index of row i (-1 if unknown).
func (pv *pvar) level(i int) int32 {
	if pv.codes != nil {
		return pv.lookup[pv.codes[i]]
	}
	if l, ok := pv.numLookup[pv.num[i]]; ok {
		return l
	}
	return -1
}

type pterm struct {
	vars    []int // indices into plan.vars
	code    []int // 1 contrasts, 2 indicators (factors only)
	stride  []int
	offset  int
	ncol    int
	numeric []int // vars that multiply
	factors []int // positions in vars that are factors
}

// plan is a model's design at one node.
type plan struct {
	f         *Formula
	resp      *pvar
	vars      []*pvar
	terms     []pterm
	names     []string
	intercept bool
	P         int
}

// varKind returns whether a column is numeric or categorical.
func varKind(s source, name string) (table.Type, error) {
	ty, ok := s.columnType(name)
	if !ok {
		return "", fmt.Errorf("stats: the table has no column %q", name)
	}
	switch ty {
	case table.Numeric, table.Integer, table.Date:
		return table.Numeric, nil
	case table.Categorical:
		return table.Categorical, nil
	default:
		return "", fmt.Errorf("stats: column %q is %s and cannot be modelled", name, ty)
	}
}

// newPlan builds the design of f. With load, the columns are read from
// s and mapped to lv; without, only the names are worked out.
func newPlan(s source, f *Formula, lv Levels, load bool, respMayBeCategorical bool) (*plan, error) {
	return newPlanOpt(s, f, lv, load, respMayBeCategorical, false)
}

// newPlanOpt is newPlan; loose tolerates single-level factors (for
// counting levels only).
func newPlanOpt(s source, f *Formula, lv Levels, load bool, respMayBeCategorical bool, loose bool) (*plan, error) {
	if f == nil {
		return nil, fmt.Errorf("stats: no formula")
	}
	pl := &plan{f: f, intercept: f.Intercept}
	idx := map[fvar]int{}
	mk := func(v fvar) (*pvar, error) {
		kind, err := varKind(s, v.name)
		if err != nil {
			return nil, err
		}
		pv := &pvar{v: v, factor: v.factor || kind == table.Categorical}
		if pv.factor {
			pv.levels = lv[v.name]
			if len(pv.levels) == 0 {
				return nil, fmt.Errorf("stats: no agreed levels for %s", v.label())
			}
		}
		if !load {
			return pv, nil
		}
		if kind == table.Categorical {
			codes, levels, err := s.Codes(v.name)
			if err != nil {
				return nil, fmt.Errorf("stats: column %q: %w", v.name, err)
			}
			pv.codes = codes
			pos := map[string]int32{}
			for i, l := range pv.levels {
				pos[l] = int32(i)
			}
			pv.lookup = make([]int32, len(levels))
			for i, l := range levels {
				g, ok := pos[l]
				if !ok {
					g = -1
				}
				pv.lookup[i] = g
			}
		} else {
			num, err := s.Float(v.name)
			if err != nil {
				return nil, fmt.Errorf("stats: column %q: %w", v.name, err)
			}
			pv.num = num
			if pv.factor {
				pv.numLookup = map[float64]int32{}
				for i, l := range pv.levels {
					x, err := strconv.ParseFloat(l, 64)
					if err != nil {
						return nil, fmt.Errorf("stats: level %q of %s is not a number", l, v.label())
					}
					pv.numLookup[x] = int32(i)
				}
			}
		}
		return pv, nil
	}
	resp, err := mk(fvar{name: f.Response})
	if err != nil {
		return nil, err
	}
	if resp.factor && !respMayBeCategorical {
		return nil, fmt.Errorf("stats: the response %q is categorical; a linear model needs a numeric response", f.Response)
	}
	pl.resp = resp
	// Variables in order of appearance.
	for _, t := range f.Terms {
		for _, v := range t.vars() {
			if _, ok := idx[v]; ok {
				continue
			}
			pv, err := mk(v)
			if err != nil {
				return nil, err
			}
			idx[v] = len(pl.vars)
			pl.vars = append(pl.vars, pv)
		}
	}
	// Contrast codes as R's terms(): a factor in a term is coded by
	// contrasts when the term without it is empty or contained in an
	// earlier term, else by indicators.
	sets := make([]map[int]bool, len(f.Terms))
	for j, t := range f.Terms {
		sets[j] = map[int]bool{}
		for _, v := range t.vars() {
			sets[j][idx[v]] = true
		}
	}
	if f.Intercept {
		pl.names = append(pl.names, "(Intercept)")
	}
	fixed := f.Intercept
	col := len(pl.names)
	for j, t := range f.Terms {
		pt := pterm{offset: col}
		for _, v := range t.vars() {
			pt.vars = append(pt.vars, idx[v])
		}
		pt.code = make([]int, len(pt.vars))
		for k, vi := range pt.vars {
			if !pl.vars[vi].factor {
				pt.numeric = append(pt.numeric, vi)
				continue
			}
			pt.factors = append(pt.factors, k)
			pt.code[k] = termCode(sets, j, vi)
			if !fixed {
				// No intercept: the first factor of the first term
				// with one is coded by indicators.
				pt.code[k] = 2
				fixed = true
			}
		}
		// Column labels, the first variable varying fastest.
		labels := []string{""}
		pt.ncol = 1
		pt.stride = make([]int, len(pt.vars))
		for k, vi := range pt.vars {
			pv := pl.vars[vi]
			pt.stride[k] = pt.ncol
			var opts []string
			if pv.factor {
				lev := pv.levels
				if pt.code[k] == 1 {
					lev = lev[1:]
				}
				for _, l := range lev {
					opts = append(opts, pv.v.label()+l)
				}
			} else {
				opts = []string{pv.v.label()}
			}
			if len(opts) == 0 && !loose {
				return nil, fmt.Errorf("stats: %s has a single level; it cannot be a term", pv.v.label())
			}
			pt.ncol *= len(opts)
			if col+pt.ncol > MaxCoefficients {
				return nil, fmt.Errorf("stats: the model has more than %d coefficients", MaxCoefficients)
			}
			var next []string
			for _, o := range opts {
				for _, l := range labels {
					if k == 0 {
						next = append(next, o)
					} else {
						next = append(next, l+":"+o)
					}
				}
			}
			labels = next
		}
		pl.names = append(pl.names, labels...)
		col += pt.ncol
		pl.terms = append(pl.terms, pt)
	}
	pl.P = len(pl.names)
	if pl.P == 0 {
		return nil, fmt.Errorf("stats: the model has no coefficients")
	}
	return pl, nil
}

// termCode is R's rule for factor vi in term j.
func termCode(sets []map[int]bool, j, vi int) int {
	rest := map[int]bool{}
	for v := range sets[j] {
		if v != vi {
			rest[v] = true
		}
	}
	if len(rest) == 0 {
		return 1
	}
	for k := 0; k < j; k++ {
		sub := true
		for v := range rest {
			if !sets[k][v] {
				sub = false
				break
			}
		}
		if sub {
			return 1
		}
	}
	return 2
}

// complete returns the rows with no missing value in any variable.
func (pl *plan) complete(n int) ([]int, error) {
	all := append([]*pvar{pl.resp}, pl.vars...)
	used := make([]int, 0, n)
rows:
	for i := 0; i < n; i++ {
		for _, pv := range all {
			if pv.missing(i) {
				continue rows
			}
		}
		used = append(used, i)
	}
	for _, pv := range all {
		if !pv.factor {
			continue
		}
		for _, i := range used {
			if pv.level(i) < 0 {
				return nil, refuse(fed.RefusedInvalid, "%s has a level missing from the agreed levels", pv.v.label())
			}
		}
	}
	return used, nil
}

// row writes the nonzero entries of row i's design into cols and vals
// and returns how many there are.
func (pl *plan) row(i int, lev []int32, cols []int, vals []float64) int {
	n := 0
	if pl.intercept {
		cols[0], vals[0] = 0, 1
		n = 1
	}
	for vi, pv := range pl.vars {
		if pv.factor {
			lev[vi] = pv.level(i)
		}
	}
terms:
	for ti := range pl.terms {
		pt := &pl.terms[ti]
		c := pt.offset
		for _, k := range pt.factors {
			l := int(lev[pt.vars[k]])
			if pt.code[k] == 1 {
				l--
				if l < 0 {
					continue terms
				}
			}
			c += l * pt.stride[k]
		}
		v := 1.0
		for _, vi := range pt.numeric {
			v *= pl.vars[vi].num[i]
		}
		cols[n], vals[n] = c, v
		n++
	}
	return n
}

// check applies the node's policy to the rows a part uses.
func (pl *plan) check(used []int, pol Policy, respBinary bool) error {
	n := len(used)
	k := pol.floor()
	if n < k {
		return refuse(fed.RefusedFloor, "fewer complete rows than the node's floor")
	}
	if float64(pl.P) >= pol.fraction()*float64(n) {
		return refuse(fed.RefusedSaturated, "%d coefficients for too few rows (at most a fraction %.3g of the rows)", pl.P, pol.fraction())
	}
	all := append([]*pvar{pl.resp}, pl.vars...)
	for _, pv := range all {
		if err := checkVar(pv, used, k); err != nil {
			return err
		}
	}
	// Cells of interactions among factors and two-valued numeric
	// columns: two masks of enough rows each can still meet in a few.
	twoValued := map[int]float64{} // var index → one of its two values
	for vi, pv := range pl.vars {
		if !pv.factor {
			if a, ok := twoValues(pv.num, used); ok {
				twoValued[vi] = a
			}
		}
	}
	for _, pt := range pl.terms {
		var idx []int
		for _, vi := range pt.vars {
			if _, ok := twoValued[vi]; ok || pl.vars[vi].factor {
				idx = append(idx, vi)
			}
		}
		if len(idx) < 2 {
			continue
		}
		cells := map[int]int{}
		for _, i := range used {
			c, m := 0, 1
			for _, vi := range idx {
				pv := pl.vars[vi]
				if pv.factor {
					c += int(pv.level(i)) * m
					m *= len(pv.levels)
				} else {
					if pv.num[i] == twoValued[vi] {
						c += m
					}
					m *= 2
				}
			}
			cells[c]++
		}
		for _, cnt := range cells {
			if cnt < k {
				return refuse(fed.RefusedLevel, "a cell of the interaction %s has fewer rows than the floor", termLabel(pl, pt))
			}
		}
	}
	return nil
}

// twoValues reports whether x takes exactly two values in the rows
// used, and one of them.
func twoValues(x []float64, used []int) (float64, bool) {
	if len(used) == 0 {
		return 0, false
	}
	a, b, hasB := x[used[0]], 0.0, false
	for _, i := range used {
		switch v := x[i]; {
		case v == a:
		case !hasB:
			b, hasB = v, true
		case v == b:
		default:
			return 0, false
		}
	}
	return a, hasB
}

func termLabel(pl *plan, pt pterm) string {
	s := ""
	for i, vi := range pt.vars {
		if i > 0 {
			s += ":"
		}
		s += pl.vars[vi].v.label()
	}
	return s
}

// checkVar refuses a factor with a level, or a numeric column of two
// values with a value, held by fewer than k (and more than 0) rows.
func checkVar(pv *pvar, used []int, k int) error {
	if pv.factor {
		counts := make([]int, len(pv.levels))
		for _, i := range used {
			counts[pv.level(i)]++
		}
		for _, c := range counts {
			if c > 0 && c < k {
				return refuse(fed.RefusedLevel, "a level of %s has fewer rows than the floor", pv.v.label())
			}
		}
		return nil
	}
	return checkBinary(pv.v.name, pv.num, used, k)
}

// checkBinary refuses a numeric column that takes exactly two values
// in the rows used when one of them is held by fewer than k rows: such
// a column is a mask that isolates rows.
func checkBinary(name string, x []float64, used []int, k int) error {
	if len(used) == 0 {
		return nil
	}
	a := x[used[0]]
	b, na, nb := math.NaN(), 0, 0
	for _, i := range used {
		switch v := x[i]; {
		case v == a:
			na++
		case nb == 0:
			b, nb = v, 1
		case v == b:
			nb++
		default:
			return nil // more than two values
		}
	}
	if nb > 0 && (na < k || nb < k) {
		return refuse(fed.RefusedLevel, "column %s takes two values and one of them has fewer rows than the floor", name)
	}
	return nil
}

// formatLevel writes a number as a level, as R's as.character does for
// ordinary values.
func formatLevel(x float64) string {
	if x == math.Trunc(x) && math.Abs(x) < 1e15 {
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return strconv.FormatFloat(x, 'g', 15, 64)
}

// nodeLevels counts the levels of the plan's factors in the rows used.
func nodeLevels(s source, f *Formula, pol Policy, respMayBeCategorical bool) (Levels, error) {
	// Build a plan with placeholder levels to find the factors and
	// complete rows.
	lv := Levels{}
	vars := []fvar{{name: f.Response}}
	for _, t := range f.Terms {
		vars = append(vars, t.vars()...)
	}
	for _, v := range vars {
		kind, err := varKind(s, v.name)
		if err != nil {
			return nil, err
		}
		if kind == table.Categorical {
			_, levels, err := s.Codes(v.name)
			if err != nil {
				return nil, fmt.Errorf("stats: column %q: %w", v.name, err)
			}
			lv[v.name] = append([]string{}, levels...)
		} else if v.factor {
			x, err := s.Float(v.name)
			if err != nil {
				return nil, fmt.Errorf("stats: column %q: %w", v.name, err)
			}
			seen := map[float64]bool{}
			var ls []float64
			for _, y := range x {
				if !math.IsNaN(y) && !seen[y] {
					seen[y] = true
					ls = append(ls, y)
					if len(ls) > MaxCoefficients {
						return nil, fmt.Errorf("stats: %s has more than %d levels", v.label(), MaxCoefficients)
					}
				}
			}
			sort.Float64s(ls)
			var out []string
			for _, y := range ls {
				out = append(out, formatLevel(y))
			}
			lv[v.name] = out
		}
	}
	pl, err := newPlanOpt(s, f, lv, true, respMayBeCategorical, true)
	if err != nil {
		return nil, err
	}
	used, err := pl.complete(s.Rows())
	if err != nil {
		return nil, err
	}
	if len(used) < pol.floor() {
		return nil, refuse(fed.RefusedFloor, "fewer complete rows than the node's floor")
	}
	all := append([]*pvar{pl.resp}, pl.vars...)
	out := Levels{}
	for _, pv := range all {
		if err := checkVar(pv, used, pol.floor()); err != nil {
			return nil, err
		}
		if !pv.factor {
			continue
		}
		counts := make([]int, len(pv.levels))
		for _, i := range used {
			counts[pv.level(i)]++
		}
		var present []string
		for l, c := range counts {
			if c > 0 {
				present = append(present, pv.levels[l])
			}
		}
		out[pv.v.name] = present
	}
	return out, nil
}

// NodeLevels returns the levels of the formula's categorical variables
// in t's complete rows; a level present with fewer rows than the floor
// refuses the whole model at this node (RefusedLevel).
func NodeLevels(t *table.Table, f *Formula, pol Policy) (Levels, error) {
	s, err := src(t)
	if err != nil {
		return nil, err
	}
	return nodeLevels(s, f, pol, true)
}

// MergeLevels is the hub's agreement on levels: the union of the
// nodes' levels of each variable, sorted (as numbers when every level
// of a variable is a number, else by bytes, as the tables sort them).
func MergeLevels(parts ...Levels) Levels {
	sets := map[string]map[string]bool{}
	for _, p := range parts {
		for k, ls := range p {
			if sets[k] == nil {
				sets[k] = map[string]bool{}
			}
			for _, l := range ls {
				sets[k][l] = true
			}
		}
	}
	out := Levels{}
	for k, set := range sets {
		var ls []string
		numeric := true
		for l := range set {
			ls = append(ls, l)
			if _, err := strconv.ParseFloat(l, 64); err != nil {
				numeric = false
			}
		}
		if numeric {
			sort.Slice(ls, func(i, j int) bool {
				a, _ := strconv.ParseFloat(ls[i], 64)
				b, _ := strconv.ParseFloat(ls[j], 64)
				return a < b
			})
		} else {
			sort.Strings(ls)
		}
		out[k] = ls
	}
	return out
}

// Coefficients names the model's coefficients in order, as R does
// ("(Intercept)", "age", "factor(stage)II", "a:b").
func Coefficients(f *Formula, lv Levels, t *table.Table) ([]string, error) {
	s, err := src(t)
	if err != nil {
		return nil, err
	}
	return coefficients(s, f, lv)
}

func coefficients(s source, f *Formula, lv Levels) ([]string, error) {
	pl, err := newPlan(s, f, lv, false, true)
	if err != nil {
		return nil, err
	}
	return pl.names, nil
}
