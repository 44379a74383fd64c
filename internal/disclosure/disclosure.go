// Package disclosure is the disclosure control a node applies to every
// figure about its patients before it leaves: federated search answers,
// their breakdowns, the catalogue's aggregates, and the outputs of
// federated statistics to come. docs/disclosure.md gives the threat model
// and what each mechanism stops.
//
// Two layers:
//
//   - Policy protects one figure: a count under the floor is reported as
//     0, noise (Laplace, scale Noise) is drawn from a keyed pseudo-random
//     function of a seed and a label, the result is rounded and, if it
//     fell under the floor, reported as 0. Figures (figures.go) makes all
//     the figures of a set (subjects, studies, categories, age range),
//     each a count of some set drawn from that set's own seed: the keyed
//     digest of the set of patients (Group), so that every way of asking
//     for the same set gets the same figure and rewrites cannot be
//     averaged.
//   - Control (control.go) adds what needs memory: the complement and
//     overlap controls (a set within the floor of the whole dataset or of
//     a set answered before gets that set's figures, so differences
//     smaller than the floor are never revealed), a privacy budget per
//     researcher and dataset, and the attack detector. Its state lives in
//     a Store (the node's index).
//
// Order of operations in Count, and why:
//
//  1. A true count below the floor is reported as 0, the same answer as
//     "nothing matches", so a small group can neither be seen nor be told
//     apart from an empty one.
//  2. Noise, if enabled, is Laplace with scale Noise, drawn from a keyed
//     pseudo-random function of the seed and a label: the same seed gives
//     the same answer, so repeating a question cannot average the noise
//     away. Without the node's key nobody can predict or subtract it.
//  3. The result is rounded to the nearest multiple of Round.
//  4. If noise or rounding brought it below the floor, 0 again: no value
//     from 1 to Floor-1 is ever output.
//
// The label separates the figures drawn from one seed: the subjects and
// the studies of a set are different numbers and get independent noise.
package disclosure

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
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

// Count protects one count n drawn from seed (the digest of the set it
// counts); label names which figure of that set it is ("subjects",
// "studies", ...). It returns 0 or a multiple of the
// rounding that is at least the floor. See the package documentation for
// the steps.
func (p Policy) Count(n int, seed []byte, label string) int {
	return p.count(n, seed, label, p.scale())
}

// count is Count with noise of scale b (for a figure to which one
// patient can add more than 1).
func (p Policy) count(n int, seed []byte, label string, b float64) int {
	f, r := p.floor(), p.round()
	if n < f {
		return 0
	}
	var noise float64
	if b > 0 {
		noise = laplace(b, p.uniform(seed, label))
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

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
