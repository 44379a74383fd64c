package fl

import (
	crand "crypto/rand"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// DP configures differentially private training: each node's update is
// clipped to L2 norm Clip, and Gaussian noise of standard deviation
// NoiseMultiplier×Clip is added to the sum.
//
// The unit of privacy is one node's whole contribution to a round: the
// clipped vector is the node's change of the weights (local minus
// global), the sum of such vectors changes by at most Clip in L2 norm
// when one node is added or removed, and so the noise protects every
// patient of the node at once. Under DP the hub averages the noisy sum
// of clipped changes with equal weights (dividing by the number of
// nodes), not by samples: weighting by samples would scale a node's
// sensitivity with its size.
type DP struct {
	Clip            float64 `json:"clip"`
	NoiseMultiplier float64 `json:"noise_multiplier"`
	Delta           float64 `json:"delta"`
}

// Validate checks that the configuration is usable.
func (d DP) Validate() error {
	switch {
	case !(d.Clip > 0) || math.IsInf(d.Clip, 0):
		return errors.New("fl: dp: clip must be a positive number")
	case !(d.NoiseMultiplier > 0) || math.IsInf(d.NoiseMultiplier, 0):
		return errors.New("fl: dp: noise multiplier must be a positive number")
	case !(d.Delta > 0 && d.Delta < 1):
		return errors.New("fl: dp: delta must be between 0 and 1")
	}
	return nil
}

// Sigma is the standard deviation of the noise added to the sum.
func (d DP) Sigma() float64 { return d.NoiseMultiplier * d.Clip }

// ClipL2 returns v scaled down so that its L2 norm is at most clip (v
// itself is left alone), and the norm v had. A vector with NaN or
// infinite values cannot be clipped and gives an error.
func ClipL2(v []float64, clip float64) (clipped []float64, norm float64, err error) {
	if !(clip > 0) || math.IsInf(clip, 0) {
		return nil, 0, errors.New("fl: clip must be a positive number")
	}
	if !allFinite(v) {
		return nil, 0, errors.New("fl: clip: values not finite")
	}
	// Scale before squaring so that large values do not overflow.
	var m float64
	for _, x := range v {
		m = math.Max(m, math.Abs(x))
	}
	out := make([]float64, len(v))
	copy(out, v)
	if m == 0 {
		return out, 0, nil
	}
	var ss float64
	for _, x := range v {
		y := x / m
		ss += y * y
	}
	norm = m * math.Sqrt(ss)
	if norm > clip {
		f := clip / norm
		for i := range out {
			out[i] *= f
		}
	}
	return out, norm, nil
}

// ClipUpdate clips a node's change of the weights: it returns global
// plus (local − global) clipped to L2 norm clip, and that change's norm
// before clipping.
func ClipUpdate(local, global []float64, clip float64) ([]float64, float64, error) {
	if len(local) != len(global) {
		return nil, 0, fmt.Errorf("fl: clip: update has %d values, global %d", len(local), len(global))
	}
	d := make([]float64, len(local))
	for i := range d {
		d[i] = local[i] - global[i]
	}
	c, norm, err := ClipL2(d, clip)
	if err != nil {
		return nil, 0, err
	}
	for i := range c {
		c[i] += global[i]
	}
	return c, norm, nil
}

// NewNoiseSource returns a random source for AddNoise seeded from the
// operating system's cryptographic generator (ChaCha8), so that the
// noise cannot be predicted or replayed.
func NewNoiseSource() (*rand.Rand, error) {
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("fl: noise seed: %w", err)
	}
	return rand.New(rand.NewChaCha8(seed)), nil
}

// AddNoise adds independent Gaussian noise of standard deviation std to
// every value of v, in place. Use std = DP.Sigma() when one party adds
// all the noise to the sum, or NodeSigma when each node adds its share
// before secure aggregation.
func AddNoise(v []float64, std float64, r *rand.Rand) error {
	if !(std >= 0) || math.IsInf(std, 0) {
		return errors.New("fl: noise standard deviation must be a non-negative number")
	}
	if r == nil {
		return errors.New("fl: no noise source")
	}
	for i := range v {
		v[i] += std * r.NormFloat64()
	}
	return nil
}

// NodeSigma is the noise each node adds to its own clipped vector when
// the noise is distributed: with at least minSurvivors nodes in the sum,
// their independent noises add up to a standard deviation of at least
// Sigma(), so the hub, which sees only the sum under secure aggregation,
// never sees less noise than the accountant assumes.
func (d DP) NodeSigma(minSurvivors int) float64 {
	if minSurvivors < 1 {
		minSurvivors = 1
	}
	return d.Sigma() / math.Sqrt(float64(minSurvivors))
}

// Orders are the Rényi orders α at which the accountant evaluates the
// privacy loss; the (ε, δ) it reports is the smallest over them.
var Orders = func() []float64 {
	var o []float64
	for a := 1.25; a <= 10; a += 0.25 {
		o = append(o, a)
	}
	for a := 11.0; a <= 64; a++ {
		o = append(o, a)
	}
	return append(o, 80, 96, 128, 160, 192, 256)
}()

