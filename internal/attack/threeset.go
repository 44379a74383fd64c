package attack

import (
	"context"
	"math"
)

// targetAges are the ages attacks 8 to 10 target: the first Plan.Targets
// of AgeLo..AgeHi (all when Targets is 0).
func (r *runner) targetAges() []int {
	var out []int
	for a := r.p.AgeLo; a <= r.p.AgeHi; a++ {
		if r.p.Targets > 0 && len(out) >= r.p.Targets {
			break
		}
		out = append(out, a)
	}
	return out
}

// ThresholdWindow is how far from the target age a the threshold
// attack's pad cells go: ages a-w..a+w except a.
const ThresholdWindow = 7

// thresholdPads are the pad cells of the threshold attack for age a, in
// the order they are added: age = x AND gender = g for x = a-1, a+1,
// a-2, a+2, ... within ThresholdWindow, female then male.
func thresholdPads(a int) []Expr {
	var out []Expr
	for d := 1; d <= ThresholdWindow; d++ {
		for _, x := range []int{a - d, a + d} {
			for _, g := range []string{Female, Male} {
				out = append(out, And(AgeEq(x), Gender(g)))
			}
		}
	}
	return out
}

// thresholdSplits are the conditions that split the patients outside a
// target's window into its two anchors; each target takes the next, so
// that the anchors of different targets are far apart (a target's sets
// must not come within the overlap distance of another target's).
func thresholdSplits() []Expr {
	var evenYears, evenAges []Expr
	for y := firstYear; y <= lastYear; y += 2 {
		evenYears = append(evenYears, YearEq(y))
	}
	for a := 0; a <= 120; a += 2 {
		evenAges = append(evenAges, AgeEq(a))
	}
	return []Expr{
		YearRange(nil, ip(2019)),
		Gender(Female),
		Or(evenYears...),
		Or(Diagnosis(Diagnoses[0].Code), Diagnosis(Diagnoses[3].Code), Diagnosis(Diagnoses[4].Code)),
		Or(evenAges...),
	}
}

// thresholdAnchors are the two anchors of the threshold attack for age
// a, the i-th target: the patients outside the pads' window (ages a-w
// to a+w) in S OR (NOT S AND year <= 2016), and those in NOT S OR (S AND
// year >= 2023), S the i-th split. Both hold about three fifths of the
// patients outside the window, so that they pass the floor in a small
// cohort, and differ by about four fifths. They are disjoint from A and
// from the pads.
func thresholdAnchors(a, i int) (Expr, Expr) {
	out := Not(AgeRange(ip(a-ThresholdWindow), ip(a+ThresholdWindow)))
	splits := thresholdSplits()
	s := splits[i%len(splits)]
	early, late := YearRange(nil, ip(2016)), YearRange(ip(2023), nil)
	return And(out, Or(s, And(Not(s), early))), And(out, Or(Not(s), And(s, late)))
}

// scan asks anchor, then anchor OR extra OR P_j for j = 0, 1, ... (P_j
// the first j pads), and returns per cell the first j whose answer is
// not identical in every figure to the anchor's (NaN where the anchor
// is not answered or no step differs). Every cell stops on its own; the
// scan ends when every cell has stopped. extra nil: no extra set, and j
// starts at 1 (j = 0 is the anchor itself).
func (r *runner) scan(ctx context.Context, a *attacker, anchor, extra Expr, pads []Expr) (map[Cell]float64, error) {
	base, err := a.answers(ctx, anchor)
	if err != nil {
		return nil, err
	}
	stop := map[Cell]float64{}
	open := map[Cell]bool{}
	for _, c := range r.f.Cells {
		stop[c] = math.NaN()
		if _, ok := base[c]; ok {
			open[c] = true
		}
	}
	j0 := 0
	if extra == nil {
		j0 = 1
	}
	for j := j0; j <= len(pads) && len(open) > 0; j++ {
		kids := []Expr{anchor}
		if extra != nil {
			kids = append(kids, extra)
		}
		kids = append(kids, pads[:j]...)
		ans, err := a.answers(ctx, Or(kids...))
		if err != nil {
			return nil, err
		}
		for c := range open {
			got, ok := ans[c]
			if !ok {
				delete(open, c) // given up
				continue
			}
			if !Same(got, base[c]) {
				stop[c] = float64(j)
				delete(open, c)
			}
		}
	}
	return stop, nil
}

