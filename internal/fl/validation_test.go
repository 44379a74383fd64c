package fl

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// node makes n rows whose score depends on the label, like a model.
func node(r *rand.Rand, n int, prev float64) (scores, labels []float64) {
	for range n {
		y := 0.0
		if r.Float64() < prev {
			y = 1
		}
		s := 1 / (1 + math.Exp(-(r.NormFloat64() + 1.6*y - 0.8)))
		scores = append(scores, s)
		labels = append(labels, y)
	}
	return
}

func fineGrid() []float64 {
	var g []float64
	for i := 1; i < 40; i++ {
		g = append(g, float64(i)/40)
	}
	return g
}

// TestValidationPooledEquality: three nodes coarsen the plan together,
// each returns its part; the sum merged equals, to the last bit, the
// pooled computation over all rows on the same coarser plan, and no
// count at any node identifies fewer than floor rows of either label.
func TestValidationPooledEquality(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const floor = 10
	var ss, ls [][]float64
	for i, n := range []int{3000, 1500, 1200} {
		s, l := node(r, n, []float64{0.3, 0.5, 0.3}[i])
		ss, ls = append(ss, s), append(ls, l)
	}
	plan, err := NewPlan(fineGrid(), 10)
	if err != nil {
		t.Fatal(err)
	}
	// The fine plan is too fine for the small node.
	if _, err := NodeValidationPlan(ss[2], ls[2], plan, floor); !errors.Is(err, ErrCoarsen) {
		t.Fatalf("the fine plan at the small node: %v, want ErrCoarsen", err)
	}
	sup := make([]float64, len(plan.Cuts()))
	for i := range ss {
		v, err := Suppress(ss[i], ls[i], plan, floor)
		if err != nil {
			t.Fatal(err)
		}
		for j := range v {
			sup[j] += v[j]
		}
	}
	coarse, err := plan.Coarsen(sup)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("coarse grid %v, bins %v", coarse.Grid, coarse.CalEdges)
	if len(coarse.Grid) < 3 || len(coarse.Grid) >= len(plan.Grid) {
		t.Fatalf("coarse grid %v: the test wants some thresholds kept and some dropped", coarse.Grid)
	}
	var sum *ValidationPart
	vsum := make([]float64, coarse.VectorLength())
	var allS, allL []float64
	for i := range ss {
		part, err := NodeValidationPlan(ss[i], ls[i], coarse, floor)
		if err != nil {
			t.Fatalf("node %d on the coarse plan: %v", i, err)
		}
		checkNoSmallCell(t, ss[i], ls[i], coarse, floor)
		for j, x := range part.Vector() {
			vsum[j] += x
		}
		if sum == nil {
			sum = part
		} else if err := sum.Add(part); err != nil {
			t.Fatal(err)
		}
		allS, allL = append(allS, ss[i]...), append(allL, ls[i]...)
	}
	fromVec, err := PartFromVector(coarse, vsum)
	if err != nil {
		t.Fatal(err)
	}
	a, err := countAtoms(allS, allL, coarse)
	if err != nil {
		t.Fatal(err)
	}
	pooled, err := Merge(a.part(coarse))
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]*ValidationPart{"Add": sum, "vector sum": fromVec} {
		got, err := Merge(p)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, pooled) {
			t.Errorf("%s: merged %+v\npooled %+v", name, got, pooled)
		}
	}
	// The pooled figures themselves, counted row by row.
	var P, N float64
	for _, y := range allL {
		P += y
	}
	N = float64(len(allL)) - P
	if pooled.N != P+N || pooled.Positives != P {
		t.Errorf("n %v positives %v", pooled.N, pooled.Positives)
	}
	xs, ys := []float64{0}, []float64{0}
	for k := len(coarse.Grid) - 1; k >= 0; k-- {
		var tp, tn float64
		for i, s := range allS {
			if s >= coarse.Grid[k] && allL[i] == 1 {
				tp++
			}
			if s < coarse.Grid[k] && allL[i] == 0 {
				tn++
			}
		}
		if pooled.Sensitivity[k] != tp/P || pooled.Specificity[k] != tn/N {
			t.Errorf("threshold %v: sensitivity %v specificity %v, counted %v %v", coarse.Grid[k], pooled.Sensitivity[k], pooled.Specificity[k], tp/P, tn/N)
		}
		xs, ys = append(xs, 1-tn/N), append(ys, tp/P)
	}
	xs, ys = append(xs, 1), append(ys, 1)
	var auc float64
	for i := 1; i < len(xs); i++ {
		auc += (xs[i] - xs[i-1]) * (ys[i] + ys[i-1]) / 2
	}
	if math.Abs(auc-pooled.AUC) > 1e-15 {
		t.Errorf("AUC %v, trapezoid counted row by row %v", pooled.AUC, auc)
	}
	// The Mann–Whitney AUC over the exact scores is near the grid's.
	var wins float64
	for i := range allS {
		for j := range allS {
			if allL[i] == 1 && allL[j] == 0 && allS[i] > allS[j] {
				wins++
			}
		}
	}
	if mw := wins / (P * N); math.Abs(mw-pooled.AUC) > 0.04 || pooled.AUC < 0.7 {
		t.Errorf("grid AUC %v, Mann–Whitney %v", pooled.AUC, mw)
	}
	// Calibration counted row by row.
	for b := range coarse.Bins() {
		lo, hi := coarse.CalEdges[b], coarse.CalEdges[b+1]
		var c, pos, sc float64
		for i, s := range allS {
			if s >= lo && (s < hi || (b == coarse.Bins()-1 && s <= hi)) {
				c++
				pos += allL[i]
				sc += s
			}
		}
		if pooled.CalCount[b] != c || pooled.CalObserved[b] != pos/c || math.Abs(pooled.CalPredicted[b]-sc/c) > 1e-7 {
			t.Errorf("bin %d: %v %v %v, counted %v %v %v", b, pooled.CalCount[b], pooled.CalObserved[b], pooled.CalPredicted[b], c, pos/c, sc/c)
		}
	}
	if _, err := json.Marshal(pooled); err != nil {
		t.Fatal(err)
	}
}

