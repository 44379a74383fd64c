package stats

import (
	"math"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/fed"
)

// attackTable has 40 rows: y, x, a binary column "mask" whose 1-level
// holds one row (row 7), a numeric "dose" of repeated values (5 except
// row 7, which is 7), and a categorical "site" with a level of one row.
func attackTable() *memTable {
	n := 40
	y := make([]float64, n)
	x := make([]float64, n)
	mask := make([]float64, n)
	dose := make([]float64, n)
	site := make([]string, n)
	for i := range y {
		y[i] = 50 + float64((i*13)%29)
		x[i] = float64(i%7) + 0.5*float64(i%3)
		dose[i] = 5
		site[i] = []string{"north", "south"}[i%2]
	}
	mask[7], dose[7], site[7] = 1, 7, "east"
	return newMem(n).num("y", y).num("x", x).num("mask", mask).num("dose", dose).cat("site", site)
}

func lmFit(t *testing.T, m *memTable, formula string, pol Policy) (*Fit, error) {
	t.Helper()
	f := mustParse(t, formula)
	lv, err := nodeLevels(m, f, pol, true)
	if err != nil {
		return nil, err
	}
	coefs, err := coefficients(m, f, lv)
	if err != nil {
		t.Fatal(err)
	}
	part, err := nodeLM(m, f, lv, pol)
	if err != nil {
		return nil, err
	}
	return FitLM(coefs, part)
}