// threshold: the overlap control as an oracle. For each target age a,
// the first pad step at which anchor B OR A OR P_j stops getting B's
// answer, and the first at which B' OR P_j stops getting the answer of
// B'; their difference estimates |A| in pad cells.
func (r *runner) threshold(ctx context.Context, a *attacker) ([]estimate, error) {
	var out []estimate
	for i, age := range r.targetAges() {
		g := Group{"age=" + itoa(age), AgeEq(age)}
		pads := thresholdPads(age)
		b1, b2 := thresholdAnchors(age, i)
		with, err := r.scan(ctx, a, b1, g.Expr, pads)
		if err != nil {
			return nil, err
		}
		without, err := r.scan(ctx, a, b2, nil, pads)
		if err != nil {
			return nil, err
		}
		for _, c := range r.f.Cells {
			out = append(out, estimate{c, g, without[c] - with[c]})
		}
	}
	return out, nil
}

// paddingConds are the conditions the paddings of three-set
// differencing are made from: the pairwise ANDs of the large conditions
// of general differencing (gender, year and age ranges, modality,
// diagnoses, combined), each holding about a quarter to two fifths of a
// cohort, so that A OR P1 OR P2 passes the floor and stays more than the
// floor away from the whole dataset (whose figures a set within the floor
// of it gets).
func paddingConds() []Expr {
	sets := largeSets()
	var out []Expr
	for i := range sets {
		for j := i + 1; j < len(sets); j++ {
			out = append(out, And(sets[i], sets[j]))
		}
	}
	return out
}

// paddings returns the t-th pair of paddings (P1, P2) for a small group
// outside: P1 = C_i AND NOT outside and P2 = C_j AND NOT C_i AND NOT
// outside, C_i and C_j of conds, with i and j drawn from t and salt, so
// that the pairs vary over keys, values and combinations. P1, P2 and
// outside are disjoint.
func paddings(conds []Expr, t, salt int, outside Expr) (Expr, Expr) {
	large := conds
	h := uint64(t)*0x9e3779b97f4a7c15 + uint64(salt)*0xbf58476d1ce4e5b9 + 1
	h ^= h >> 31
	h *= 0x94d049bb133111eb
	h ^= h >> 29
	i := int(h % uint64(len(conds)))
	j := int((h / uint64(len(conds))) % uint64(len(large)))
	if j == i {
		j = (j + 1) % len(large)
	}
	p1 := And(conds[i], Not(outside))
	p2 := And(large[j], Not(conds[i]), Not(outside))
	return p1, p2
}

// threeSet asks P1 and P2 for the t-th paddings and, where both are
// answered (at least the floor) and small enough that A OR P1 OR P2
// stays more than the floor k away from the whole dataset (count(P1) +
// count(P2) <= count(all) - k - 2, as answered, k the floor the nodes
// report), A OR P1 OR P2. It
// returns per cell the difference of the chosen figure (subjects or
// studies), NaN where an answer is empty, missing or the answer for all
// (pop): a set within the floor of the whole dataset gets the dataset's
// figures (complement control), which tell nothing of it.
func (r *runner) threeSet(ctx context.Context, a *attacker, conds []Expr, small, outside Expr, t, salt int, studies bool, pop map[Cell]Answer) (map[Cell]float64, error) {
	p1, p2 := paddings(conds, t, salt, outside)
	out := map[Cell]float64{}
	for _, c := range r.f.Cells {
		out[c] = math.NaN()
	}
	x, err := a.answers(ctx, p1)
	if err != nil {
		return nil, err
	}
	y, err := a.answers(ctx, p2)
	if err != nil {
		return nil, err
	}
	fit := func(c Cell) bool {
		xc, ok1 := x[c]
		yc, ok2 := y[c]
		p, ok := pop[c]
		return ok1 && ok2 && ok && xc.Count > 0 && yc.Count > 0 && xc.Count+yc.Count <= p.Count-r.f.Floor-2 &&
			!Same(xc, p) && !Same(yc, p)
	}
	any := false
	for _, c := range r.f.Cells {
		any = any || fit(c)
	}
	if !any {
		return out, nil
	}
	u, err := a.answers(ctx, Or(small, p1, p2))
	if err != nil {
		return nil, err
	}
	for _, c := range r.f.Cells {
		uc, ok := u[c]
		if !fit(c) || !ok || uc.Count == 0 || Same(uc, pop[c]) {
			continue
		}
		if studies {
			out[c] = float64(uc.Studies - x[c].Studies - y[c].Studies)
		} else {
			out[c] = float64(uc.Count - x[c].Count - y[c].Count)
		}
	}
	return out, nil
}

