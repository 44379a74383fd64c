package stats

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/mosaic-imaging/mosaic/internal/table"
)

// triLen is the length of a P×P symmetric matrix's upper triangle.
func triLen(p int) int { return p * (p + 1) / 2 }

func packTri(dst []float64, a []float64, p int) {
	k := 0
	for i := 0; i < p; i++ {
		for j := i; j < p; j++ {
			dst[k] = a[i*p+j]
			k++
		}
	}
}

func unpackTri(v []float64, p int) []float64 {
	a := make([]float64, p*p)
	k := 0
	for i := 0; i < p; i++ {
		for j := i; j < p; j++ {
			a[i*p+j] = v[k]
			a[j*p+i] = v[k]
			k++
		}
	}
	return a
}

// Vector flattens the part for secure aggregation: N, yᵀy, Xᵀy, then
// the upper triangle of XᵀX by rows. LMPartFromVector reads a sum back.
func (p *LMPart) Vector() []float64 {
	if p == nil || len(p.Xty) != p.P || len(p.XtX) != p.P*p.P {
		return nil
	}
	v := make([]float64, 2+p.P+triLen(p.P))
	v[0], v[1] = p.N, p.Yty
	copy(v[2:], p.Xty)
	packTri(v[2+p.P:], p.XtX, p.P)
	return v
}

// LMPartFromVector reads a vector made by Vector (or a sum of them).
func LMPartFromVector(P int, v []float64) (*LMPart, error) {
	if P < 1 || P > MaxCoefficients {
		return nil, fmt.Errorf("stats: %d coefficients out of range", P)
	}
	if len(v) != 2+P+triLen(P) {
		return nil, fmt.Errorf("stats: a linear model part of %d values, want %d", len(v), 2+P+triLen(P))
	}
	if !finite(v) {
		return nil, fmt.Errorf("stats: a linear model part holds values that are not finite numbers")
	}
	return &LMPart{
		P:   P,
		N:   v[0],
		Yty: v[1],
		Xty: append([]float64(nil), v[2:2+P]...),
		XtX: unpackTri(v[2+P:], P),
	}, nil
}

// NodeLM computes a node's part of a linear model after its checks:
// refused under the floor, when parameters exceed MaxParamFraction of
// its rows, or when a binary or categorical term has a level under the
// floor.
func NodeLM(t *table.Table, f *Formula, lv Levels, pol Policy) (*LMPart, error) {
	s, err := src(t)
	if err != nil {
		return nil, err
	}
	return nodeLM(s, f, lv, pol)
}

func nodeLM(s source, f *Formula, lv Levels, pol Policy) (*LMPart, error) {
	pl, err := newPlan(s, f, lv, true, false)
	if err != nil {
		return nil, err
	}
	used, err := pl.complete(s.Rows())
	if err != nil {
		return nil, err
	}
	if err := pl.check(used, pol, false); err != nil {
		return nil, err
	}
	P := pl.P
	type acc struct {
		xtx, xty []float64
		yty      float64
	}
	y := pl.resp.num
	parts := parallel(used, P, func(rows []int) any {
		a := acc{xtx: make([]float64, P*P), xty: make([]float64, P)}
		cols := make([]int, len(pl.terms)+1)
		vals := make([]float64, len(pl.terms)+1)
		lev := make([]int32, len(pl.vars))
		xtx, xty := a.xtx, a.xty
		for _, i := range rows {
			n := pl.row(i, lev, cols, vals)
			yi := y[i]
			a.yty += yi * yi
			for a := 0; a < n; a++ {
				ca, va := cols[a], vals[a]
				xty[ca] += va * yi
				row := xtx[ca*P : ca*P+P]
				for b := a; b < n; b++ {
					row[cols[b]] += va * vals[b]
				}
			}
		}
		return a
	})
	first := parts[0].(acc)
	xtx, xty, yty := first.xtx, first.xty, first.yty
	for _, p := range parts[1:] {
		a := p.(acc)
		for i, v := range a.xtx {
			xtx[i] += v
		}
		for i, v := range a.xty {
			xty[i] += v
		}
		yty += a.yty
	}
	symmetrize(xtx, P)
	return &LMPart{P: P, XtX: xtx, Xty: xty, Yty: yty, N: float64(len(used)), Used: used}, nil
}

