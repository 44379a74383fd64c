package stats

import (
	"context"
	"math/rand/v2"
	"strconv"
	"syscall"
	"testing"
)

// benchTable has n rows of 19 numeric columns, a three-level
// categorical one and a 0/1 response.
func benchTable(n int) (*memTable, string) {
	r := rand.New(rand.NewPCG(9, 9))
	m := newMem(n)
	formula := "y ~ g"
	y := make([]float64, n)
	b := make([]float64, n)
	for j := 0; j < 18; j++ {
		x := make([]float64, n)
		for i := range x {
			x[i] = r.NormFloat64()
			y[i] += 0.1 * float64(j%5) * x[i]
		}
		name := "x" + strconv.Itoa(j)
		m.num(name, x)
		formula += " + " + name
	}
	g := make([]string, n)
	for i := range y {
		y[i] += r.NormFloat64()
		g[i] = []string{"a", "b", "c"}[r.IntN(3)]
		if r.Float64() < 0.4 {
			b[i] = 1
		}
	}
	m.num("y", y).num("b", b).cat("g", g)
	return m, formula
}

// BenchmarkNodeLM is one node's part of a linear model of 20
// coefficients over a million rows.
func BenchmarkNodeLM(b *testing.B) {
	m, formula := benchTable(1_000_000)
	f := mustParse(b, formula)
	lv := Levels{"g": {"a", "b", "c"}}
	b.SetBytes(int64(m.n) * 20 * 8)
	b.ReportAllocs()
	start, ops := cpuTime(), 0
	for b.Loop() {
		ops++
		if _, err := nodeLM(m, f, lv, Policy{Floor: 10}); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, start, ops)
}

// BenchmarkNodeGLM is one node's part of one Newton step of a logistic
// model of 20 coefficients over a million rows.
func BenchmarkNodeGLM(b *testing.B) {
	m, formula := benchTable(1_000_000)
	formula = "b" + formula[1:]
	f := mustParse(b, formula)
	lv := Levels{"g": {"a", "b", "c"}}
	beta := make([]float64, 21)
	for i := range beta {
		beta[i] = 0.01 * float64(i)
	}
	b.SetBytes(int64(m.n) * 20 * 8)
	b.ReportAllocs()
	start, ops := cpuTime(), 0
	for b.Loop() {
		ops++
		if _, err := nodeGLM(m, f, lv, "binomial", beta, Policy{Floor: 10}); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, start, ops)
}

// BenchmarkFitLM is the hub's fit from summed parts of 21 coefficients.
func BenchmarkFitLM(b *testing.B) {
	m, formula := benchTable(5000)
	f := mustParse(b, formula)
	lv := Levels{"g": {"a", "b", "c"}}
	part, err := nodeLM(m, f, lv, Policy{Floor: 10})
	if err != nil {
		b.Fatal(err)
	}
	coefs, _ := coefficients(m, f, lv)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := FitLM(coefs, part); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFitGLM is the hub's side of a logistic fit (the steps'
// evaluations precomputed at 5000 rows).
func BenchmarkFitGLM(b *testing.B) {
	m, formula := benchTable(5000)
	formula = "b" + formula[1:]
	f := mustParse(b, formula)
	lv := Levels{"g": {"a", "b", "c"}}
	coefs, _ := coefficients(m, f, lv)
	eval := func(ctx context.Context, iter int, beta []float64) (*GLMPart, error) {
		return nodeGLM(m, f, lv, "binomial", beta, Policy{Floor: 10})
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := FitGLM(context.Background(), coefs, "binomial", eval, 25); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuTime is the process's user and system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// reportCPU adds CPU time per operation to a benchmark, which a busy
// machine inflates less than wall time.
func reportCPU(b *testing.B, start int64, ops int) {
	if ops > 0 {
		b.ReportMetric(float64(cpuTime()-start)/float64(ops), "cpu-ns/op")
	}
}
