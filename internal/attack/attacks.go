package attack

import (
	"context"
	"fmt"
	"math"
	"slices"
)

// Plan says which attacks run and how much each may spend.
type Plan struct {
	// Attacks lists the attacks by name (Names); nil runs them all.
	Attacks []string
	// AgeLo and AgeHi bound the ages swept (default 30 and 90: what the
	// catalogue's age range, coarsened to decades, tells a researcher).
	AgeLo, AgeHi int
	// Combos adds the gender x diagnosis and gender x year groups to the
	// single ages as small groups of attacks 1, 2, 5 and 6.
	Combos bool
	// Repeats is how many estimates the averaging attacks average per
	// cell: sets B (general differencing), equivalent rewrites, trackers
	// (default 20).
	Repeats int
	// Accounts is the number of researcher accounts pooled by the
	// several-accounts attack (default 3).
	Accounts int
	// MaxDays bounds the days one attack waits for daily budgets to
	// come back (default 3650, ten years).
	MaxDays int
	// K: cells whose true count is 1 to K-1 are the hidden ones scored.
	// 0 takes the highest floor the nodes report, and at least 10 (the
	// federation's default floor), so that a run with the floor turned
	// off scores the same cells.
	K int
	// Targets bounds the ages attacks 8 (threshold) and 9 (three-set)
	// target: the first Targets ages of AgeLo..AgeHi (0: all).
	Targets int
	// Workload is the number of ordinary queries of the accuracy
	// measurement (0: none).
	Workload int
	// Seed draws the ordinary queries.
	Seed uint64
}

func (p *Plan) defaults() {
	if p.AgeLo == 0 && p.AgeHi == 0 {
		p.AgeLo, p.AgeHi = 30, 90
	}
	if p.Repeats == 0 {
		p.Repeats = 20
	}
	if p.Accounts == 0 {
		p.Accounts = 3
	}
	if p.MaxDays == 0 {
		p.MaxDays = 3650
	}
}

// The attacks, by name, in report order.
const (
	Complement = "complement"
	General    = "general"
	Histogram  = "histogram"
	Narrowing  = "narrowing"
	Rewrites   = "rewrites"
	Tracker    = "tracker"
	Accounts   = "accounts"
	Threshold  = "threshold"
	ThreeSet   = "three-set"
	Studies    = "studies"
)

// Names lists every attack in report order.
var Names = []string{Complement, General, Histogram, Narrowing, Rewrites, Tracker, Accounts, Threshold, ThreeSet, Studies}

var titles = map[string]string{
	Complement: "1 complement differencing",
	General:    "2 general differencing",
	Histogram:  "3 age histogram reconstruction",
	Narrowing:  "4 narrowing to one patient (sex and year)",
	Rewrites:   "5 averaging equivalent rewrites",
	Tracker:    "6 Denning's tracker",
	Accounts:   "7 several accounts",
	Threshold:  "8 overlap threshold scan",
	ThreeSet:   "9 three-set differencing",
	Studies:    "10 three-set on studies (sex of one patient)",
}

// Result is what one attack achieved.
type Result struct {
	Attack    string
	Title     string
	Cells     int // hidden cells targeted (true count 1 to K-1; for narrowing: cells of exactly one patient)
	Recovered int // recovered exactly
	Blind     int // cells a blind guess gets right
	Queries   int // searches sent
	Days      int // days waited for daily budgets
	Refusals  int // dataset answers refused for a spent budget
	Note      string
}

// Share is the share of hidden cells recovered exactly.
func (r Result) Share() float64 { return ratio(r.Recovered, r.Cells) }

