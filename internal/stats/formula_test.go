package stats

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/fed"
)

func TestParseFormula(t *testing.T) {
	cases := []struct {
		in, want string
	}{
		{"y ~ a + b", "y ~ a + b"},
		{"y~a*b", "y ~ a + b + a:b"},
		{"y ~ a:b + c", "y ~ c + a:b"},
		{"y ~ b:a + a", "y ~ a + b:a"},
		{"y ~ a + factor(c) - 1", "y ~ a + factor(c) + 0"},
		{"y ~ 0 + a", "y ~ a + 0"},
		{"y ~ a + 1", "y ~ a"},
		{"y ~ a + a", "y ~ a"},
		{"y ~ a*b*c", "y ~ a + b + c + a:b + a:c + b:c + a:b:c"},
		{"y ~ a:b + b:a", "y ~ a:b"},
		{"y ~ 1", "y ~ 1"},
		{"y ~ factor(c):a + a", "y ~ a + factor(c):a"},
	}
	for _, c := range cases {
		f, err := ParseFormula(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if got := f.String(); got != c.want {
			t.Errorf("%q parsed as %q, want %q", c.in, got, c.want)
		}
	}
	f, _ := ParseFormula("y ~ a + factor(c) + a:b")
	if got := strings.Join(f.Variables(), ","); got != "y,a,c,b" {
		t.Errorf("variables %q", got)
	}
}

func TestParseFormulaRefuses(t *testing.T) {
	cases := map[string]string{
		"y ~ .":              "'.'",
		"y ~ I(a * mask)":    "I()",
		"y ~ log(a)":         "log()",
		"y ~ a * 2":          "number",
		"y ~ a + b^2":        "'^'",
		"y ~ (a + b)^2":      "'^'",
		"y ~ (a + b)":        "parentheses",
		"y ~ a | g":          "'|'",
		"y ~ a %in% b":       "%in%",
		"y ~ offset(a)":      "offset()",
		"y ~ a - b":          "'-'",
		"y ~ a / b":          "'/'",
		"":                   "empty",
		"y":                  "'~'",
		"factor(y) ~ a":      "response",
		"y ~ y + a":          "response",
		"y ~ a +":            "ends",
		"y ~ factor(log(a))": "log()",
		"y ~ factor(a, b)":   "one column",
		"y ~ a:b:c:d:e":      "more than 4",
		"y ~ `a b`":          "backquoted",
		"y ~ a + 2":          "number",
		"y ~ a $ b":          "unexpected character",
		"y ~ " + strings.Repeat("a + ", 600) + "a": "longer than",
	}
	for in, want := range cases {
		_, err := ParseFormula(in)
		if err == nil {
			t.Errorf("%q accepted", in)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %q does not name %s", in, err, want)
		}
	}
	// Many distinct terms.
	var b strings.Builder
	b.WriteString("y ~ v0")
	for i := 1; i < 300; i++ {
		b.WriteString(" + v")
		b.WriteString(strconv.Itoa(i))
	}
	if _, err := ParseFormula(b.String()); err == nil || !strings.Contains(err.Error(), "terms") {
		t.Errorf("300 terms: %v", err)
	}
}

func TestCoefficientNames(t *testing.T) {
	m := cohort(300, 3)
	cases := map[string]string{
		"y ~ age * sex":             "(Intercept),age,sexM,age:sexM",
		"y ~ factor(grade) + stage": "(Intercept),factor(grade)2,factor(grade)3,stageII,stageIII",
		"y ~ stage - 1":             "stageI,stageII,stageIII",
		"y ~ sex * stage":           "(Intercept),sexM,stageII,stageIII,sexM:stageII,sexM:stageIII",
		"y ~ age:bmi":               "(Intercept),age:bmi",
		"y ~ age + age:sex":         "(Intercept),age,age:sexM",
		"y ~ age:sex":               "(Intercept),age:sexF,age:sexM",
	}
	for in, want := range cases {
		f, err := ParseFormula(in)
		if err != nil {
			t.Fatal(err)
		}
		lv, err := nodeLevels(m, f, testPolicy, true)
		if err != nil {
			t.Fatal(err)
		}
		names, err := coefficients(m, f, lv)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(names, ","); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

func refusalCode(err error) string {
	var r *Refusal
	if errors.As(err, &r) {
		return r.Code
	}
	return ""
}

// TestNodeRefusals checks the node's floor, saturation and level
// checks, each with a case just inside that passes.
func TestNodeRefusals(t *testing.T) {
	m := cohort(60, 4)
	pol := Policy{Floor: 10}
	lm := func(src *memTable, formula string, pol Policy) error {
		f, err := ParseFormula(formula)
		if err != nil {
			t.Fatal(err)
		}
		lv, err := nodeLevels(src, f, Policy{Floor: 1}, true)
		if err != nil {
			return err
		}
		_, err = nodeLM(src, f, lv, pol)
		return err
	}
	// Floor: 60 rows with some missing; a floor of 100 refuses.
	if c := refusalCode(lm(m, "y ~ age", Policy{Floor: 100})); c != fed.RefusedFloor {
		t.Errorf("under the floor: %q", c)
	}
	if err := lm(m, "y ~ age", pol); err != nil {
		t.Errorf("over the floor: %v", err)
	}
	// Saturated: 60 rows, 20+ coefficients.
	wide := cohort(60, 4)
	formula := "y ~ age"
	for i := 0; i < 20; i++ {
		name := "x" + string(rune('a'+i))
		x := make([]float64, 60)
		for j := range x {
			x[j] = float64((j*(i+3))%17) + float64(i)
		}
		wide.num(name, x)
		formula += " + " + name
	}
	if c := refusalCode(lm(wide, formula, pol)); c != fed.RefusedSaturated {
		t.Errorf("saturated: %q", c)
	}
	if err := lm(wide, "y ~ age + xa + xb + xc", pol); err != nil {
		t.Errorf("4 coefficients over ~50 rows: %v", err)
	}
	// As many parameters as rows.
	if c := refusalCode(lm(wide.slice(0, 24), formula, Policy{Floor: 1, MaxParamFraction: 1})); c != fed.RefusedSaturated {
		t.Errorf("as many parameters as rows: %q", c)
	}
	// A level under the floor.
	st := make([]string, 60)
	for i := range st {
		st[i] = []string{"a", "b"}[i%2]
	}
	st[3] = "c"
	m.cat("site", st)
	if c := refusalCode(lm(m, "y ~ site", pol)); c != fed.RefusedLevel {
		t.Errorf("small level: %q", c)
	}
	// Text columns are refused.
	m.text["note"] = true
	if err := lm(m, "y ~ note", pol); err == nil || !strings.Contains(err.Error(), "text") {
		t.Errorf("text column: %v", err)
	}
	// Unknown column.
	if err := lm(m, "y ~ nothere", pol); err == nil || !strings.Contains(err.Error(), "nothere") {
		t.Errorf("unknown column: %v", err)
	}
	// Categorical response in lm.
	if err := lm(m, "sex ~ age", pol); err == nil || !strings.Contains(err.Error(), "categorical") {
		t.Errorf("categorical response: %v", err)
	}
	// Levels not agreed.
	f, _ := ParseFormula("y ~ stage")
	if _, err := nodeLM(m, f, Levels{"stage": {"I", "II"}}, pol); refusalCode(err) != fed.RefusedInvalid {
		t.Errorf("level outside the agreement: %v", err)
	}
	// Wrong beta length and non-finite beta in glm.
	g, _ := ParseFormula("died ~ age")
	if _, err := nodeGLM(m, g, Levels{}, "binomial", []float64{0}, Policy{Floor: 1}); err == nil {
		t.Error("short beta accepted")
	}
	if _, err := nodeGLM(m, g, Levels{}, "poisson", []float64{0, 0}, Policy{Floor: 1}); err == nil {
		t.Error("poisson accepted")
	}
	if _, err := nodeGLM(m, g, Levels{}, "binomial", []float64{0, nan()}, Policy{Floor: 1}); err == nil {
		t.Error("NaN beta accepted")
	}
	if _, err := nodeGLM(m, mustParse(t, "y ~ age"), Levels{}, "binomial", []float64{0, 0}, Policy{Floor: 1}); err == nil {
		t.Error("non-binary response accepted")
	}
}

func mustParse(t testing.TB, s string) *Formula {
	t.Helper()
	f, err := ParseFormula(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
