package stats

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/table"
)

// needTool finds a program or skips, failing instead when CI is set.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}

// refFit is a fit read from an independent tool.
type refFit struct {
	coefs   map[string][4]float64
	order   []string
	values  map[string]float64
	aliased []string
}

// parseRef reads lines "ID coef NAME est se stat p" and "ID key value".
func parseRef(t *testing.T, out []byte) map[string]*refFit {
	t.Helper()
	fits := map[string]*refFit{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) < 3 {
			continue
		}
		rf := fits[f[0]]
		if rf == nil {
			rf = &refFit{coefs: map[string][4]float64{}, values: map[string]float64{}}
			fits[f[0]] = rf
		}
		num := func(s string) float64 {
			v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil {
				t.Fatalf("reference output %q: %v", sc.Text(), err)
			}
			return v
		}
		if f[1] == "coef" && len(f) == 7 {
			rf.coefs[f[2]] = [4]float64{num(f[3]), num(f[4]), num(f[5]), num(f[6])}
			rf.order = append(rf.order, f[2])
		} else if f[1] == "aliased" {
			rf.aliased = append(rf.aliased, f[2])
		} else {
			rf.values[f[1]] = num(f[2])
		}
	}
	return fits
}

func relClose(a, b, tol float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= tol*math.Max(math.Abs(a), math.Abs(b))
}

func pClose(a, b float64) bool {
	if math.Max(a, b) < 1e-6 {
		return math.Abs(a-b) <= 1e-8
	}
	return relClose(a, b, 1e-8)
}

// compareFit checks a fit against a reference, by coefficient name and
// (when order is true) in the reference's order.
func compareFit(t *testing.T, label string, fit *Fit, ref *refFit, order bool) {
	t.Helper()
	if ref == nil {
		t.Fatalf("%s: no reference output", label)
	}
	if len(ref.coefs) != len(fit.Coefficients) {
		t.Fatalf("%s: %d coefficients, reference %d (%v)", label, len(fit.Coefficients), len(ref.coefs), ref.order)
	}
	for i, c := range fit.Coefficients {
		r, ok := ref.coefs[c.Term]
		if !ok {
			t.Fatalf("%s: coefficient %q not in the reference %v", label, c.Term, ref.order)
		}
		if order && ref.order[i] != c.Term {
			t.Errorf("%s: coefficient %d is %q, reference %q", label, i, c.Term, ref.order[i])
		}
		if !relClose(c.Estimate, r[0], 1e-8) || !relClose(c.StdError, r[1], 1e-8) || !relClose(c.Statistic, r[2], 1e-8) || !pClose(c.PValue, r[3]) {
			t.Errorf("%s: %s = %.15g %.15g %.15g %.15g, reference %.15g %.15g %.15g %.15g", label, c.Term,
				c.Estimate, c.StdError, c.Statistic, c.PValue, r[0], r[1], r[2], r[3])
		}
	}
	check := func(key string, got float64) {
		want, ok := ref.values[key]
		if !ok {
			return
		}
		if !relClose(got, want, 1e-8) {
			t.Errorf("%s: %s = %.15g, reference %.15g", label, key, got, want)
		}
	}
	check("sigma", fit.Sigma)
	check("df", float64(fit.DF))
	check("r2", fit.RSquared)
	check("adjr2", fit.AdjRSquared)
	check("fstat", fit.FStatistic)
	check("deviance", fit.Deviance)
	check("nulldev", fit.NullDeviance)
	check("aic", fit.AIC)
	check("iter", float64(fit.Iterations))
	check("n", float64(fit.N))
}

var lmFormulas = []string{
	"y ~ age + bmi",
	"y ~ age + sex + stage",
	"y ~ age * sex + factor(grade)",
	"y ~ age:bmi + age",
	"y ~ sex:stage + sex + stage",
	"y ~ age + stage - 1",
	"y ~ 0 + sex + age:stage",
	"y ~ age + age:stage",
	"y ~ stage:age",
}

