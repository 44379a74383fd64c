// Package disclosure is the disclosure control a node applies to the
// counts of a federated search before anything leaves it: a floor below
// which a count is reported exactly as no match, rounding, and optional
// Laplace noise that is the same every time the same query is asked.
//
// Order of operations in Count, and why:
//
//  1. A true count below the floor is reported as 0, the same answer as
//     "nothing matches", so a small group can neither be seen nor be told
//     apart from an empty one.
//  2. Noise, if enabled, is Laplace with scale Noise, drawn from a keyed
//     pseudo-random function of the canonical query and a label: asking
//     the same question again returns the same answer, so repeating it
//     cannot average the noise away. Without the node's key nobody can
//     predict or subtract the noise.
//  3. The result is rounded to the nearest multiple of Round.
//  4. If noise or rounding brought it below the floor, 0 again: no value
//     from 1 to Floor-1 is ever output.
//
// The label separates the counts of one query: the subjects, the studies,
// each gender, each modality of the same query are different numbers and
// must get independent noise. With one draw per query, the noise added to
// "subjects" and to "female subjects" would be the same number, so their
// difference (the exact count of the other genders) would come out without
// any noise at all.
//
// The noise is sticky to the query, not to the data: when the data change
// by one patient, the answer to the same query moves by that one patient
// before rounding. Rounding, the floor and the hub's per-user query
// budgets are what limit differencing over time; rotating the key draws
// fresh noise for every query.
package disclosure

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
)

// Defaults used when a field of Policy is zero.
const (
	DefaultFloor = 10
	DefaultRound = 5
)

// MinKeyLen is the shortest noise key Validate accepts.
const MinKeyLen = 16

// maxNoise bounds the Laplace scale: noise beyond it would make every
// answer meaningless anyway, and it keeps the arithmetic in range.
const maxNoise = 1e6

// ErrPolicy is wrapped by Validate's errors.
var ErrPolicy = errors.New("disclosure: invalid policy")

// Policy is a node's disclosure control. The zero value is usable and
// safe: floor 10, rounding to 5, no noise.
type Policy struct {
	// Floor is k: true counts below it are reported as 0. Zero means
	// DefaultFloor; 1 turns the floor off. Count raises it to the next
	// multiple of Round, so that rounding can never carry a count at the
	// floor below it (Validate refuses a floor that is not a multiple).
	Floor int
	// Round: counts are rounded to the nearest multiple. Zero means
	// DefaultRound; 1 turns rounding off.
	Round int
	// Noise is the scale b of the Laplace noise added to counts (standard
	// deviation b·√2); 0 turns noise off.
	Noise float64
	// Key is the node's secret for seeding the noise; required with
	// noise, at least MinKeyLen bytes.
	Key []byte
}

// Validate reports a policy that Count would have to repair: a negative
// floor or rounding, a floor that is not a multiple of the rounding, a
// noise scale that is negative, not finite or above a million, or noise
// without a key of at least MinKeyLen bytes.
func (p Policy) Validate() error {
	switch {
	case p.Floor < 0:
		return fmt.Errorf("%w: floor %d is negative (0 means the default, %d)", ErrPolicy, p.Floor, DefaultFloor)
	case p.Round < 0:
		return fmt.Errorf("%w: rounding %d is negative (0 means the default, %d; 1 means none)", ErrPolicy, p.Round, DefaultRound)
	case p.configuredFloor()%p.round() != 0:
		return fmt.Errorf("%w: floor %d is not a multiple of the rounding %d, so a count at the floor could round below it", ErrPolicy, p.configuredFloor(), p.round())
	case math.IsNaN(p.Noise) || p.Noise < 0 || p.Noise > maxNoise:
		return fmt.Errorf("%w: noise scale must be between 0 and %g", ErrPolicy, float64(maxNoise))
	case p.Noise > 0 && len(p.Key) < MinKeyLen:
		return fmt.Errorf("%w: noise needs a key of at least %d bytes", ErrPolicy, MinKeyLen)
	}
	return nil
}

