package compute

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/stats"
	"github.com/mosaic-imaging/mosaic/internal/table"
)

// pooled reads the nodes' tables as one.
func pooled(t *testing.T, csvs ...string) *table.Table {
	t.Helper()
	var b strings.Builder
	for i, c := range csvs {
		if i > 0 {
			c = c[strings.IndexByte(c, '\n')+1:]
		}
		b.WriteString(c)
	}
	tb, err := table.ReadCSV(strings.NewReader(b.String()), nil, table.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func pooledLevels(t *testing.T, tb *table.Table, f *stats.Formula) stats.Levels {
	t.Helper()
	lv, err := stats.NodeLevels(tb, f, stats.Policy{Floor: 1, MaxParamFraction: 1})
	if err != nil {
		t.Fatal(err)
	}
	return lv
}

func compareFits(t *testing.T, got, want *stats.Fit, tol float64) {
	t.Helper()
	if len(got.Coefficients) != len(want.Coefficients) {
		t.Fatalf("coefficients %d, want %d", len(got.Coefficients), len(want.Coefficients))
	}
	for i, c := range got.Coefficients {
		w := want.Coefficients[i]
		if c.Term != w.Term || !relClose(c.Estimate, w.Estimate, tol) || !relClose(c.StdError, w.StdError, tol) || !relClose(c.PValue, w.PValue, tol) {
			t.Errorf("coefficient %d: %+v, want %+v", i, c, w)
		}
	}
	if got.N != want.N || got.DF != want.DF || !relClose(got.Sigma, want.Sigma, tol) || !relClose(got.Deviance, want.Deviance, tol) {
		t.Errorf("fit n=%d df=%d sigma=%g dev=%g, want n=%d df=%d sigma=%g dev=%g", got.N, got.DF, got.Sigma, got.Deviance, want.N, want.DF, want.Sigma, want.Deviance)
	}
}

// TestAnalyzeLMEqualsPooled: a linear model fitted over three nodes
// under secure aggregation equals the fit of the pooled rows, and each
// node's rows are reported.
func TestAnalyzeLMEqualsPooled(t *testing.T) {
	csvs := []string{synth(1, 300, 0), synth(2, 200, 1), synth(3, 250, -1)}
	a, targets := federation(t, 10, map[string]string{"clin": csvs[0]}, map[string]string{"clin": csvs[1]}, map[string]string{"clin": csvs[2]})
	r := &Runner{Ask: a, Researcher: "rosa"}
	q := AnalysisRequest{Type: TypeLM, Table: "clin", Formula: "y ~ x + z + factor(stage)"}
	res, err := r.Analyze(context.Background(), "an-1", q, targets)
	if err != nil {
		t.Fatalf("analysis: %v (refused %v)", err, res)
	}
	tb := pooled(t, csvs...)
	f, _ := stats.ParseFormula(q.Formula)
	lv := pooledLevels(t, tb, f)
	part, err := stats.NodeLM(tb, f, lv, stats.Policy{Floor: 1, MaxParamFraction: 1})
	if err != nil {
		t.Fatal(err)
	}
	coefs, err := stats.Coefficients(f, lv, tb)
	if err != nil {
		t.Fatal(err)
	}
	want, err := stats.FitLM(coefs, part)
	if err != nil {
		t.Fatal(err)
	}
	compareFits(t, res.Fit, want, 1e-9)
	if res.RowsPerNode["node1"] != 300 || res.RowsPerNode["node2"] != 200 || res.RowsPerNode["node3"] != 250 || len(res.Refused) != 0 {
		t.Errorf("rows per node %v, refused %v", res.RowsPerNode, res.Refused)
	}
	// Every step was audited at every node.
	for id, e := range a.envs {
		if e.audits.Load() < 5 {
			t.Errorf("%s audited %d steps", id, e.audits.Load())
		}
	}
}

// TestAnalyzeGLMEqualsPooled: a logistic regression, one secure
// aggregation per Newton step, equals the pooled fit.
func TestAnalyzeGLMEqualsPooled(t *testing.T) {
	csvs := []string{synth(4, 400, 0), synth(5, 300, 0.5), synth(6, 350, -0.5)}
	a, targets := federation(t, 10, map[string]string{"clin": csvs[0]}, map[string]string{"clin": csvs[1]}, map[string]string{"clin": csvs[2]})
	r := &Runner{Ask: a, Researcher: "rosa"}
	q := AnalysisRequest{Type: TypeGLM, Family: "binomial", Table: "clin", Formula: "outcome ~ x + z + factor(stage)"}
	res, err := r.Analyze(context.Background(), "an-2", q, targets)
	if err != nil {
		t.Fatalf("analysis: %v", err)
	}
	tb := pooled(t, csvs...)
	f, _ := stats.ParseFormula(q.Formula)
	lv := pooledLevels(t, tb, f)
	coefs, _ := stats.Coefficients(f, lv, tb)
	want, err := stats.FitGLM(context.Background(), coefs, "binomial", func(ctx context.Context, iter int, beta []float64) (*stats.GLMPart, error) {
		return stats.NodeGLM(tb, f, lv, "binomial", beta, stats.Policy{Floor: 1, MaxParamFraction: 1})
	}, 25)
	if err != nil {
		t.Fatal(err)
	}
	compareFits(t, res.Fit, want, 1e-8)
	if res.Iterations < 3 {
		t.Errorf("%d Newton steps", res.Iterations)
	}
}

// TestAnalyzeRefusalsAndDrops: a node whose permit is refused, a node
// with a level under its floor, and a node that goes away are named
// with why; the fit goes on with those left while they are at least
// the threshold, and fails saying so below it.
func TestAnalyzeRefusalsAndDrops(t *testing.T) {
	small := "y,x,z,stage,outcome\n"
	full := synth(9, 200, 0)
	lines := strings.Split(strings.TrimSpace(full), "\n")[1:]
	// node4: stage III only 3 rows (under a floor of 10).
	n3 := 0
	for _, l := range lines {
		if strings.Contains(l, ",III,") {
			if n3 >= 3 {
				continue
			}
			n3++
		}
		small += l + "\n"
	}
	a, targets := federation(t, 10,
		map[string]string{"clin": synth(7, 200, 0)}, map[string]string{"clin": synth(8, 200, 0)},
		map[string]string{"clin": synth(10, 200, 0)}, map[string]string{"clin": small}, map[string]string{"clin": synth(11, 200, 0)})
	a.envs["node3"].refuse = true
	r := &Runner{Ask: a, Researcher: "rosa"}
	q := AnalysisRequest{Type: TypeLM, Table: "clin", Formula: "y ~ x + factor(stage)"}
	res, err := r.Analyze(context.Background(), "an-3", q, targets)
	if err != nil {
		t.Fatalf("analysis: %v", err)
	}
	if !strings.HasPrefix(res.Refused["node3"], "permit") || !strings.HasPrefix(res.Refused["node4"], "level") {
		t.Errorf("refused %v", res.Refused)
	}
	if len(res.RowsPerNode) != 3 || res.N != 600 {
		t.Errorf("rows %v n %d", res.RowsPerNode, res.N)
	}
	// A node lost in the middle of the secure aggregation drops; with 3
	// of 3 needed... 2 of 3 is the threshold: the fit goes on.
	a2, t2 := federation(t, 10, map[string]string{"clin": synth(12, 200, 0)}, map[string]string{"clin": synth(13, 200, 0)}, map[string]string{"clin": synth(14, 200, 0)})
	a2.setDown("node2", StepMask)
	r2 := &Runner{Ask: a2, Researcher: "rosa"}
	res, err = r2.Analyze(context.Background(), "an-4", q, t2)
	if err != nil {
		t.Fatalf("with a drop: %v", err)
	}
	if res.N != 400 || !strings.HasPrefix(res.Refused["node2"], "dropped") {
		t.Errorf("with a drop: n %d refused %v", res.N, res.Refused)
	}
	// Two of three gone: under the threshold.
	a2.setDown("node3", StepAdvert)
	if _, err := r2.Analyze(context.Background(), "an-5", q, t2); err == nil || !strings.Contains(err.Error(), "too few") {
		t.Errorf("two of three gone: %v", err)
	}
}

// TestAnalyzeSummary: pooled means and standard deviations.
func TestAnalyzeSummary(t *testing.T) {
	csvs := []string{synth(21, 100, 0), synth(22, 150, 2), synth(23, 120, -2)}
	a, targets := federation(t, 10, map[string]string{"clin": csvs[0]}, map[string]string{"clin": csvs[1]}, map[string]string{"clin": csvs[2]})
	r := &Runner{Ask: a, Researcher: "rosa"}
	res, err := r.Analyze(context.Background(), "an-6", AnalysisRequest{Type: TypeSummary, Table: "clin", Variables: []string{"x", "y"}}, targets)
	if err != nil {
		t.Fatal(err)
	}
	tb := pooled(t, csvs...)
	for i, v := range []string{"x", "y"} {
		col, _ := tb.Float(v)
		var s, ss float64
		for _, x := range col {
			s += x
		}
		m := s / float64(len(col))
		for _, x := range col {
			ss += (x - m) * (x - m)
		}
		sd := ss / float64(len(col)-1)
		got := res.Summary[i]
		if got.N != 370 || !relClose(got.Mean, m, 1e-9) || !relClose(got.SD*got.SD, sd, 1e-9) {
			t.Errorf("%s: %+v, want mean %g var %g", v, got, m, sd)
		}
	}
}

// TestAnalysisRequestCheck: malformed requests are refused with words.
func TestAnalysisRequestCheck(t *testing.T) {
	for _, q := range []AnalysisRequest{
		{Type: "anova", Table: "t", Formula: "y ~ x"},
		{Type: TypeLM, Table: "bad name", Formula: "y ~ x"},
		{Type: TypeGLM, Table: "t", Formula: "y ~ x", Family: "poisson"},
		{Type: TypeSummary, Table: "t"},
	} {
		if err := q.Check(); err == nil {
			t.Errorf("%+v accepted", q)
		}
	}
}

// TestAnalyzeOverlap: a second model whose rows differ from the first's
// by fewer than the floor at a node is refused there (RefusedOverlap):
// the difference of the two answers would tell those rows.
func TestAnalyzeOverlap(t *testing.T) {
	withNA := func(csv string, na int) string {
		lines := strings.Split(strings.TrimSpace(csv), "\n")
		lines[0] += ",w"
		for i := 1; i < len(lines); i++ {
			if i <= na {
				lines[i] += ",NA"
			} else {
				lines[i] += fmt.Sprintf(",%d", i%7)
			}
		}
		return strings.Join(lines, "\n") + "\n"
	}
	a, targets := federation(t, 10, map[string]string{"clin": withNA(synth(81, 200, 0), 3)}, map[string]string{"clin": withNA(synth(82, 200, 0), 0)},
		map[string]string{"clin": withNA(synth(83, 200, 0), 40)})
	r := &Runner{Ask: a, Researcher: "rosa"}
	if _, err := r.Analyze(context.Background(), "ov-1", AnalysisRequest{Type: TypeLM, Table: "clin", Formula: "y ~ x"}, targets); err != nil {
		t.Fatal(err)
	}
	res, err := r.Analyze(context.Background(), "ov-2", AnalysisRequest{Type: TypeLM, Table: "clin", Formula: "y ~ x + z + w"}, targets)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Refused["node1"], "overlap") || len(res.Refused) != 1 || res.RowsPerNode["node3"] != 160 {
		t.Errorf("refused %v rows %v", res.Refused, res.RowsPerNode)
	}
}