// aliasFormulas are singular designs: R prints NA for the coefficients
// named after each formula.
var aliasFormulas = []string{
	"y ~ bmi + factor(grade):sex",
	"y ~ age + grade + factor(grade)",
}

var glmFormulas = []string{
	"died ~ age + stage + sex",
	"died ~ age * sex + factor(grade)",
	"died ~ stage + age - 1",
	"died ~ bmi",
}

// nodes splits a table into three "nodes" of unequal size.
func nodes(m *memTable) []*memTable {
	a, b := m.n/5, m.n/2
	return []*memTable{m.slice(0, a), m.slice(a, b), m.slice(b, m.n)}
}

var testPolicy = Policy{Floor: 5}

// fedLM fits f over the nodes as the hub would: agreed levels, each
// node's part, the sum of their vectors.
func fedLM(t *testing.T, parts []*memTable, formula string) *Fit {
	t.Helper()
	f, err := ParseFormula(formula)
	if err != nil {
		t.Fatalf("%s: %v", formula, err)
	}
	var lvs []Levels
	for _, p := range parts {
		lv, err := nodeLevels(p, f, testPolicy, true)
		if err != nil {
			t.Fatalf("%s: levels: %v", formula, err)
		}
		lvs = append(lvs, lv)
	}
	lv := MergeLevels(lvs...)
	coefs, err := coefficients(parts[0], f, lv)
	if err != nil {
		t.Fatalf("%s: %v", formula, err)
	}
	var sum []float64
	for _, p := range parts {
		part, err := nodeLM(p, f, lv, testPolicy)
		if err != nil {
			t.Fatalf("%s: node part: %v", formula, err)
		}
		v := part.Vector()
		if sum == nil {
			sum = make([]float64, len(v))
		}
		for i := range v {
			sum[i] += v[i]
		}
	}
	sp, err := LMPartFromVector(len(coefs), sum)
	if err != nil {
		t.Fatal(err)
	}
	fit, err := FitLM(coefs, sp)
	if err != nil {
		t.Fatalf("%s: %v", formula, err)
	}
	fit.Formula = f.String()
	return fit
}

// fedGLM fits a logistic model over the nodes.
func fedGLM(t *testing.T, parts []*memTable, formula string) *Fit {
	t.Helper()
	f, err := ParseFormula(formula)
	if err != nil {
		t.Fatalf("%s: %v", formula, err)
	}
	var lvs []Levels
	for _, p := range parts {
		lv, err := nodeLevels(p, f, testPolicy, true)
		if err != nil {
			t.Fatalf("%s: levels: %v", formula, err)
		}
		lvs = append(lvs, lv)
	}
	lv := MergeLevels(lvs...)
	coefs, err := coefficients(parts[0], f, lv)
	if err != nil {
		t.Fatal(err)
	}
	eval := func(ctx context.Context, iter int, beta []float64) (*GLMPart, error) {
		var sum []float64
		for _, p := range parts {
			part, err := nodeGLM(p, f, lv, "binomial", beta, testPolicy)
			if err != nil {
				return nil, err
			}
			v := part.Vector()
			if sum == nil {
				sum = make([]float64, len(v))
			}
			for i := range v {
				sum[i] += v[i]
			}
		}
		return GLMPartFromVector(len(coefs), sum)
	}
	fit, err := FitGLM(context.Background(), coefs, "binomial", eval, 25)
	if err != nil {
		t.Fatalf("%s: %v", formula, err)
	}
	if !fit.Converged {
		t.Fatalf("%s: did not converge", formula)
	}
	return fit
}

