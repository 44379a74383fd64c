package compute

import (
	"context"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/fl"
	"github.com/mosaic-imaging/mosaic/internal/stats"
)

// pooledScores scores the pooled rows as score.py does.
func pooledScores(t *testing.T, coef []float64, bias float64, csvs ...string) (scores, labels []float64) {
	t.Helper()
	for _, c := range csvs {
		for _, line := range strings.Split(strings.TrimSpace(c), "\n")[1:] {
			f := strings.Split(line, ",")
			x, _ := strconv.ParseFloat(f[1], 64)
			z, _ := strconv.ParseFloat(f[2], 64)
			o, _ := strconv.ParseFloat(f[4], 64)
			scores = append(scores, 1/(1+math.Exp(-(x*coef[0]+z*coef[1]+bias))))
			labels = append(labels, o)
		}
	}
	return scores, labels
}

func compareValidation(t *testing.T, got, want *fl.ValidationResult) {
	t.Helper()
	if got.N != want.N || got.Positives != want.Positives || !relClose(got.AUC, want.AUC, 1e-9) {
		t.Errorf("n %g pos %g auc %g, want n %g pos %g auc %g", got.N, got.Positives, got.AUC, want.N, want.Positives, want.AUC)
	}
	for i := range want.Sensitivity {
		if !relClose(got.Sensitivity[i], want.Sensitivity[i], 1e-9) || !relClose(got.Specificity[i], want.Specificity[i], 1e-9) {
			t.Errorf("threshold %g: sens %g spec %g, want %g %g", want.Grid[i], got.Sensitivity[i], got.Specificity[i], want.Sensitivity[i], want.Specificity[i])
		}
	}
	for i := range want.CalCount {
		if got.CalCount[i] != want.CalCount[i] || (want.CalCount[i] > 0 && !relClose(got.CalObserved[i], want.CalObserved[i], 1e-9)) {
			t.Errorf("bin %d: %g %g, want %g %g", i, got.CalCount[i], got.CalObserved[i], want.CalCount[i], want.CalObserved[i])
		}
	}
}

// TestValidateProgramEqualsPooled: a validation program run by
// bubblewrap at three nodes scores their rows (which stay there); the
// merged metrics equal those of the pooled scores.
func TestValidateProgramEqualsPooled(t *testing.T) {
	prog := readProgram(t, "score.py")
	csvs := []string{synth(51, 1200, 0), synth(52, 1000, 0.5), synth(53, 1100, -0.5)}
	a, targets := federation(t, 10, map[string]string{"clin": csvs[0]}, map[string]string{"clin": csvs[1]}, map[string]string{"clin": csvs[2]})
	withExecutor(t, a, prog)
	coef, bias := []float64{0.8, -0.1}, -0.3
	w, err := EncodeWeights([]fl.Tensor{{Name: "coef", DType: "F64", Shape: []int64{2}}, {Name: "bias", DType: "F64", Shape: []int64{1}}}, append(append([]float64{}, coef...), bias))
	if err != nil {
		t.Fatal(err)
	}
	grid := []float64{0, 0.2, 0.4, 0.6, 0.8, 1}
	spec := ValidationSpec{Program: &prog, Weights: w, Params: map[string]any{"table": "clin", "features": []string{"x", "z"}, "target": "outcome"}, Grid: grid, Bins: 5}
	r := &Runner{Ask: a, Researcher: "rosa"}
	res, err := r.Validate(context.Background(), "val-1", spec, targets)
	if err != nil {
		t.Fatalf("validation: %v (%+v)", err, res)
	}
	s, l := pooledScores(t, coef, bias, csvs...)
	if len(res.Plan.Grid) < 2 || len(res.Plan.Grid) > len(grid) {
		t.Errorf("the coarsened grid %v", res.Plan.Grid)
	}
	part, err := fl.NodeValidationPlan(s, l, res.Plan, 1)
	if err != nil {
		t.Fatal(err)
	}
	want, err := fl.Merge(part)
	if err != nil {
		t.Fatal(err)
	}
	compareValidation(t, res.ValidationResult, want)
	if res.RowsPerNode["node2"] != 1000 {
		t.Errorf("rows %v", res.RowsPerNode)
	}
}

