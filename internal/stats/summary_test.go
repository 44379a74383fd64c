package stats

import (
	"math"
	"os"
	"os/exec"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/fed"
)

// TestSummaryEqualsR pools three nodes' summaries and compares them
// with R's mean, var and sd over the pooled complete rows.
func TestSummaryEqualsR(t *testing.T) {
	rs := needTool(t, "Rscript")
	m := cohort(800, 5)
	dir := t.TempDir()
	csv := m.writeCSV(t, dir)
	script := `d <- read.csv(commandArgs(TRUE)[1]); d <- na.omit(d[, c("age", "bmi", "y")])
for (v in c("age", "bmi", "y")) { cat(v, "\tcoef\tmean\t", sprintf("%.17g", mean(d[[v]])), "\t", sprintf("%.17g", var(d[[v]])), "\t", sprintf("%.17g", sd(d[[v]])), "\t", nrow(d), "\n", sep = "") }
e <- read.csv(commandArgs(TRUE)[1]); tab <- table(e$sex, e$stage)
for (s in rownames(tab)) for (g in colnames(tab)) cat("cell\t", s, g, "\t", tab[s, g], "\n", sep = "")
`
	if err := os.WriteFile(dir+"/s.R", []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(rs, "--vanilla", dir+"/s.R", csv)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("Rscript: %v\n%s", err, out)
	}
	ref := parseRef(t, out)
	vars := []string{"age", "bmi", "y"}
	var sum []float64
	for _, p := range nodes(m) {
		part, err := nodeSummary(p, vars, testPolicy)
		if err != nil {
			t.Fatal(err)
		}
		v := part.Vector()
		if sum == nil {
			sum = make([]float64, len(v))
		}
		for i := range v {
			sum[i] += v[i]
		}
	}
	sp, err := SummaryPartFromVector(vars, sum)
	if err != nil {
		t.Fatal(err)
	}
	pooled, err := PoolSummary(sp)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range pooled {
		r := ref[s.Var]
		if r == nil {
			t.Fatalf("no reference for %s", s.Var)
		}
		w := r.coefs["mean"]
		if !relClose(s.Mean, w[0], 1e-12) || !relClose(s.Variance, w[1], 1e-10) || !relClose(s.SD, w[2], 1e-10) || float64(s.N) != w[3] {
			t.Errorf("%s: %+v, R %v", s.Var, s, w)
		}
	}
	// Contingency of sex by stage over the nodes, against R's table().
	var lvs []Levels
	for _, p := range nodes(m) {
		l, err := contingencyLevels(p, []string{"sex", "stage"}, testPolicy)
		if err != nil {
			t.Fatal(err)
		}
		lvs = append(lvs, l)
	}
	lv := MergeLevels(lvs...)
	counts := make([]float64, 6)
	for _, p := range nodes(m) {
		cp, err := contingency(p, []string{"sex", "stage"}, lv, testPolicy)
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range cp.Counts {
			counts[i] += c
		}
	}
	cells := ref["cell"]
	if cells == nil || len(cells.values) != 6 {
		t.Fatalf("R's table: %s", out)
	}
	for j, g := range lv["stage"] {
		for i, sx := range lv["sex"] {
			if got, want := counts[i+2*j], cells.values[sx+g]; got != want {
				t.Errorf("cell %s,%s = %v, R %v", sx, g, got, want)
			}
		}
	}
}

func TestQuantileRule(t *testing.T) {
	n := 100
	x := make([]float64, n)
	for i := range x {
		x[i] = float64((i * 37) % n) // a permutation of 0..99
	}
	m := newMem(n).num("x", x)
	p, err := nodeQuantiles(m, "x", []float64{0.25, 0.5, 0.75}, Policy{Floor: 10})
	if err != nil {
		t.Fatal(err)
	}
	// Blocks of 10 sorted values: the median's position 49 is in block 4
	// (40..49), mean 44.5; 0.25 → position 24, block 2, mean 24.5.
	want := []float64{24.5, 44.5, 74.5}
	for i, v := range p.Values {
		if v != want[i] {
			t.Errorf("quantile %v = %v, want %v", p.Probs[i], v, want[i])
		}
	}
	// Never the minimum or maximum.
	for _, pr := range []float64{0.01, 0.05, 0.95, 0.999} {
		if _, err := nodeQuantiles(m, "x", []float64{pr}, Policy{Floor: 10}); refusalCode(err) != fed.RefusedFloor {
			t.Errorf("probability %v: %v", pr, err)
		}
	}
	for _, pr := range []float64{0, 1, -1, math.NaN()} {
		if _, err := nodeQuantiles(m, "x", []float64{pr}, Policy{Floor: 10}); err == nil {
			t.Errorf("probability %v accepted", pr)
		}
	}
	if _, err := nodeQuantiles(m, "x", []float64{0.5}, Policy{Floor: 40}); refusalCode(err) != fed.RefusedFloor {
		t.Errorf("100 rows with a floor of 40: %v", err)
	}
	// Every answer is the mean of at least Floor rows: the answers for all
	// probabilities take only a few distinct values.
	seen := map[float64]bool{}
	for pr := 0.1; pr < 0.9; pr += 0.001 {
		q, err := nodeQuantiles(m, "x", []float64{pr}, Policy{Floor: 10})
		if err == nil {
			seen[q.Values[0]] = true
		}
	}
	if len(seen) > n/10 {
		t.Errorf("%d distinct answers from %d rows with a floor of 10", len(seen), n)
	}
	pool, err := PoolQuantiles([]*QuantilePart{p, p})
	if err != nil || pool.Values[1] != 44.5 || pool.N != 200 {
		t.Errorf("pooled %+v %v", pool, err)
	}
}

func TestContingencyCells(t *testing.T) {
	a := make([]string, 40)
	b := make([]string, 40)
	for i := range a {
		a[i] = []string{"x", "y"}[i%2]
		b[i] = []string{"p", "q"}[(i/2)%2]
	}
	m := newMem(40).cat("a", a).cat("b", b)
	lv := Levels{"a": {"x", "y", "z"}, "b": {"p", "q"}}
	cp, err := contingency(m, []string{"a", "b"}, lv, Policy{Floor: 10})
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{10, 10, 0, 10, 10, 0}
	for i := range want {
		if cp.Counts[i] != want[i] {
			t.Fatalf("counts %v, want %v", cp.Counts, want)
		}
	}
	sup, n := SuppressCells(cp.Counts, 10)
	if n != 2 || !math.IsNaN(sup[2]) || sup[0] != 10 {
		t.Errorf("suppressed %v (%d)", sup, n)
	}
	// One cell of 9 rows: refused.
	if _, err := contingency(m, []string{"a", "b"}, lv, Policy{Floor: 11}); refusalCode(err) != fed.RefusedLevel {
		t.Errorf("small cell: %v", err)
	}
	if _, err := contingency(m, []string{"a", "a"}, lv, Policy{Floor: 1}); err == nil {
		t.Error("same column twice accepted")
	}
}