const rScript = `
args <- commandArgs(TRUE)
d <- read.csv(args[1], stringsAsFactors = TRUE)
lmf <- strsplit(args[2], ";", fixed = TRUE)[[1]]
glmf <- strsplit(args[3], ";", fixed = TRUE)[[1]]
alf <- strsplit(args[4], ";", fixed = TRUE)[[1]]
for (i in seq_along(alf)) {
  cf <- coef(lm(as.formula(alf[i]), data = d))
  for (n in names(cf)[is.na(cf)]) cat("alias", i, "\taliased\t", n, "\n", sep = "")
}
out <- function(id, key, v) cat(id, "\t", key, "\t", sprintf("%.17g", v), "\n", sep = "")
for (i in seq_along(lmf)) {
  id <- paste0("lm", i)
  s <- summary(lm(as.formula(lmf[i]), data = d))
  cf <- coef(s)
  for (j in seq_len(nrow(cf))) cat(id, "\tcoef\t", rownames(cf)[j], "\t", paste(sprintf("%.17g", cf[j, ]), collapse = "\t"), "\n", sep = "")
  out(id, "sigma", s$sigma); out(id, "df", s$df[2]); out(id, "r2", s$r.squared); out(id, "adjr2", s$adj.r.squared)
  if (!is.null(s$fstatistic)) out(id, "fstat", s$fstatistic[1])
}
for (i in seq_along(glmf)) {
  id <- paste0("glm", i)
  g <- glm(as.formula(glmf[i]), data = d, family = binomial)
  s <- summary(g)
  cf <- coef(s)
  for (j in seq_len(nrow(cf))) cat(id, "\tcoef\t", rownames(cf)[j], "\t", paste(sprintf("%.17g", cf[j, ]), collapse = "\t"), "\n", sep = "")
  out(id, "deviance", g$deviance); out(id, "nulldev", g$null.deviance); out(id, "aic", g$aic)
  out(id, "iter", g$iter); out(id, "df", g$df.residual)
}
`

// TestFederatedEqualsR fits linear and logistic models over three nodes
// and compares them with R's lm and glm on the pooled rows.
func TestFederatedEqualsR(t *testing.T) {
	rs := needTool(t, "Rscript")
	m := cohort(900, 1)
	dir := t.TempDir()
	csv := m.writeCSV(t, dir)
	script := dir + "/fit.R"
	if err := os.WriteFile(script, []byte(rScript), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(rs, "--vanilla", script, csv, strings.Join(lmFormulas, ";"), strings.Join(glmFormulas, ";"), strings.Join(aliasFormulas, ";"))
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("Rscript: %v\n%s", err, out)
	}
	ref := parseRef(t, out)
	parts := nodes(m)
	for i, formula := range lmFormulas {
		fit := fedLM(t, parts, formula)
		compareFit(t, "lm "+formula, fit, ref["lm"+strconv.Itoa(i+1)], true)
		// The pooled part gives the same fit.
		pooled := fedLM(t, []*memTable{m}, formula)
		for j, c := range pooled.Coefficients {
			if !relClose(c.Estimate, fit.Coefficients[j].Estimate, 1e-10) || !relClose(c.StdError, fit.Coefficients[j].StdError, 1e-10) {
				t.Errorf("%s: federated %v, pooled %v", formula, fit.Coefficients[j], c)
			}
		}
	}
	// The same through the node's research tables: the CSV read by
	// package table, cut into three nodes by Select.
	tables := readNodes(t, csv, m.n)
	for i, formula := range lmFormulas {
		compareFit(t, "table lm "+formula, tableLM(t, tables, formula), ref["lm"+strconv.Itoa(i+1)], true)
	}
	for i, formula := range glmFormulas {
		compareFit(t, "table glm "+formula, tableGLM(t, tables, formula), ref["glm"+strconv.Itoa(i+1)], true)
	}
	for i, formula := range aliasFormulas {
		f, _ := ParseFormula(formula)
		parts := []*memTable{m}
		lv, err := nodeLevels(m, f, testPolicy, true)
		if err != nil {
			t.Fatal(err)
		}
		coefs, err := coefficients(m, f, lv)
		if err != nil {
			t.Fatal(err)
		}
		part, err := nodeLM(parts[0], f, lv, testPolicy)
		if err != nil {
			t.Fatal(err)
		}
		_, err = FitLM(coefs, part)
		var ae *AliasedError
		if !errors.As(err, &ae) {
			t.Fatalf("%s: want an aliased design, got %v", formula, err)
		}
		want := ref["alias"+strconv.Itoa(i+1)]
		if want == nil || strings.Join(ae.Terms, ",") != strings.Join(want.aliased, ",") {
			t.Errorf("%s: aliased %v, R's NA %v", formula, ae.Terms, want)
		}
	}
	for i, formula := range glmFormulas {
		fit := fedGLM(t, parts, formula)
		compareFit(t, "glm "+formula, fit, ref["glm"+strconv.Itoa(i+1)], true)
	}
}