// TestDesignMatchesStats: the model matrix that scores a fitted model at
// a node has the columns stats fits (XᵀX and Xᵀy equal NodeLM's), with
// factors, an interaction and no intercept.
func TestDesignMatchesStats(t *testing.T) {
	tb := pooled(t, synth(61, 300, 0))
	for _, formula := range []string{"y ~ x + z + factor(stage)", "y ~ x + factor(stage) + x:z", "y ~ factor(stage) + x - 1"} {
		f, err := stats.ParseFormula(formula)
		if err != nil {
			t.Fatal(err)
		}
		lv := pooledLevels(t, tb, f)
		part, err := stats.NodeLM(tb, f, lv, stats.Policy{Floor: 1, MaxParamFraction: 1})
		if err != nil {
			t.Fatal(err)
		}
		X, y, err := Design(tb, f, lv)
		if err != nil {
			t.Fatal(err)
		}
		P := part.P
		if len(X) != int(part.N) || len(X[0]) != P {
			t.Fatalf("%s: %d×%d, stats %g×%d", formula, len(X), len(X[0]), part.N, P)
		}
		for i := 0; i < P; i++ {
			var xy float64
			for r := range X {
				xy += X[r][i] * y[r]
			}
			if !relClose(xy, part.Xty[i], 1e-9) {
				t.Errorf("%s: Xᵀy[%d] %g, stats %g", formula, i, xy, part.Xty[i])
			}
			for j := 0; j < P; j++ {
				var s float64
				for r := range X {
					s += X[r][i] * X[r][j]
				}
				if !relClose(s, part.XtX[i*P+j], 1e-9) {
					t.Errorf("%s: XᵀX[%d,%d] %g, stats %g", formula, i, j, s, part.XtX[i*P+j])
				}
			}
		}
	}
}

// TestValidateFittedGLM: a logistic regression fitted over the nodes is
// validated at them, scored in Go; the merged metrics equal the pooled
// computation.
func TestValidateFittedGLM(t *testing.T) {
	csvs := []string{synth(71, 900, 0), synth(72, 800, 0.5), synth(73, 700, -0.5)}
	a, targets := federation(t, 10, map[string]string{"clin": csvs[0]}, map[string]string{"clin": csvs[1]}, map[string]string{"clin": csvs[2]})
	r := &Runner{Ask: a, Researcher: "rosa"}
	q := AnalysisRequest{Type: TypeGLM, Family: "binomial", Table: "clin", Formula: "outcome ~ x + z + factor(stage)"}
	fit, err := r.Analyze(context.Background(), "an-v", q, targets)
	if err != nil {
		t.Fatal(err)
	}
	spec := ValidationSpec{Table: "clin", Formula: q.Formula, Family: "binomial", Levels: fit.Levels, Grid: []float64{0.2, 0.4, 0.5, 0.6, 0.8}, Bins: 5}
	for _, c := range fit.Coefficients {
		spec.Coefficients = append(spec.Coefficients, c.Term)
		spec.Estimates = append(spec.Estimates, c.Estimate)
	}
	noLevels := spec
	noLevels.Levels = nil
	if _, err := r.Validate(context.Background(), "val-3", noLevels, targets); err == nil || !strings.Contains(err.Error(), "levels of stage are needed") {
		t.Errorf("a fitted model without its levels: %v", err)
	}
	res, err := r.Validate(context.Background(), "val-2", spec, targets)
	if err != nil {
		t.Fatalf("validation: %v", err)
	}
	tb := pooled(t, csvs...)
	f, _ := stats.ParseFormula(q.Formula)
	X, y, err := Design(tb, f, pooledLevels(t, tb, f))
	if err != nil {
		t.Fatal(err)
	}
	scores := make([]float64, len(X))
	for i, row := range X {
		var e float64
		for j, x := range row {
			e += x * spec.Estimates[j]
		}
		scores[i] = 1 / (1 + math.Exp(-e))
	}
	part, err := fl.NodeValidationPlan(scores, y, res.Plan, 1)
	if err != nil {
		t.Fatal(err)
	}
	want, err := fl.Merge(part)
	if err != nil {
		t.Fatal(err)
	}
	compareValidation(t, res.ValidationResult, want)
	if res.AUC < 0.7 || len(res.Plan.Grid) < 2 {
		t.Errorf("AUC %g on %v", res.AUC, res.Plan.Grid)
	}
}