// RDPGaussian is the Rényi DP of rounds adaptive compositions of the
// Gaussian mechanism of L2 sensitivity 1 and noise standard deviation
// noiseMultiplier, at order alpha: rounds·α/(2σ²) (Mironov 2017,
// Proposition 7 and composition). Every node takes part in every round:
// there is no amplification by subsampling.
func RDPGaussian(noiseMultiplier float64, rounds int, alpha float64) float64 {
	return float64(rounds) * alpha / (2 * noiseMultiplier * noiseMultiplier)
}

// RDPToEpsilon converts a Rényi DP guarantee rdp at order alpha to the ε
// of (ε, δ)-DP by the conversion of Balle et al. 2020 (Theorem 21), also
// used by common DP libraries:
//
//	ε = rdp + log((α−1)/α) − (log δ + log α)/(α−1)
//
// which is never worse than the classic rdp + log(1/δ)/(α−1).
func RDPToEpsilon(rdp, alpha, delta float64) float64 {
	classic := rdp + math.Log(1/delta)/(alpha-1)
	better := rdp + math.Log((alpha-1)/alpha) - (math.Log(delta)+math.Log(alpha))/(alpha-1)
	return math.Max(0, math.Min(classic, better))
}

// Epsilon is the (ε, δ) privacy loss of rounds Gaussian mechanisms of
// the given noise multiplier, by a Rényi differential privacy
// accountant over Orders. It is 0 for no rounds, and +Inf when the
// noise multiplier is not positive or δ is not in (0, 1): no guarantee.
func Epsilon(noiseMultiplier float64, rounds int, delta float64) float64 {
	if rounds <= 0 {
		return 0
	}
	if !(noiseMultiplier > 0) || math.IsInf(noiseMultiplier, 0) || !(delta > 0 && delta < 1) {
		return math.Inf(1)
	}
	best := math.Inf(1)
	for _, a := range Orders {
		best = math.Min(best, RDPToEpsilon(RDPGaussian(noiseMultiplier, rounds, a), a, delta))
	}
	return best
}

// RoundEpsilon is what round (counted from 1) adds to the ε of a
// computation: Epsilon after round minus Epsilon before it. Spending it
// in the ledger before each round keeps the ledger's total for the
// computation equal to the accountant's ε after the rounds run.
func RoundEpsilon(noiseMultiplier float64, round int, delta float64) float64 {
	if round < 1 {
		return 0
	}
	return Epsilon(noiseMultiplier, round, delta) - Epsilon(noiseMultiplier, round-1, delta)
}

// DPFedAvg is one round of FedAvg with differential privacy done at the
// hub (central noise): each usable update's change from global is
// clipped to d.Clip, the changes are summed, Gaussian noise of standard
// deviation d.Sigma() is added to the sum, and the noisy sum divided by
// the number of updates used is added to global. Updates are left out
// and named in skipped as FedAvg does; samples only decide whether an
// update is usable, not its weight. The round's privacy loss is
// RoundEpsilon(d.NoiseMultiplier, round, d.Delta).
//
// Under secure aggregation the same result comes from each node sending
// Weighted(change clipped by ClipUpdate, 1) with its own noise of
// d.NodeSigma(fewest survivors) added (AddNoise): FromWeighted of the
// sum is then the noisy mean change.
func DPFedAvg(global []float64, updates []Update, d DP, r *rand.Rand) (avg []float64, skipped map[string]string, err error) {
	if err := d.Validate(); err != nil {
		return nil, nil, err
	}
	if !allFinite(global) {
		return nil, nil, errors.New("fl: dp: global weights not finite")
	}
	// FedAvg with equal weights picks the usable updates.
	eq := make([]Update, len(updates))
	for i, u := range updates {
		eq[i] = u
		if u.Samples > 0 && !math.IsInf(u.Samples, 0) {
			eq[i].Samples = 1
		}
	}
	if _, skipped, err = FedAvg(eq, len(global)); err != nil {
		return nil, skipped, err
	}
	sum := make([]float64, len(global))
	var n float64
	seen := map[string]bool{}
	for i, u := range eq {
		name := u.Node
		if name == "" {
			name = fmt.Sprintf("#%d", i)
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		if _, bad := skipped[name]; bad {
			continue
		}
		c, _, err := ClipUpdate(u.Weights, global, d.Clip)
		if err != nil {
			return nil, skipped, err
		}
		for j := range c {
			sum[j] += c[j] - global[j]
		}
		n++
	}
	if err := AddNoise(sum, d.Sigma(), r); err != nil {
		return nil, skipped, err
	}
	avg = make([]float64, len(global))
	for j := range avg {
		avg[j] = global[j] + sum[j]/n
	}
	return avg, skipped, nil
}
