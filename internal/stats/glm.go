package stats

import (
	"context"
	"fmt"
	"math"

	"github.com/mosaic-imaging/mosaic/internal/table"
)

// Vector flattens the part for secure aggregation: N, deviance, the
// gradient, then the upper triangle of the Hessian by rows.
func (p *GLMPart) Vector() []float64 {
	if p == nil || len(p.Grad) != p.P || len(p.Hess) != p.P*p.P {
		return nil
	}
	v := make([]float64, 2+p.P+triLen(p.P))
	v[0], v[1] = p.N, p.Deviance
	copy(v[2:], p.Grad)
	packTri(v[2+p.P:], p.Hess, p.P)
	return v
}

// GLMPartFromVector reads a vector made by Vector (or a sum of them).
func GLMPartFromVector(P int, v []float64) (*GLMPart, error) {
	if P < 1 || P > MaxCoefficients {
		return nil, fmt.Errorf("stats: %d coefficients out of range", P)
	}
	if len(v) != 2+P+triLen(P) {
		return nil, fmt.Errorf("stats: a logistic model part of %d values, want %d", len(v), 2+P+triLen(P))
	}
	if !finite(v) {
		return nil, fmt.Errorf("stats: a logistic model part holds values that are not finite numbers")
	}
	return &GLMPart{
		P:        P,
		N:        v[0],
		Deviance: v[1],
		Grad:     append([]float64(nil), v[2:2+P]...),
		Hess:     unpackTri(v[2+P:], P),
	}, nil
}

// NodeGLM computes a node's part of one Newton step at beta, with the
// checks of NodeLM. Family is "binomial" (logit link). The response is
// a numeric column of 0 and 1, or a categorical column of two levels
// (the first is 0, as in R).
func NodeGLM(t *table.Table, f *Formula, lv Levels, family string, beta []float64, pol Policy) (*GLMPart, error) {
	s, err := src(t)
	if err != nil {
		return nil, err
	}
	return nodeGLM(s, f, lv, family, beta, pol)
}

// logit's inverse, bounded as R's binomial family bounds it.
func invLogit(eta float64) float64 {
	const thresh = 30
	switch {
	case eta < -thresh:
		return math.SmallestNonzeroFloat64 + 2.220446049250313e-16
	case eta > thresh:
		return 1 - 2.220446049250313e-16
	}
	return 1 / (1 + math.Exp(-eta))
}

func nodeGLM(s source, f *Formula, lv Levels, family string, beta []float64, pol Policy) (*GLMPart, error) {
	if family != "binomial" {
		return nil, fmt.Errorf("stats: family %q is not supported (only binomial)", family)
	}
	pl, err := newPlan(s, f, lv, true, true)
	if err != nil {
		return nil, err
	}
	P := pl.P
	if len(beta) != P {
		return nil, fmt.Errorf("stats: %d coefficients given for a model of %d", len(beta), P)
	}
	for _, b := range beta {
		if math.IsNaN(b) || math.IsInf(b, 0) {
			return nil, fmt.Errorf("stats: coefficients are not finite")
		}
	}
	used, err := pl.complete(s.Rows())
	if err != nil {
		return nil, err
	}
	y := make([]float64, s.Rows())
	if pl.resp.factor {
		if len(pl.resp.levels) != 2 {
			return nil, fmt.Errorf("stats: a categorical response needs exactly two agreed levels")
		}
		for _, i := range used {
			y[i] = float64(pl.resp.level(i))
		}
	} else {
		for _, i := range used {
			v := pl.resp.num[i]
			if v != 0 && v != 1 {
				return nil, fmt.Errorf("stats: the response %q of a binomial model must be 0 or 1", f.Response)
			}
			y[i] = v
		}
	}
	if err := pl.check(used, pol, true); err != nil {
		return nil, err
	}
	type acc struct {
		grad, hess []float64
		dev        float64
	}
	parts := parallel(used, P, func(rows []int) any {
		a := acc{grad: make([]float64, P), hess: make([]float64, P*P)}
		grad, hess := a.grad, a.hess
		cols := make([]int, len(pl.terms)+1)
		vals := make([]float64, len(pl.terms)+1)
		lev := make([]int32, len(pl.vars))
		for _, i := range rows {
			n := pl.row(i, lev, cols, vals)
			eta := 0.0
			for k := 0; k < n; k++ {
				eta += vals[k] * beta[cols[k]]
			}
			mu := invLogit(eta)
			yi := y[i]
			if yi == 1 {
				a.dev -= 2 * math.Log(mu)
			} else {
				a.dev -= 2 * math.Log(1-mu)
			}
			w := mu * (1 - mu)
			r := yi - mu
			for k := 0; k < n; k++ {
				ca, va := cols[k], vals[k]
				grad[ca] += va * r
				wa := w * va
				row := hess[ca*P : ca*P+P]
				for b := k; b < n; b++ {
					row[cols[b]] += wa * vals[b]
				}
			}
		}
		return a
	})
	first := parts[0].(acc)
	grad, hess, dev := first.grad, first.hess, first.dev
	for _, p := range parts[1:] {
		a := p.(acc)
		for i, v := range a.hess {
			hess[i] += v
		}
		for i, v := range a.grad {
			grad[i] += v
		}
		dev += a.dev
	}
	symmetrize(hess, P)
	return &GLMPart{P: P, Grad: grad, Hess: hess, Deviance: dev, N: float64(len(used)), Used: used}, nil
}