// threeSetAttack: |A| = count(A OR P1 OR P2) - count(P1) - count(P2)
// for each target age, averaged over repeats pairs of paddings.
func (r *runner) threeSetAttack(ctx context.Context, a *attacker, repeats int) ([]estimate, error) {
	conds := paddingConds()
	pop, err := a.answers(ctx, All())
	if err != nil {
		return nil, err
	}
	var out []estimate
	for _, age := range r.targetAges() {
		g := Group{"age=" + itoa(age), AgeEq(age)}
		vals := map[Cell][]float64{}
		for t := range repeats {
			d, err := r.threeSet(ctx, a, conds, g.Expr, g.Expr, t, age, false, pop)
			if err != nil {
				return nil, err
			}
			for c, v := range d {
				if !math.IsNaN(v) {
					vals[c] = append(vals[c], v)
				}
			}
		}
		for _, c := range r.f.Cells {
			out = append(out, estimate{c, g, mean(vals[c])})
		}
	}
	return out, nil
}

// studiesAttack learns the sex of lone patients (the only patient of an
// age at a node) from the studies figure: studies(A_f OR P1 OR P2) -
// studies(P1) - studies(P2) with A_f = age = a AND female and P1, P2
// outside age a, averaged over repeats paddings; female when the mean
// passes 0.5 (halfway between no patient and one with a single study).
func (r *runner) studiesAttack(ctx context.Context, a *attacker, repeats int) (Result, error) {
	var res Result
	conds := paddingConds()
	pop, err := a.answers(ctx, All())
	if err != nil {
		return res, err
	}
	sexes := []string{Female, Male}
	for x := r.p.AgeLo; x <= r.p.AgeHi; x++ {
		t, err := r.truthOf(ctx, AgeEq(x))
		if err != nil {
			return res, err
		}
		var lone []Cell
		for _, c := range r.f.Cells {
			if t[c] == 1 {
				lone = append(lone, c)
			}
		}
		if len(lone) == 0 {
			continue
		}
		vals := map[Cell][]float64{}
		for i := range repeats {
			d, err := r.threeSet(ctx, a, conds, And(AgeEq(x), Gender(Female)), AgeEq(x), i, 1000+x, true, pop)
			if err != nil {
				return res, err
			}
			for c, v := range d {
				if !math.IsNaN(v) {
					vals[c] = append(vals[c], v)
				}
			}
		}
		for _, c := range lone {
			truth := 1
			tf, err := r.truthOf(ctx, And(AgeEq(x), Gender(Female)))
			if err != nil {
				return res, err
			}
			if tf[c] == 1 {
				truth = 0
			}
			common, err := r.commonSex(ctx, c, sexes)
			if err != nil {
				return res, err
			}
			res.Cells++
			if common == truth {
				res.Blind++
			}
			m := mean(vals[c])
			if math.IsNaN(m) {
				continue
			}
			guess := 1
			if m > 0.5 {
				guess = 0
			}
			if guess == truth {
				res.Recovered++
			}
		}
	}
	return res, nil
}

// commonSex is the index in sexes of the commonest sex at cell c.
func (r *runner) commonSex(ctx context.Context, c Cell, sexes []string) (int, error) {
	best, bi := -1, 0
	for i, s := range sexes {
		t, err := r.truthOf(ctx, Gender(s))
		if err != nil {
			return 0, err
		}
		if t[c] > best {
			best, bi = t[c], i
		}
	}
	return bi, nil
}