// BlindShare is the share a blind guess gets.
func (r Result) BlindShare() float64 { return ratio(r.Blind, r.Cells) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// estimate is an attacker's estimate of a group's count in a cell (NaN:
// none).
type estimate struct {
	cell  Cell
	group Group
	est   float64
}

// runner runs the attacks of one plan against one federation.
type runner struct {
	f     *Federation
	p     Plan
	truth map[string]map[Cell]int // by query JSON
}

func (r *runner) truthOf(ctx context.Context, q Expr) (map[Cell]int, error) {
	k := q.String()
	if t, ok := r.truth[k]; ok {
		return t, nil
	}
	t, err := r.f.Truth(ctx, q)
	if err != nil {
		return nil, err
	}
	r.truth[k] = t
	return t, nil
}

func (r *runner) groups() []Group {
	g := AgeGroups(r.p.AgeLo, r.p.AgeHi)
	if r.p.Combos {
		g = append(g, ComboGroups()...)
	}
	return g
}

// k is the bound of the hidden cells.
func (r *runner) k() int {
	if r.p.K > 0 {
		return r.p.K
	}
	return max(r.f.Floor, 10)
}

// RunAttacks runs the plan's attacks against f, each with accounts of
// its own, and scores them against the nodes' raw counts.
func RunAttacks(ctx context.Context, f *Federation, p Plan) ([]Result, error) {
	p.defaults()
	r := &runner{f: f, p: p, truth: map[string]map[Cell]int{}}
	names := p.Attacks
	if names == nil {
		names = Names
	}
	for _, n := range names {
		if titles[n] == "" {
			return nil, fmt.Errorf("attack: unknown attack %q (known: %v)", n, Names)
		}
	}
	var out []Result
	for _, name := range Names {
		if !slices.Contains(names, name) {
			continue
		}
		var res Result
		var err error
		if name == Accounts {
			res, err = r.pooled(ctx, out)
		} else {
			res, err = r.run(ctx, name, 1, p.Repeats)
		}
		if err != nil {
			return out, fmt.Errorf("attack %s: %w", name, err)
		}
		out = append(out, res)
	}
	return out, nil
}

// run runs one attack with n fresh accounts and the given repeats.
func (r *runner) run(ctx context.Context, name string, n, repeats int) (Result, error) {
	var accs []Account
	for range n {
		acc, err := r.f.NewAccount(ctx)
		if err != nil {
			return Result{}, err
		}
		accs = append(accs, acc)
	}
	a := newAttacker(r.f, accs, r.p.MaxDays)
	var res Result
	var err error
	switch name {
	case Narrowing:
		res, err = r.narrowing(ctx, a, repeats)
	case Studies:
		res, err = r.studiesAttack(ctx, a, repeats)
	default:
		var ests []estimate
		switch name {
		case Complement:
			ests, err = r.complement(ctx, a)
		case General:
			ests, err = r.general(ctx, a, repeats)
		case Histogram:
			ests, err = r.histogram(ctx, a)
		case Rewrites:
			ests, err = r.rewrites(ctx, a, repeats)
		case Tracker:
			ests, err = r.tracker(ctx, a, repeats)
		case Threshold:
			ests, err = r.threshold(ctx, a)
		case ThreeSet:
			ests, err = r.threeSetAttack(ctx, a, repeats)
		}
		if err == nil {
			res, err = r.score(ctx, ests)
		}
	}
	res.Attack, res.Title = name, titles[name]
	res.Queries, res.Days, res.Refusals = a.queries, a.days, a.refusals
	if a.missing > 0 {
		res.Note = fmt.Sprintf("%d dataset answers missing", a.missing)
	}
	return res, err
}

// pooled reruns the best of the averaging attacks already run (general
// differencing, rewrites, trackers: highest share, then fewest queries)
// with the budgets of several accounts: it averages that many times more
// estimates a cell. The other attacks ask a fixed set of questions, and
// asking them again from another account gets the same answers.
func (r *runner) pooled(ctx context.Context, done []Result) (Result, error) {
	best := Result{Attack: Rewrites}
	found := false
	for _, d := range done {
		if d.Attack != General && d.Attack != Rewrites && d.Attack != Tracker {
			continue
		}
		if !found || d.Share() > best.Share() || d.Share() == best.Share() && d.Queries < best.Queries {
			best, found = d, true
		}
	}
	res, err := r.run(ctx, best.Attack, r.p.Accounts, r.p.Repeats*r.p.Accounts)
	res.Attack, res.Title = Accounts, titles[Accounts]
	res.Note = fmt.Sprintf("%s with %d accounts, %d estimates a cell", titles[best.Attack], r.p.Accounts, r.p.Repeats*r.p.Accounts)
	return res, err
}

// score counts the hidden cells among the estimates and those recovered
// exactly, and what always guessing the commonest hidden count gets.
func (r *runner) score(ctx context.Context, ests []estimate) (Result, error) {
	var res Result
	k := r.k()
	byValue := map[int]int{}
	for _, e := range ests {
		t, err := r.truthOf(ctx, e.group.Expr)
		if err != nil {
			return res, err
		}
		n := t[e.cell]
		if n < 1 || n >= k {
			continue
		}
		res.Cells++
		byValue[n]++
		if !math.IsNaN(e.est) && int(math.Round(e.est)) == n {
			res.Recovered++
		}
	}
	for _, c := range byValue {
		res.Blind = max(res.Blind, c)
	}
	return res, nil
}

// mean is the mean of xs, NaN for none.
func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// complement: count(all) - count(NOT A) for every small group A.
func (r *runner) complement(ctx context.Context, a *attacker) ([]estimate, error) {
	all, err := a.ask(ctx, All())
	if err != nil {
		return nil, err
	}
	var out []estimate
	for _, g := range r.groups() {
		not, err := a.ask(ctx, Not(g.Expr))
		if err != nil {
			return nil, err
		}
		for _, c := range r.f.Cells {
			e := math.NaN()
			// A suppressed answer (0) says only "under the floor":
			// no difference can be taken from it.
			if all[c] > 0 && not[c] > 0 {
				e = float64(all[c] - not[c])
			}
			out = append(out, estimate{c, g, e})
		}
	}
	return out, nil
}

// bSet is the j-th large set B disjoint from A: a large condition
// without A's patients. Past the list of large conditions it takes
// their equivalent rewrites, so there is no end of them.
func bSet(sets []Expr, j int, a Expr) Expr {
	s := sets[j%len(sets)]
	if j >= len(sets) {
		s = Rewrite(s, 4+j/len(sets))
	}
	return And(s, Not(a))
}

// general: count(A OR B) - count(B) for many large B disjoint from A,
// averaged over the pairs whose two answers are not suppressed.
func (r *runner) general(ctx context.Context, a *attacker, repeats int) ([]estimate, error) {
	sets := largeSets()
	var out []estimate
	for _, g := range r.groups() {
		diffs := map[Cell][]float64{}
		for j := range repeats {
			b := bSet(sets, j, g.Expr)
			ab, err := a.ask(ctx, Or(g.Expr, b))
			if err != nil {
				return nil, err
			}
			bb, err := a.ask(ctx, b)
			if err != nil {
				return nil, err
			}
			for _, c := range r.f.Cells {
				if ab[c] > 0 && bb[c] > 0 {
					diffs[c] = append(diffs[c], float64(ab[c]-bb[c]))
				}
			}
		}
		for _, c := range r.f.Cells {
			out = append(out, estimate{c, g, mean(diffs[c])})
		}
	}
	return out, nil
}

// histogram: the age histogram of every node from prefix counts
// (age <= x) and suffix counts (age >= x+1, taken from the count of
// known ages), whichever is not suppressed, both averaged when both are
// answered; h(x) = P(x) - P(x-1), averaged with the complement
// difference count(all) - count(NOT(age = x)) when that is answered.
func (r *runner) histogram(ctx context.Context, a *attacker) ([]estimate, error) {
	known, err := a.ask(ctx, AgeRange(ip(0), nil))
	if err != nil {
		return nil, err
	}
	all, err := a.ask(ctx, All())
	if err != nil {
		return nil, err
	}
	prefix := map[int]map[Cell]float64{}
	for x := r.p.AgeLo - 1; x <= r.p.AgeHi; x++ {
		p, err := a.ask(ctx, AgeRange(nil, ip(x)))
		if err != nil {
			return nil, err
		}
		s, err := a.ask(ctx, AgeRange(ip(x+1), nil))
		if err != nil {
			return nil, err
		}
		prefix[x] = map[Cell]float64{}
		for _, c := range r.f.Cells {
			var xs []float64
			if p[c] > 0 {
				xs = append(xs, float64(p[c]))
			}
			if s[c] > 0 && known[c] > 0 {
				xs = append(xs, float64(known[c]-s[c]))
			}
			if len(xs) == 0 && x == r.p.AgeLo-1 {
				xs = append(xs, 0) // nobody under the catalogue's lowest age
			}
			prefix[x][c] = mean(xs)
		}
	}
	var out []estimate
	for x := r.p.AgeLo; x <= r.p.AgeHi; x++ {
		g := Group{fmt.Sprintf("age=%d", x), AgeEq(x)}
		not, err := a.ask(ctx, Not(g.Expr))
		if err != nil {
			return nil, err
		}
		for _, c := range r.f.Cells {
			var xs []float64
			if d := prefix[x][c] - prefix[x-1][c]; !math.IsNaN(d) {
				xs = append(xs, d)
			}
			if all[c] > 0 && not[c] > 0 {
				xs = append(xs, float64(all[c]-not[c]))
			}
			out = append(out, estimate{c, g, mean(xs)})
		}
	}
	return out, nil
}

// rewrites: complement differencing where count(all) and every
// count(NOT A) are each the mean over many equivalent forms of the
// query.
func (r *runner) rewrites(ctx context.Context, a *attacker, repeats int) ([]estimate, error) {
	avg := func(x Expr) (map[Cell]float64, error) {
		vals := map[Cell][]float64{}
		for i := range repeats {
			ans, err := a.ask(ctx, Rewrite(x, i))
			if err != nil {
				return nil, err
			}
			for c, v := range ans {
				if v > 0 {
					vals[c] = append(vals[c], float64(v))
				}
			}
		}
		out := map[Cell]float64{}
		for _, c := range r.f.Cells {
			out[c] = mean(vals[c])
		}
		return out, nil
	}
	all, err := avg(All())
	if err != nil {
		return nil, err
	}
	var out []estimate
	for _, g := range r.groups() {
		not, err := avg(Not(g.Expr))
		if err != nil {
			return nil, err
		}
		for _, c := range r.f.Cells {
			out = append(out, estimate{c, g, all[c] - not[c]})
		}
	}
	return out, nil
}

// trackers are gender = female (the classic), then the other large
// conditions, then their rewrites.
func trackers(n int) []Expr {
	sets := largeSets()
	out := make([]Expr, n)
	for j := range out {
		out[j] = sets[j%len(sets)]
		if j >= len(sets) {
			out[j] = Rewrite(out[j], 4+j/len(sets))
		}
	}
	return out
}

// tracker: count(C) = count(C OR T) + count(C OR NOT T) - count(T OR NOT
// T), averaged over trackers T, for every small group C.
func (r *runner) tracker(ctx context.Context, a *attacker, repeats int) ([]estimate, error) {
	ts := trackers(repeats)
	units := make([]map[Cell]int, len(ts))
	for j, t := range ts {
		u, err := a.ask(ctx, Or(t, Not(t)))
		if err != nil {
			return nil, err
		}
		units[j] = u
	}
	var out []estimate
	for _, g := range r.groups() {
		vals := map[Cell][]float64{}
		for j, t := range ts {
			ct, err := a.ask(ctx, Or(g.Expr, t))
			if err != nil {
				return nil, err
			}
			cn, err := a.ask(ctx, Or(g.Expr, Not(t)))
			if err != nil {
				return nil, err
			}
			for _, c := range r.f.Cells {
				if ct[c] > 0 && cn[c] > 0 && units[j][c] > 0 {
					vals[c] = append(vals[c], float64(ct[c]+cn[c]-units[j][c]))
				}
			}
		}
		for _, c := range r.f.Cells {
			out = append(out, estimate{c, g, mean(vals[c])})
		}
	}
	return out, nil
}

// Years of diagnosis the narrowing attack tries (the cohort's).
const firstYear, lastYear = 2015, 2024

// narrowing finds the cells holding exactly one patient of an age
// (complement differencing over the ages), then learns that patient's
// sex and year of diagnosis: count(all) - count(NOT(age = x AND
// attribute = v)) for every value v, the largest taken. Every count is
// averaged over up to repeats equivalent rewrites (see averaged).
func (r *runner) narrowing(ctx context.Context, a *attacker, repeats int) (Result, error) {
	var res Result
	all, err := a.averaged(ctx, All(), repeats)
	if err != nil {
		return res, err
	}
	diff := func(q Expr) (map[Cell]float64, error) {
		not, err := a.averaged(ctx, Not(q), repeats)
		if err != nil {
			return nil, err
		}
		out := map[Cell]float64{}
		for _, c := range r.f.Cells {
			out[c] = all[c] - not[c]
		}
		return out, nil
	}
	argmax := func(vals []map[Cell]float64, c Cell) int {
		best, bi := math.Inf(-1), -1
		for i, v := range vals {
			if !math.IsNaN(v[c]) && v[c] > best {
				best, bi = v[c], i
			}
		}
		return bi
	}
	sexes := []string{Female, Male}
	type guess struct{ sex, year int }
	guesses := map[Cell]map[int]guess{}
	for x := r.p.AgeLo; x <= r.p.AgeHi; x++ {
		n, err := diff(AgeEq(x))
		if err != nil {
			return res, err
		}
		var cands []Cell
		for _, c := range r.f.Cells {
			if !math.IsNaN(n[c]) && math.Round(n[c]) == 1 {
				cands = append(cands, c)
			}
		}
		if len(cands) == 0 {
			continue
		}
		var bySex, byYear []map[Cell]float64
		for _, s := range sexes {
			v, err := diff(And(AgeEq(x), Gender(s)))
			if err != nil {
				return res, err
			}
			bySex = append(bySex, v)
		}
		for y := firstYear; y <= lastYear; y++ {
			v, err := diff(And(AgeEq(x), YearEq(y)))
			if err != nil {
				return res, err
			}
			byYear = append(byYear, v)
		}
		for _, c := range cands {
			if guesses[c] == nil {
				guesses[c] = map[int]guess{}
			}
			guesses[c][x] = guess{argmax(bySex, c), argmax(byYear, c)}
		}
	}
	// Score: the cells of exactly one patient of an age.
	type truthAttr struct{ sex, year int }
	commonSex, commonYear := map[Cell]int{}, map[Cell]int{}
	for _, c := range r.f.Cells {
		best := -1
		for i, s := range sexes {
			t, err := r.truthOf(ctx, Gender(s))
			if err != nil {
				return res, err
			}
			if best < 0 || t[c] > best {
				best, commonSex[c] = t[c], i
			}
		}
		best = -1
		for y := firstYear; y <= lastYear; y++ {
			t, err := r.truthOf(ctx, YearEq(y))
			if err != nil {
				return res, err
			}
			if best < 0 || t[c] > best {
				best, commonYear[c] = t[c], y-firstYear
			}
		}
	}
	for x := r.p.AgeLo; x <= r.p.AgeHi; x++ {
		t, err := r.truthOf(ctx, AgeEq(x))
		if err != nil {
			return res, err
		}
		for _, c := range r.f.Cells {
			if t[c] != 1 {
				continue
			}
			truth := truthAttr{-1, -1}
			for i, s := range sexes {
				ts, err := r.truthOf(ctx, And(AgeEq(x), Gender(s)))
				if err != nil {
					return res, err
				}
				if ts[c] == 1 {
					truth.sex = i
				}
			}
			for y := firstYear; y <= lastYear; y++ {
				ty, err := r.truthOf(ctx, And(AgeEq(x), YearEq(y)))
				if err != nil {
					return res, err
				}
				if ty[c] == 1 {
					truth.year = y - firstYear
				}
			}
			res.Cells++
			if g, ok := guesses[c][x]; ok && g.sex == truth.sex && g.year == truth.year {
				res.Recovered++
			}
			if commonSex[c] == truth.sex && commonYear[c] == truth.year {
				res.Blind++
			}
		}
	}
	return res, nil
}

// ShortPlan is the plan of `make test`: every attack, over 18 ages and
// with 3 estimates a cell, a few hundred searches in all.
func ShortPlan() Plan {
	return Plan{AgeLo: 50, AgeHi: 67, Repeats: 3, Accounts: 2, Targets: 4, Workload: 10, Seed: 1}
}

// FullPlan is the plan of bench/attack.sh: every attack over every age
// of the catalogue's range and the gender x diagnosis and gender x year
// groups, 20 estimates a cell, 3 accounts pooled.
func FullPlan() Plan {
	return Plan{AgeLo: 30, AgeHi: 90, Combos: true, Repeats: 20, Accounts: 3, Workload: 300, Seed: 1}
}