// checkNoSmallCell counts, row by row, each interval between adjacent
// cuts of the plan at one node: each must hold at least floor rows of
// each label.
func checkNoSmallCell(t *testing.T, scores, labels []float64, p Plan, floor int) {
	t.Helper()
	cuts := append(append([]float64{math.Inf(-1)}, p.Cuts()...), math.Inf(1))
	for i := 1; i < len(cuts); i++ {
		var pos, neg int
		for j, s := range scores {
			if s >= cuts[i-1] && s < cuts[i] {
				if labels[j] == 1 {
					pos++
				} else {
					neg++
				}
			}
		}
		if pos < floor || neg < floor {
			t.Errorf("scores in [%v, %v): %d positives, %d negatives, under the floor %d", cuts[i-1], cuts[i], pos, neg, floor)
		}
	}
}

func TestValidationSmallExample(t *testing.T) {
	// Scores and labels; grid {0.5}: TP=2 (0.9, 0.6), FP=1 (0.7), TN=2, FN=1.
	scores := []float64{0.9, 0.6, 0.7, 0.2, 0.1, 0.3}
	labels := []float64{1, 1, 0, 0, 0, 1}
	part, err := NodeValidation(scores, labels, []float64{0.5}, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if part.TP[0] != 2 || part.FP[0] != 1 || part.TN[0] != 2 || part.FN[0] != 1 {
		t.Fatalf("counts %+v", part)
	}
	if !slices.Equal(part.BinCount, []float64{3, 3}) || !slices.Equal(part.BinPos, []float64{1, 2}) {
		t.Errorf("bins %v %v", part.BinCount, part.BinPos)
	}
	res, err := Merge(part)
	if err != nil {
		t.Fatal(err)
	}
	// ROC (0,0), (1/3, 2/3), (1,1): AUC = 1/3·1/3 + 2/3·5/6 = 1/9 + 5/9.
	if math.Abs(res.AUC-6.0/9) > 1e-15 || res.Sensitivity[0] != 2.0/3 || res.Specificity[0] != 2.0/3 {
		t.Errorf("result %+v", res)
	}
	if math.Abs(res.CalPredicted[0]-0.2) > 1e-6 || res.CalObserved[1] != 2.0/3 {
		t.Errorf("calibration %v %v", res.CalPredicted, res.CalObserved)
	}
	v := part.Vector()
	back, err := ValidationPartFromVector([]float64{0.5}, 2, v)
	if err != nil || !slices.Equal(back.Vector(), v) {
		t.Errorf("vector round trip: %v", err)
	}
	// An empty calibration bin is null in JSON.
	part.BinCount = []float64{6, 0}
	part.BinPos = []float64{3, 0}
	part.BinScore = []float64{2.8, 0}
	res, err = Merge(part)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(res)
	if err != nil || !strings.Contains(string(b), `"cal_predicted":[0.4666666666666666,null]`) {
		t.Errorf("JSON %s %v", b, err)
	}
}

func TestValidationRefusals(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	s, l := node(r, 200, 0.03) // about 6 positives
	var pos int
	for _, y := range l {
		pos += int(y)
	}
	if pos >= 10 {
		t.Fatalf("%d positives: the test wants under 10", pos)
	}
	if _, err := NodeValidation(s, l, []float64{0.5}, 10, 10); !errors.Is(err, ErrFloor) {
		t.Errorf("few positives: %v, want ErrFloor", err)
	}
	plan, _ := NewPlan([]float64{0.5}, 0)
	if _, err := Suppress(s, l, plan, 10); !errors.Is(err, ErrFloor) {
		t.Errorf("Suppress with few positives: %v, want ErrFloor", err)
	}
	good := []float64{0.1, 0.9}
	cases := map[string]func() error{
		"NaN score": func() error {
			_, err := NodeValidation([]float64{math.NaN(), 0.9}, []float64{0, 1}, good, 0, 1)
			return err
		},
		"label 2":         func() error { _, err := NodeValidation(good, []float64{0, 2}, good, 0, 1); return err },
		"lengths":         func() error { _, err := NodeValidation(good, []float64{0}, good, 0, 1); return err },
		"score above 1":   func() error { _, err := NodeValidation([]float64{0.1, 1.5}, []float64{0, 1}, good, 2, 1); return err },
		"grid order":      func() error { _, err := NodeValidation(good, []float64{0, 1}, []float64{0.5, 0.2}, 0, 1); return err },
		"grid NaN":        func() error { _, err := NodeValidation(good, []float64{0, 1}, []float64{math.NaN()}, 0, 1); return err },
		"floor 0":         func() error { _, err := NodeValidation(good, []float64{0, 1}, good, 0, 0); return err },
		"negative bins":   func() error { _, err := NodeValidation(good, []float64{0, 1}, good, -1, 1); return err },
		"vector length":   func() error { _, err := ValidationPartFromVector(good, 2, []float64{1, 2}); return err },
		"suppress length": func() error { _, err := plan.Coarsen([]float64{1, 1}); return err },
		"suppress NaN":    func() error { _, err := plan.Coarsen([]float64{math.NaN()}); return err },
		"merge nil":       func() error { _, err := Merge(nil); return err },
		"bad edges":       func() error { return Plan{CalEdges: []float64{0, 0.7, 0.5, 1}}.Validate() },
	}
	for name, f := range cases {
		if f() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Merge refuses sums that are not counts or do not add up.
	part, err := NodeValidation([]float64{0.1, 0.9, 0.2, 0.8}, []float64{0, 1, 1, 0}, []float64{0.5}, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(p *ValidationPart){
		"fraction":     func(p *ValidationPart) { p.TP[0] = 1.5 },
		"negative":     func(p *ValidationPart) { p.FP[0] = -1 },
		"not adding":   func(p *ValidationPart) { p.TP[0]++ },
		"no negatives": func(p *ValidationPart) { p.Negatives, p.FP[0], p.TN[0] = 0, 0, 0 },
	} {
		p, _ := PartFromVector(Plan{Grid: part.Grid}, part.Vector())
		mod(p)
		if _, err := Merge(p); err == nil {
			t.Errorf("merge with %s accepted", name)
		}
	}
	// Fixed-point noise on a sum is rounded away.
	v := part.Vector()
	for i := range v {
		v[i] += 1e-9
	}
	p, _ := PartFromVector(Plan{Grid: part.Grid}, v)
	if _, err := Merge(p); err != nil {
		t.Errorf("sum with fixed-point error: %v", err)
	}
}

// TestSuppressMergesIdentically: the coarse plan from the summed
// suppress vectors passes at every node even when each node alone
// would have dropped other cuts.
func TestSuppressMergesIdentically(t *testing.T) {
	for seed := range uint64(30) {
		r := rand.New(rand.NewPCG(seed, 99))
		plan, _ := NewPlan(fineGrid(), 1+int(seed%12))
		var ss, ls [][]float64
		sup := make([]float64, len(plan.Cuts()))
		for range 1 + seed%4 {
			s, l := node(r, 40+r.IntN(300), 0.15+0.5*r.Float64())
			v, err := Suppress(s, l, plan, 5)
			if errors.Is(err, ErrFloor) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			for j := range v {
				sup[j] += v[j]
			}
			ss, ls = append(ss, s), append(ls, l)
		}
		coarse, err := plan.Coarsen(sup)
		if err != nil {
			t.Fatal(err)
		}
		for i := range ss {
			if _, err := NodeValidationPlan(ss[i], ls[i], coarse, 5); err != nil {
				t.Fatalf("seed %d node %d: %v", seed, i, err)
			}
			checkNoSmallCell(t, ss[i], ls[i], coarse, 5)
		}
	}
}

// FuzzValidation: any rows and grid either give an error or parts that
// pass the floor rule and merge into metrics within [0, 1].
func FuzzValidation(f *testing.F) {
	f.Add([]byte{10, 200, 30, 40, 250, 60, 70, 80, 90, 100, 110, 120}, []byte{64, 128, 192}, uint8(4), uint8(1))
	f.Add([]byte{0, 0, 255, 255}, []byte{0, 255}, uint8(0), uint8(2))
	f.Fuzz(func(t *testing.T, rows, grid []byte, bins, floor uint8) {
		var scores, labels []float64
		for _, b := range rows {
			scores = append(scores, float64(b>>1)/127)
			labels = append(labels, float64(b&1))
		}
		var g []float64
		for _, b := range grid {
			g = append(g, float64(b)/255)
		}
		plan, err := NewPlan(g, int(bins%20))
		if err != nil {
			return
		}
		sup, err := Suppress(scores, labels, plan, int(floor%5))
		if err != nil {
			return
		}
		coarse, err := plan.Coarsen(sup)
		if err != nil {
			t.Fatal(err)
		}
		part, err := NodeValidationPlan(scores, labels, coarse, int(floor%5))
		if err != nil {
			t.Fatalf("coarse plan refused: %v", err)
		}
		checkNoSmallCell(t, scores, labels, coarse, int(floor%5))
		res, err := Merge(part)
		if err != nil {
			t.Fatal(err)
		}
		if !(res.AUC >= 0 && res.AUC <= 1) {
			t.Fatalf("AUC %v", res.AUC)
		}
	})
}