// TestAttackMaskTimesColumn replays dsBase #250: a 0/1 mask times a
// column, then a mean, isolates one row's value.
func TestAttackMaskTimesColumn(t *testing.T) {
	m := attackTable()
	secret := m.floats["y"][7]
	// A researcher cannot build the product: the formula refuses it.
	for _, f := range []string{"y ~ I(mask * x)", "y ~ I(mask)", "y ~ mask * 1", "mask * y ~ x"} {
		if _, err := ParseFormula(f); err == nil {
			t.Errorf("%q accepted", f)
		}
	}
	// Without the level check the table's own mask column isolates the
	// row: with a floor of 1, y ~ mask gives (Intercept) + mask = y[7].
	fit, err := lmFit(t, m, "y ~ mask", Policy{Floor: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := fit.Coefficients[0].Estimate + fit.Coefficients[1].Estimate; math.Abs(got-secret) > 1e-9 {
		t.Fatalf("the attack does not work without the check (%v, %v): the test proves nothing", got, secret)
	}
	pol := Policy{Floor: 5}
	attempts := map[string]func() error{
		"lm y ~ mask":         func() error { _, err := lmFit(t, m, "y ~ mask", pol); return err },
		"lm y ~ x * mask":     func() error { _, err := lmFit(t, m, "y ~ x * mask", pol); return err },
		"lm mask ~ y":         func() error { _, err := lmFit(t, m, "mask ~ y", pol); return err },
		"lm y ~ factor(mask)": func() error { _, err := lmFit(t, m, "y ~ factor(mask)", pol); return err },
		// Repeated values: dose is 5 everywhere but one row.
		"lm y ~ dose":         func() error { _, err := lmFit(t, m, "y ~ dose", pol); return err },
		"lm y ~ factor(dose)": func() error { _, err := lmFit(t, m, "y ~ factor(dose)", pol); return err },
		// A categorical level of one row.
		"lm y ~ site":   func() error { _, err := lmFit(t, m, "y ~ site", pol); return err },
		"lm y ~ x:site": func() error { _, err := lmFit(t, m, "y ~ x:site", pol); return err },
		"levels site": func() error {
			_, err := nodeLevels(m, mustParse(t, "y ~ site"), pol, true)
			return err
		},
		"summary mask": func() error { _, err := nodeSummary(m, []string{"y", "mask"}, pol); return err },
		"summary dose": func() error { _, err := nodeSummary(m, []string{"dose"}, pol); return err },
		"glm mask ~ y": func() error {
			_, err := nodeGLM(m, mustParse(t, "mask ~ y"), Levels{}, "binomial", []float64{0, 0}, pol)
			return err
		},
		"table site": func() error { _, err := contingency(m, []string{"site"}, nil, pol); return err },
	}
	for name, try := range attempts {
		if c := refusalCode(try()); c != fed.RefusedLevel {
			t.Errorf("%s: refusal %q, want %q", name, c, fed.RefusedLevel)
		}
	}
	// Two masks of enough rows each that meet in one row.
	a := make([]float64, m.n)
	b := make([]float64, m.n)
	for i := 0; i < 12; i++ {
		a[i] = 1
		b[11+i] = 1
	}
	m.num("ma", a).num("mb", b)
	if _, err := lmFit(t, m, "y ~ ma + mb", pol); err != nil {
		t.Errorf("two masks of 12 rows: %v", err)
	}
	if _, err := lmFit(t, m, "y ~ ma * mb", pol); refusalCode(err) != fed.RefusedLevel {
		t.Errorf("two masks meeting in one row: %v", err)
	}
	if _, err := lmFit(t, m, "y ~ ma:site", Policy{Floor: 1}); err != nil {
		t.Errorf("a mask by a factor, no floor: %v", err)
	}
	// The same column with enough rows in each level is fine.
	for i := 0; i < 10; i++ {
		m.floats["mask"][i] = 1
	}
	if _, err := lmFit(t, m, "y ~ mask", pol); err != nil {
		t.Errorf("a mask of 10 rows: %v", err)
	}
}

// TestAttackOneRowRemoved replays dsBase #251: the difference of two
// answers over row sets that differ by one row reveals that row.
func TestAttackOneRowRemoved(t *testing.T) {
	m := attackTable()
	pol := Policy{Floor: 5}
	all, err := nodeSummary(m, []string{"y"}, pol)
	if err != nil {
		t.Fatal(err)
	}
	// The researcher picks a second variable missing in one row only.
	z := make([]float64, m.n)
	z[7] = math.NaN()
	m.num("z", z)
	less, err := nodeSummary(m, []string{"y", "z"}, pol)
	if err != nil {
		t.Fatal(err)
	}
	// Without the history the difference is the row's value.
	if got := all.Sum[0] - less.Sum[0]; got != m.floats["y"][7] {
		t.Fatalf("the attack does not work without the check: %v", got)
	}
	h := NewMemoryHistory()
	if err := h.Admit("r1", "clinical", all.Used, pol.Floor); err != nil {
		t.Fatal(err)
	}
	if c := refusalCode(h.Admit("r1", "clinical", less.Used, pol.Floor)); c != fed.RefusedOverlap {
		t.Errorf("one row removed: %q", c)
	}
	// Added rows are differences too.
	if c := refusalCode(h.Admit("r1", "clinical", append(append([]int{}, all.Used...), 40, 41), pol.Floor)); c != fed.RefusedOverlap {
		t.Errorf("two rows added: %q", c)
	}
	// The same set again (every glm step) is fine, in any order.
	rev := append([]int{}, all.Used...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	if err := h.Admit("r1", "clinical", rev, pol.Floor); err != nil {
		t.Errorf("the same rows again: %v", err)
	}
	// A set that differs by the floor or more is fine.
	if err := h.Admit("r1", "clinical", all.Used[5:], pol.Floor); err != nil {
		t.Errorf("five rows fewer: %v", err)
	}
	// Another researcher, another table: their own histories.
	if err := h.Admit("r2", "clinical", less.Used, pol.Floor); err != nil {
		t.Errorf("another researcher: %v", err)
	}
	if err := h.Admit("r1", "other", less.Used, pol.Floor); err != nil {
		t.Errorf("another table: %v", err)
	}
	if Fingerprint([]int{3, 1, 2, 2}) != Fingerprint([]int{1, 2, 3}) || Fingerprint([]int{1}) == Fingerprint([]int{2}) {
		t.Error("fingerprints of sets")
	}
	// A full history refuses new row sets and still admits known ones.
	small := NewMemoryHistory()
	small.MaxSets = 2
	for i, rows := range [][]int{all.Used[:20], all.Used[:30]} {
		if err := small.Admit("r1", "t", rows, pol.Floor); err != nil {
			t.Fatalf("set %d: %v", i, err)
		}
	}
	if c := refusalCode(small.Admit("r1", "t", all.Used, pol.Floor)); c != fed.RefusedOverlap {
		t.Errorf("a full history: %q", c)
	}
	if err := small.Admit("r1", "t", all.Used[:20], pol.Floor); err != nil {
		t.Errorf("a known set in a full history: %v", err)
	}
	if err := h.Admit("r1", "clinical", []int{-1}, pol.Floor); err == nil {
		t.Error("negative row accepted")
	}
}

// TestAttackReconstruction replays Huth et al. 2022: moments of many
// variables over few rows make the rows solvable. Two rows' sum and
// sum of squares give both values; a model with as many coefficients
// as rows fits them exactly. Both are refused.
func TestAttackReconstruction(t *testing.T) {
	m := attackTable()
	// With two rows and no floor, n, Σx and Σx² solve for both values.
	two := m.slice(0, 2)
	p, err := nodeSummary(two, []string{"x"}, Policy{Floor: 1, MaxParamFraction: 1})
	if err != nil {
		t.Fatal(err)
	}
	s, q := p.Sum[0], p.SumSq[0]
	r := math.Sqrt(2*q - s*s)
	lo, hi := (s-r)/2, (s+r)/2
	want := []float64{math.Min(two.floats["x"][0], two.floats["x"][1]), math.Max(two.floats["x"][0], two.floats["x"][1])}
	if math.Abs(lo-want[0]) > 1e-9 || math.Abs(hi-want[1]) > 1e-9 {
		t.Fatalf("the reconstruction does not work without the check: %v %v, rows %v", lo, hi, want)
	}
	if c := refusalCode(func() error { _, err := nodeSummary(two, []string{"x"}, Policy{Floor: 5}); return err }()); c != fed.RefusedFloor {
		t.Errorf("two rows: %q", c)
	}
	// Many variables over few rows.
	wide := newMem(30)
	var vars []string
	formula := "y ~ v0"
	for j := 0; j < 12; j++ {
		x := make([]float64, 30)
		for i := range x {
			x[i] = float64((i*(j+2)+j)%11) + 0.1*float64(j)
		}
		name := "v" + string(rune('a'+j))
		wide.num(name, x)
		vars = append(vars, name)
		if j > 0 {
			formula += " + " + name
		}
	}
	wide.num("v0", wide.floats["va"])
	y := make([]float64, 30)
	for i := range y {
		y[i] = float64(i)
	}
	wide.num("y", y)
	pol := Policy{Floor: 5}
	if _, err := nodeSummary(wide, vars, pol); refusalCode(err) != fed.RefusedSaturated {
		t.Errorf("12 variables over 30 rows: %v", err)
	}
	if _, err := nodeSummary(wide, vars[:9], pol); err != nil {
		t.Errorf("9 variables over 30 rows: %v", err)
	}
	if _, err := lmFit(t, wide, formula, pol); refusalCode(err) != fed.RefusedSaturated {
		t.Errorf("12 coefficients over 30 rows: %v", err)
	}
	// p ≥ n/3 exactly: 10 coefficients over 30 rows.
	if _, err := lmFit(t, wide, "y ~ vb + vc + vd + ve + vf + vg + vh + vi + vj", pol); refusalCode(err) != fed.RefusedSaturated {
		t.Errorf("10 coefficients over 30 rows: %v", err)
	}
	if _, err := lmFit(t, wide, "y ~ vb + vc + vd + ve + vf + vg + vh + vi", pol); refusalCode(err) == fed.RefusedSaturated {
		t.Errorf("9 coefficients over 30 rows refused: %v", err)
	}
}