// Effective returns the policy as Count applies it: defaults filled in
// and the floor raised to a multiple of the rounding, for reporting (an
// answer can say "counts below 10 are reported as 0").
func (p Policy) Effective() Policy {
	p.Floor, p.Round, p.Noise = p.floor(), p.round(), p.scale()
	return p
}

func (p Policy) round() int {
	if p.Round <= 0 {
		return DefaultRound
	}
	return p.Round
}

func (p Policy) configuredFloor() int {
	if p.Floor <= 0 {
		return DefaultFloor
	}
	return p.Floor
}

// floor is the floor Count applies: the configured one (the default for
// zero or a negative value) raised to a multiple of the rounding.
func (p Policy) floor() int {
	f := p.configuredFloor()
	r := p.round()
	if f%r != 0 {
		f += r - f%r
	}
	return f
}

// Count protects one count n of the query whose canonical form is
// queryCanonical; label names which count of the query it is ("subjects",
// "studies", "gender/female", ...). It returns 0 or a multiple of the
// rounding that is at least the floor. See the package documentation for
// the steps.
func (p Policy) Count(n int, queryCanonical []byte, label string) int {
	f, r := p.floor(), p.round()
	if n < f {
		return 0
	}
	var noise float64
	if b := p.scale(); b > 0 {
		noise = laplace(b, p.uniform(queryCanonical, label))
	}
	// n = q·r + rem; only rem + noise (small: |noise| < 40 million) goes
	// through floating point, so even absurd counts round exactly.
	q, rem := n/r, n%r
	k := int(math.Round((float64(rem) + noise) / float64(r)))
	var out int
	if k > 0 && q > math.MaxInt/r-k {
		out = math.MaxInt / r * r
	} else {
		out = (q + k) * r
	}
	if out < f {
		return 0
	}
	return out
}

func (p Policy) scale() float64 {
	if math.IsNaN(p.Noise) || p.Noise <= 0 {
		return 0
	}
	return math.Min(p.Noise, maxNoise)
}

// uniform returns a number in (0, 1) determined by the key, the query and
// the label: the first 53 bits of HMAC-SHA256(Key, len(query) || query ||
// label). The length prefix keeps ("ab", "c") and ("a", "bc") apart.
func (p Policy) uniform(query []byte, label string) float64 {
	m := hmac.New(sha256.New, p.Key)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(query)))
	m.Write(n[:])
	m.Write(query)
	m.Write([]byte(label))
	sum := m.Sum(nil)
	bits := binary.BigEndian.Uint64(sum[:8]) >> 11
	return (float64(bits) + 0.5) / (1 << 53)
}

// laplace turns a uniform number in (0, 1) into a Laplace(0, b) draw by
// the inverse of its distribution function.
func laplace(b, u float64) float64 {
	if u < 0.5 {
		return b * math.Log(2*u)
	}
	return -b * math.Log(2*(1-u))
}

// Categories returns, sorted, the categories (genders, modalities, body
// parts present among the matching subjects) whose count survives Count,
// each with its own noise (label + "/" + category): a category below the
// floor is not named at all, and whether one near the floor is named does
// not reveal its exact count when noise is on.
func (p Policy) Categories(counts map[string]int, queryCanonical []byte, label string) []string {
	out := []string{}
	for c, n := range counts {
		if p.Count(n, queryCanonical, label+"/"+c) > 0 {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

// AgeRange coarsens the youngest and oldest ages of a result to whole
// decades: lo is rounded down to a multiple of 10 and hi up to the end of
// its decade (43 and 67 become 40 and 69), so neither end names one
// patient's age. The two ends are still those of single patients' decades:
// report them only with a subject count that passed the floor.
func (p Policy) AgeRange(youngest, oldest int) (lo, hi int) {
	if youngest > oldest {
		youngest, oldest = oldest, youngest
	}
	return floorDiv(youngest, 10) * 10, floorDiv(oldest, 10)*10 + 9
}

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
