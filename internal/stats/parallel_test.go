package stats

import "testing"

// TestParallelPart checks that a node's part computed over chunks on
// several goroutines equals the sum of serial parts of its thirds.
func TestParallelPart(t *testing.T) {
	m := cohort(60000, 6)
	f := mustParse(t, "y ~ age * sex + stage + bmi")
	lv := Levels{"sex": {"F", "M"}, "stage": {"I", "II", "III"}}
	whole, err := nodeLM(m, f, lv, testPolicy)
	if err != nil {
		t.Fatal(err)
	}
	sum := make([]float64, len(whole.Vector()))
	for _, p := range []*memTable{m.slice(0, 20000), m.slice(20000, 40000), m.slice(40000, 60000)} {
		part, err := nodeLM(p, f, lv, testPolicy)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range part.Vector() {
			sum[i] += v
		}
	}
	for i, v := range whole.Vector() {
		if !relClose(v, sum[i], 1e-12) {
			t.Fatalf("value %d: %v in one part, %v summed", i, v, sum[i])
		}
	}
	g := mustParse(t, "died ~ age + sex")
	beta := []float64{-2, 0.03, -0.3}
	gw, err := nodeGLM(m, g, lv, "binomial", beta, testPolicy)
	if err != nil {
		t.Fatal(err)
	}
	gs := make([]float64, len(gw.Vector()))
	for _, p := range []*memTable{m.slice(0, 30000), m.slice(30000, 60000)} {
		part, err := nodeGLM(p, g, lv, "binomial", beta, testPolicy)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range part.Vector() {
			gs[i] += v
		}
	}
	for i, v := range gw.Vector() {
		if !relClose(v, gs[i], 1e-11) {
			t.Fatalf("glm value %d: %v in one part, %v summed", i, v, gs[i])
		}
	}
}

// TestCategoricalResponse checks that a two-level categorical response
// fits as its 0/1 coding (the first level 0, as R).
func TestCategoricalResponse(t *testing.T) {
	m := cohort(500, 8)
	out := make([]string, m.n)
	for i, d := range m.floats["died"] {
		out[i] = map[float64]string{0: "alive", 1: "dead"}[d]
	}
	m.cat("outcome", out)
	a := fedGLM(t, nodes(m), "died ~ age + sex")
	b := fedGLM(t, nodes(m), "outcome ~ age + sex")
	for i := range a.Coefficients {
		if !relClose(a.Coefficients[i].Estimate, b.Coefficients[i].Estimate, 1e-12) || !relClose(a.Coefficients[i].StdError, b.Coefficients[i].StdError, 1e-12) {
			t.Errorf("%v against %v", a.Coefficients[i], b.Coefficients[i])
		}
	}
	if a.Deviance != b.Deviance || a.NullDeviance != b.NullDeviance {
		t.Errorf("deviances %v/%v against %v/%v", a.Deviance, a.NullDeviance, b.Deviance, b.NullDeviance)
	}
}
