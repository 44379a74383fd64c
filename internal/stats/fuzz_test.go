package stats

import (
	"context"
	"math"
	"sort"
	"strings"
	"testing"
)

// FuzzParseFormula checks that no input panics and that what parses
// prints back to a formula that parses to the same.
func FuzzParseFormula(f *testing.F) {
	for _, s := range []string{"y ~ a + b", "y ~ a*b - 1", "y ~ factor(c):a + 0", "y ~ I(a)", "y ~ (a", "~", "y ~ a:b:c*d", "y ~ factor(", "y ~ 1.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fm, err := ParseFormula(s)
		if err != nil {
			return
		}
		again, err := ParseFormula(fm.String())
		if err != nil {
			t.Fatalf("%q printed as %q which does not parse: %v", s, fm.String(), err)
		}
		if termSets(again) != termSets(fm) || again.Intercept != fm.Intercept || again.Response != fm.Response {
			t.Fatalf("%q: %q then %q", s, fm.String(), again.String())
		}
	})
}

// termSets describes a formula's terms as sets of variables.
func termSets(f *Formula) string {
	var out []string
	for _, t := range f.Terms {
		var vs []string
		for _, v := range t.vars() {
			vs = append(vs, v.label())
		}
		sort.Strings(vs)
		out = append(out, strings.Join(vs, ":"))
	}
	sort.Strings(out)
	return strings.Join(out, "+")
}

// TestBadParts checks the hub's side against malformed sums.
func TestBadParts(t *testing.T) {
	if _, err := LMPartFromVector(2, []float64{1, 2, 3}); err == nil {
		t.Error("short vector accepted")
	}
	if _, err := LMPartFromVector(1, []float64{10, 1, math.NaN(), 1}); err == nil {
		t.Error("NaN accepted")
	}
	if _, err := LMPartFromVector(0, nil); err == nil {
		t.Error("no coefficients accepted")
	}
	if _, err := GLMPartFromVector(1, []float64{10, math.Inf(1), 1, 1}); err == nil {
		t.Error("infinite deviance accepted")
	}
	if _, err := SummaryPartFromVector([]string{"a"}, []float64{1, 2}); err == nil {
		t.Error("short summary accepted")
	}
	if _, err := FitLM([]string{"a"}, nil); err == nil {
		t.Error("nil part fitted")
	}
	if _, err := FitLM([]string{"a", "b"}, &LMPart{P: 1, XtX: []float64{1}, Xty: []float64{1}, N: 10}); err == nil {
		t.Error("names of the wrong length fitted")
	}
	if _, err := FitLM([]string{"a"}, &LMPart{P: 1, XtX: []float64{1}, Xty: []float64{1}, N: 1}); err == nil || !strings.Contains(err.Error(), "degrees of freedom") {
		t.Errorf("no residual df: %v", err)
	}
	if _, err := FitLM([]string{"a"}, &LMPart{P: 1, XtX: []float64{1}, Xty: []float64{1}, N: 2.5}); err == nil {
		t.Error("fractional count fitted")
	}
	bad := func(ctx context.Context, iter int, beta []float64) (*GLMPart, error) {
		return &GLMPart{P: 2, Grad: []float64{1}, Hess: []float64{1, 0, 0, 1}, N: 10}, nil
	}
	if _, err := FitGLM(context.Background(), []string{"a", "b"}, "binomial", bad, 25); err == nil {
		t.Error("wrong shape accepted")
	}
	nanStep := func(ctx context.Context, iter int, beta []float64) (*GLMPart, error) {
		return &GLMPart{P: 1, Grad: []float64{math.NaN()}, Hess: []float64{1}, N: 10, Deviance: 1}, nil
	}
	if _, err := FitGLM(context.Background(), []string{"a"}, "binomial", nanStep, 25); err == nil {
		t.Error("NaN gradient accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := FitGLM(ctx, []string{"a"}, "binomial", nanStep, 25); err == nil {
		t.Error("cancelled context ignored")
	}
	if _, err := FitGLM(context.Background(), []string{"a"}, "poisson", nanStep, 25); err == nil {
		t.Error("poisson accepted")
	}
	if _, err := PoolSummary(&SummaryPart{Vars: []string{"a"}, N: []float64{1}, Sum: []float64{1}, SumSq: []float64{1}}); err == nil {
		t.Error("variance of one row")
	}
	if _, err := NodeLM(nil, nil, nil, Policy{}); err == nil {
		t.Error("nil table accepted")
	}
}