const pyScript = `
import sys, re
import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
import statsmodels.api as sm
d = pd.read_csv(sys.argv[1])
def name(n):
    n = re.sub(r"C\((\w+)\)\[T\.([^\]]+)\]", r"factor(\1)\2", n)
    n = re.sub(r"(\w+)\[T\.([^\]]+)\]", r"\1\2", n)
    return n.replace("Intercept", "(Intercept)")
def show(id, r, stat):
    for n in r.params.index:
        print("\t".join([id, "coef", name(n)] + ["%.17g" % v for v in (r.params[n], r.bse[n], stat[n], r.pvalues[n])]))
for i, f in enumerate(sys.argv[2].split(";")):
    r = smf.ols(f, data=d).fit()
    id = "lm%d" % (i + 1)
    show(id, r, r.tvalues)
    print("%s\tsigma\t%.17g" % (id, np.sqrt(r.scale)))
    print("%s\tdf\t%.17g" % (id, r.df_resid))
    print("%s\tr2\t%.17g" % (id, r.rsquared))
    print("%s\tadjr2\t%.17g" % (id, r.rsquared_adj))
for i, f in enumerate(sys.argv[3].split(";")):
    r = smf.glm(f, data=d, family=sm.families.Binomial()).fit(tol=1e-13)
    id = "glm%d" % (i + 1)
    show(id, r, r.tvalues)
    print("%s\tdeviance\t%.17g" % (id, r.deviance))
    print("%s\tnulldev\t%.17g" % (id, r.null_deviance))
`

// TestFederatedEqualsStatsmodels compares federated fits with
// statsmodels (formulas through patsy) on the pooled rows.
func TestFederatedEqualsStatsmodels(t *testing.T) {
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		py = needTool(t, "python3")
	}
	if err := exec.Command(py, "-c", "import statsmodels, pandas").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("statsmodels is required in CI: %v", err)
		}
		t.Skipf("statsmodels not installed: %v", err)
	}
	m := cohort(700, 2)
	dir := t.TempDir()
	csv := m.writeCSV(t, dir)
	script := dir + "/fit.py"
	if err := os.WriteFile(script, []byte(pyScript), 0o600); err != nil {
		t.Fatal(err)
	}
	lmf := []string{"y ~ age + bmi", "y ~ age + sex + stage", "y ~ bmi + C(grade)"}
	ours := []string{"y ~ age + bmi", "y ~ age + sex + stage", "y ~ bmi + factor(grade)"}
	glmf := []string{"died ~ age + bmi + C(grade)"}
	oursGLM := []string{"died ~ age + bmi + factor(grade)"}
	out, err := exec.Command(py, script, csv, strings.Join(lmf, ";"), strings.Join(glmf, ";")).CombinedOutput()
	if err != nil {
		t.Fatalf("statsmodels: %v\n%s", err, out)
	}
	ref := parseRef(t, out)
	parts := nodes(m)
	for i, f := range ours {
		compareFit(t, "lm "+f, fedLM(t, parts, f), ref["lm"+strconv.Itoa(i+1)], false)
	}
	for i, f := range oursGLM {
		fit := fedGLM(t, parts, f)
		r := ref["glm"+strconv.Itoa(i+1)]
		// statsmodels iterates to its own tolerance: estimates agree to
		// R's convergence, not to the last digit.
		for _, c := range fit.Coefficients {
			w := r.coefs[c.Term]
			if !relClose(c.Estimate, w[0], 1e-6) || !relClose(c.StdError, w[1], 1e-6) {
				t.Errorf("glm %s: %s = %v, statsmodels %v", f, c.Term, c, w)
			}
		}
		if !relClose(fit.Deviance, r.values["deviance"], 1e-8) || !relClose(fit.NullDeviance, r.values["nulldev"], 1e-10) {
			t.Errorf("glm %s: deviance %v/%v, statsmodels %v/%v", f, fit.Deviance, fit.NullDeviance, r.values["deviance"], r.values["nulldev"])
		}
	}
}