// glmEpsilon is R's glm.control() default.
const glmEpsilon = 1e-8

// FitGLM runs Newton-Raphson from zero, asking eval for each step's
// summed parts, until the deviance changes by less than R's glm default
// (1e-8 relative) or maxIter steps.
//
// The iterates are R's: its start (mu = (y + 1/2)/2) gives a first
// iterate that is the Newton step from zero scaled by (log 3 + 4/3)/2,
// so one evaluation at zero yields it; later steps are Newton's, which
// for the logit link are R's iteratively reweighted least squares. As
// in R, standard errors come from the information matrix of the last
// step's weights.
func FitGLM(ctx context.Context, coefs []string, family string, eval GLMEval, maxIter int) (*Fit, error) {
	if family != "binomial" {
		return nil, fmt.Errorf("stats: family %q is not supported (only binomial)", family)
	}
	P := len(coefs)
	if P < 1 || P > MaxCoefficients {
		return nil, fmt.Errorf("stats: %d coefficients out of range", P)
	}
	if eval == nil {
		return nil, fmt.Errorf("stats: no evaluation function")
	}
	if maxIter <= 0 {
		maxIter = 25
	}
	get := func(iter int, beta []float64) (*GLMPart, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p, err := eval(ctx, iter, beta)
		if err != nil {
			return nil, err
		}
		if p == nil || p.P != P || len(p.Grad) != P || len(p.Hess) != P*P {
			return nil, fmt.Errorf("stats: step %d: a part of the wrong shape", iter)
		}
		if !finite([]float64{p.Deviance, p.N}) || !finite(p.Grad) || !finite(p.Hess) {
			return nil, fmt.Errorf("stats: step %d: the summed part is not finite", iter)
		}
		return p, nil
	}
	step := func(p *GLMPart) ([]float64, []float64, error) {
		inv, aliased, err := invertSPD(p.Hess, P)
		if err != nil {
			return nil, nil, err
		}
		if aliased != nil {
			return nil, nil, aliasedErr(coefs, aliased)
		}
		return matVec(inv, p.Grad, P), inv, nil
	}
	beta := make([]float64, P)
	p0, err := get(0, beta)
	if err != nil {
		return nil, err
	}
	N := p0.N
	if math.IsNaN(N) || N != math.Trunc(N) || N < 1 || N > 1e12 {
		return nil, fmt.Errorf("stats: the summed row count is not a count")
	}
	n := int(N)
	if n <= P {
		return nil, fmt.Errorf("stats: %d rows for %d coefficients leave no residual degrees of freedom", n, P)
	}
	d0, inv0, err := step(p0)
	if err != nil {
		return nil, err
	}
	c := (math.Log(3) + 4.0/3) / 2
	for i := range beta {
		beta[i] = c * d0[i]
	}
	// R's weights at its start are 3/16 against 1/4 at zero.
	cov := make([]float64, P*P)
	for i := range cov {
		cov[i] = inv0[i] / 0.75
	}
	devOld := -2 * N * math.Log(0.75)
	fit := &Fit{Family: family, N: n, DF: n - P}
	var last *GLMPart
	for iter := 1; iter <= maxIter; iter++ {
		p, err := get(iter, beta)
		if err != nil {
			return nil, err
		}
		if p.N != N {
			return nil, fmt.Errorf("stats: step %d used %v rows, the first %v", iter, p.N, N)
		}
		last = p
		fit.Iterations = iter
		if math.Abs(p.Deviance-devOld)/(math.Abs(p.Deviance)+0.1) < glmEpsilon {
			fit.Converged = true
			break
		}
		devOld = p.Deviance
		d, inv, err := step(p)
		if err != nil {
			return nil, err
		}
		cov = inv
		for i := range beta {
			beta[i] += d[i]
		}
	}
	// Without convergence, as R: the last coefficients; Converged says so.
	fit.Deviance = last.Deviance
	for i := 0; i < P; i++ {
		se := math.Sqrt(cov[i*P+i])
		z := beta[i] / se
		fit.Coefficients = append(fit.Coefficients, Coef{
			Term: coefs[i], Estimate: beta[i], StdError: se, Statistic: z, PValue: pNormTwoSided(z),
		})
	}
	if coefs[0] == "(Intercept)" {
		// At zero the gradient's intercept entry is Σ(y − 1/2).
		sy := p0.Grad[0] + N/2
		ybar := sy / N
		var nd float64
		if sy > 0 {
			nd -= 2 * sy * math.Log(ybar)
		}
		if N-sy > 0 {
			nd -= 2 * (N - sy) * math.Log(1-ybar)
		}
		fit.NullDeviance = nd
		fit.NullDF = n - 1
	} else {
		fit.NullDeviance = 2 * N * math.Log(2)
		fit.NullDF = n
	}
	fit.AIC = fit.Deviance + 2*float64(P)
	return fit, nil
}
