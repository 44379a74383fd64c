// Package stats is federated statistics that equal a pooled analysis
// without any row leaving a node: formulas in R's notation, design
// matrices with treatment contrasts, the per-node parts of summaries,
// contingency tables, linear regression (XᵀX, Xᵀy, yᵀy, n) and logistic
// regression (gradient and Hessian per Newton step), the hub's
// combination of their sums into R-like fits, and the node's checks
// (floor, saturation, small category levels) that refuse a part before
// it leaves.
package stats

import (
	"context"
	"errors"
)

// ErrNotImplemented marks the contract's stubs.
var ErrNotImplemented = errors.New("stats: not implemented")

// Refusal is a node's refusal of a part: Code is one of fed's Refused*
// codes, Reason says why in words and never carries data.
type Refusal struct {
	Code   string
	Reason string
}

func (r *Refusal) Error() string { return "stats: refused (" + r.Code + "): " + r.Reason }

// Policy is what a node enforces on every part it lets out.
type Policy struct {
	// Floor is the node's disclosure floor k (rows, and rows per level
	// of a categorical or binary term).
	Floor int
	// MaxParamFraction refuses a model whose parameters reach this
	// fraction of the node's rows (default 1/3; p ≥ n/3 is refused).
	MaxParamFraction float64
}

// Formula is a parsed model formula: y ~ a + b + factor(c) + a:b.
type Formula struct {
	Response string
	// Terms in the order written; "1" absent means an intercept, "- 1"
	// or "+ 0" removes it.
	Terms     []Term
	Intercept bool
}

// Term is one term: a single variable, factor(variable), or an
// interaction of variables joined by ':'.
type Term struct {
	Vars   []string
	Factor []bool // per var: wrapped in factor()
}

// Levels are the levels of each categorical variable of a model, agreed
// across nodes (the hub takes the sorted union of the nodes' levels).
type Levels map[string][]string

// LMPart is one node's part of a linear model. Used lists the rows it
// used (complete cases), for the node's overlap control; it never
// leaves the node.
type LMPart struct {
	P    int       // number of coefficients
	XtX  []float64 // P×P, row-major
	Xty  []float64
	Yty  float64
	N    float64
	Used []int `json:"-"`
}

// Coef is one row of a fit's coefficient table.
type Coef struct {
	Term      string  `json:"term"`
	Estimate  float64 `json:"estimate"`
	StdError  float64 `json:"std_error"`
	Statistic float64 `json:"statistic"` // t for lm, z for glm
	PValue    float64 `json:"p_value"`
}

// Fit is a fitted model, shaped like R's summary().
type Fit struct {
	Formula      string         `json:"formula"`
	Family       string         `json:"family"` // "gaussian" for lm, "binomial"
	Coefficients []Coef         `json:"coefficients"`
	Sigma        float64        `json:"sigma,omitempty"` // residual standard error (lm)
	DF           int            `json:"df"`              // residual degrees of freedom
	RSquared     float64        `json:"r_squared,omitempty"`
	AdjRSquared  float64        `json:"adj_r_squared,omitempty"`
	FStatistic   float64        `json:"f_statistic,omitempty"`
	Deviance     float64        `json:"deviance,omitempty"`
	NullDeviance float64        `json:"null_deviance,omitempty"`
	AIC          float64        `json:"aic,omitempty"`
	Iterations   int            `json:"iterations,omitempty"`
	N            int            `json:"n"`
	RowsPerNode  map[string]int `json:"rows_per_node"`
	// FPValue is the p value of the F statistic (lm).
	FPValue float64 `json:"f_p_value,omitempty"`
	// NullDF is the null model's residual degrees of freedom (glm).
	NullDF int `json:"null_df,omitempty"`
	// Converged is false when a glm stopped at its iteration limit.
	Converged bool `json:"converged,omitempty"`
}

// GLMPart is one node's part of a Newton-Raphson step of a logistic
// regression at beta: the gradient and Hessian of the log-likelihood,
// the deviance, and the rows used.
type GLMPart struct {
	P        int
	Grad     []float64
	Hess     []float64 // P×P, row-major (XᵀWX)
	Deviance float64
	N        float64
	Used     []int `json:"-"`
}

// GLMEval returns the summed parts at beta (one federated step).
type GLMEval func(ctx context.Context, iter int, beta []float64) (*GLMPart, error)