// readNodes reads a CSV with package table and cuts it as nodes does.
func readNodes(t *testing.T, path string, n int) []*table.Table {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dict := &table.Dictionary{Columns: map[string]table.Type{"sex": table.Categorical, "stage": table.Categorical}}
	tb, err := table.ReadCSV(f, dict, table.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if tb.Rows() != n {
		t.Fatalf("%d rows read, want %d", tb.Rows(), n)
	}
	a, b := n/5, n/2
	cut := func(lo, hi int) *table.Table {
		var rows []int
		for i := lo; i < hi; i++ {
			rows = append(rows, i)
		}
		return tb.Select(rows)
	}
	return []*table.Table{cut(0, a), cut(a, b), cut(b, n)}
}

// tableLM fits a linear model over tables with the exported API only.
func tableLM(t *testing.T, tables []*table.Table, formula string) *Fit {
	t.Helper()
	f, err := ParseFormula(formula)
	if err != nil {
		t.Fatal(err)
	}
	var lvs []Levels
	for _, tb := range tables {
		lv, err := NodeLevels(tb, f, testPolicy)
		if err != nil {
			t.Fatalf("%s: %v", formula, err)
		}
		lvs = append(lvs, lv)
	}
	lv := MergeLevels(lvs...)
	coefs, err := Coefficients(f, lv, tables[0])
	if err != nil {
		t.Fatal(err)
	}
	var sum []float64
	for _, tb := range tables {
		part, err := NodeLM(tb, f, lv, testPolicy)
		if err != nil {
			t.Fatalf("%s: %v", formula, err)
		}
		v := part.Vector()
		if sum == nil {
			sum = make([]float64, len(v))
		}
		for i := range v {
			sum[i] += v[i]
		}
	}
	sp, err := LMPartFromVector(len(coefs), sum)
	if err != nil {
		t.Fatal(err)
	}
	fit, err := FitLM(coefs, sp)
	if err != nil {
		t.Fatalf("%s: %v", formula, err)
	}
	return fit
}

// tableGLM fits a logistic model over tables with the exported API.
func tableGLM(t *testing.T, tables []*table.Table, formula string) *Fit {
	t.Helper()
	f, err := ParseFormula(formula)
	if err != nil {
		t.Fatal(err)
	}
	var lvs []Levels
	for _, tb := range tables {
		lv, err := NodeLevels(tb, f, testPolicy)
		if err != nil {
			t.Fatal(err)
		}
		lvs = append(lvs, lv)
	}
	lv := MergeLevels(lvs...)
	coefs, err := Coefficients(f, lv, tables[0])
	if err != nil {
		t.Fatal(err)
	}
	eval := func(ctx context.Context, iter int, beta []float64) (*GLMPart, error) {
		var sum []float64
		for _, tb := range tables {
			part, err := NodeGLM(tb, f, lv, "binomial", beta, testPolicy)
			if err != nil {
				return nil, err
			}
			v := part.Vector()
			if sum == nil {
				sum = make([]float64, len(v))
			}
			for i := range v {
				sum[i] += v[i]
			}
		}
		return GLMPartFromVector(len(coefs), sum)
	}
	fit, err := FitGLM(context.Background(), coefs, "binomial", eval, 25)
	if err != nil {
		t.Fatalf("%s: %v", formula, err)
	}
	return fit
}
