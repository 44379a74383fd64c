package stats

import (
	"fmt"
	"math"
	"strings"
)

// AliasedError is a singular design: the named coefficients are linear
// combinations of earlier ones (R would print NA for them).
type AliasedError struct {
	Terms []string
}

func (e *AliasedError) Error() string {
	return "stats: the design is singular: " + strings.Join(e.Terms, ", ") +
		" aliased (a linear combination of earlier coefficients, or a level no node has); remove the term"
}

// aliasTol is the relative size under which a column's remainder, after
// the earlier columns, counts as zero (on the squared scale of XᵀX).
const aliasTol = 1e-10

// invertSPD inverts the symmetric positive definite P×P matrix a
// (row-major) by a Cholesky factorisation after scaling it to unit
// diagonal. Columns whose remainder is negligible are reported as
// aliased by their index.
func invertSPD(a []float64, p int) ([]float64, []int, error) {
	if len(a) != p*p {
		return nil, nil, fmt.Errorf("stats: matrix of %d values for %d×%d", len(a), p, p)
	}
	d := make([]float64, p)
	var aliased []int
	for i := 0; i < p; i++ {
		v := a[i*p+i]
		if !(v > 0) || math.IsInf(v, 0) {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, nil, fmt.Errorf("stats: the summed matrix is not finite")
			}
			d[i] = 0
			continue
		}
		d[i] = 1 / math.Sqrt(v)
	}
	// Scaled copy.
	s := make([]float64, p*p)
	for i := 0; i < p; i++ {
		for j := 0; j < p; j++ {
			s[i*p+j] = a[i*p+j] * d[i] * d[j]
		}
	}
	l := make([]float64, p*p)
	ok := make([]bool, p)
	for j := 0; j < p; j++ {
		if d[j] == 0 {
			aliased = append(aliased, j)
			continue
		}
		sum := s[j*p+j]
		for k := 0; k < j; k++ {
			if ok[k] {
				sum -= l[j*p+k] * l[j*p+k]
			}
		}
		if sum <= aliasTol {
			aliased = append(aliased, j)
			continue
		}
		ok[j] = true
		ljj := math.Sqrt(sum)
		l[j*p+j] = ljj
		for i := j + 1; i < p; i++ {
			v := s[i*p+j]
			for k := 0; k < j; k++ {
				if ok[k] {
					v -= l[i*p+k] * l[j*p+k]
				}
			}
			l[i*p+j] = v / ljj
		}
	}
	if len(aliased) > 0 {
		return nil, aliased, nil
	}
	// Inverse of L (lower triangular), then (L⁻¹)ᵀ L⁻¹.
	li := make([]float64, p*p)
	for j := 0; j < p; j++ {
		li[j*p+j] = 1 / l[j*p+j]
		for i := j + 1; i < p; i++ {
			v := 0.0
			for k := j; k < i; k++ {
				v -= l[i*p+k] * li[k*p+j]
			}
			li[i*p+j] = v / l[i*p+i]
		}
	}
	inv := make([]float64, p*p)
	for i := 0; i < p; i++ {
		for j := 0; j <= i; j++ {
			v := 0.0
			for k := i; k < p; k++ {
				v += li[k*p+i] * li[k*p+j]
			}
			v *= d[i] * d[j]
			inv[i*p+j] = v
			inv[j*p+i] = v
		}
	}
	return inv, nil, nil
}

func matVec(a []float64, x []float64, p int) []float64 {
	out := make([]float64, p)
	for i := 0; i < p; i++ {
		v := 0.0
		for j := 0; j < p; j++ {
			v += a[i*p+j] * x[j]
		}
		out[i] = v
	}
	return out
}

func aliasedErr(coefs []string, idx []int) error {
	e := &AliasedError{}
	for _, i := range idx {
		if i < len(coefs) {
			e.Terms = append(e.Terms, coefs[i])
		}
	}
	return e
}

// finite reports whether every value is a finite number.
func finite(v []float64) bool {
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}