// symmetrize folds entries written on either side of the diagonal
// (cols within a row are not ordered) into a symmetric matrix.
func symmetrize(a []float64, p int) {
	for i := 0; i < p; i++ {
		for j := i + 1; j < p; j++ {
			v := a[i*p+j] + a[j*p+i]
			a[i*p+j], a[j*p+i] = v, v
		}
	}
}

// FitLM fits a linear model from the sum of the nodes' parts.
func FitLM(coefs []string, sum *LMPart) (*Fit, error) {
	if sum == nil {
		return nil, fmt.Errorf("stats: no parts to fit")
	}
	P := sum.P
	if P < 1 || len(coefs) != P || len(sum.Xty) != P || len(sum.XtX) != P*P {
		return nil, fmt.Errorf("stats: a part of %d coefficients for %d names", P, len(coefs))
	}
	if math.IsNaN(sum.N) || sum.N != math.Trunc(sum.N) || sum.N < 1 || sum.N > 1e12 {
		return nil, fmt.Errorf("stats: the summed row count is not a count")
	}
	n := int(sum.N)
	df := n - P
	if df < 1 {
		return nil, fmt.Errorf("stats: %d rows for %d coefficients leave no residual degrees of freedom", n, P)
	}
	inv, aliased, err := invertSPD(sum.XtX, P)
	if err != nil {
		return nil, err
	}
	if aliased != nil {
		return nil, aliasedErr(coefs, aliased)
	}
	beta := matVec(inv, sum.Xty, P)
	// RSS = yᵀy − βᵀXᵀy.
	rss := sum.Yty
	for i := 0; i < P; i++ {
		rss -= beta[i] * sum.Xty[i]
	}
	if rss < 0 {
		rss = 0
	}
	sigma2 := rss / float64(df)
	fit := &Fit{
		Family: "gaussian",
		Sigma:  math.Sqrt(sigma2),
		DF:     df,
		N:      n,
	}
	for i := 0; i < P; i++ {
		se := math.Sqrt(sigma2 * inv[i*P+i])
		t := beta[i] / se
		fit.Coefficients = append(fit.Coefficients, Coef{
			Term: coefs[i], Estimate: beta[i], StdError: se, Statistic: t, PValue: pTwoSided(t, float64(df)),
		})
	}
	icpt := 0
	if coefs[0] == "(Intercept)" {
		icpt = 1
	}
	var tss float64
	if icpt == 1 {
		// The intercept's column is all ones: Xᵀy[0] = Σy.
		tss = sum.Yty - sum.Xty[0]*sum.Xty[0]/sum.N
	} else {
		tss = sum.Yty
	}
	if tss > 0 {
		fit.RSquared = 1 - rss/tss
		fit.AdjRSquared = 1 - (1-fit.RSquared)*float64(n-icpt)/float64(df)
		if d1 := P - icpt; d1 > 0 {
			fit.FStatistic = ((tss - rss) / float64(d1)) / sigma2
			fit.FPValue = pFUpper(fit.FStatistic, float64(d1), float64(df))
		}
	}
	return fit, nil
}

// parallel runs fn over contiguous chunks of rows on up to GOMAXPROCS
// goroutines (at most 8, and only for large inputs or small models) and
// returns the chunks' results in order, so sums are the same on every
// run with the same number of processors.
func parallel(rows []int, p int, fn func(rows []int) any) []any {
	w := runtime.GOMAXPROCS(0)
	if w > 8 {
		w = 8
	}
	if len(rows) < 50000 || p > 200 {
		w = 1
	}
	if w < 1 {
		w = 1
	}
	out := make([]any, w)
	var wg sync.WaitGroup
	for k := 0; k < w; k++ {
		lo, hi := k*len(rows)/w, (k+1)*len(rows)/w
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[k] = fn(rows[lo:hi])
		}()
	}
	wg.Wait()
	return out
}
