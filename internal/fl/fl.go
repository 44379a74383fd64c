// Package fl is federated learning and validation at the hub and the
// node: FedAvg and FedProx aggregation that skips bad updates (NaN,
// wrong shape) and says so, differential privacy (update clipping,
// Gaussian noise) with a Rényi accountant and a ledger of (ε, δ) per
// researcher across jobs, model weights as safetensors read and written
// as streams, and validation aggregates (confusion counts over a
// threshold grid, calibration bins) merged into AUC, sensitivity,
// specificity and a calibration curve equal to the pooled computation.
//
// FedProx needs nothing here beyond FedAvg: its proximal term
// mu/2·||w − w_global||² is added to the loss by the training program
// at each node (the hub passes mu in the program's params), and the hub
// averages the updates as FedAvg does.
package fl

import (
	"errors"
	"fmt"
	"math"
)

// ErrNotImplemented marks the contract's stubs.
var ErrNotImplemented = errors.New("fl: not implemented")

// ErrNoUpdates reports a round in which no update could be used.
var ErrNoUpdates = errors.New("fl: no usable update in the round")

// Update is one node's training result for a round.
type Update struct {
	Node    string
	Weights []float64
	Samples float64
	Metrics map[string]float64
}

// Reasons an update is left out of an average, as FedAvg names them.
const (
	SkipWrongLength = "wrong length"
	SkipNotFinite   = "weights not finite (NaN or infinite)"
	SkipNoSamples   = "no samples"
	SkipDuplicate   = "duplicate update from the same node"
)

// FedAvg averages updates weighted by their samples. An update with
// NaN or infinite values, the wrong length or no samples is left out
// and named in skipped with the reason (a second update from the same
// node is left out too). It fails when length is not positive or when
// no update is left.
func FedAvg(updates []Update, length int) (avg []float64, skipped map[string]string, err error) {
	if length <= 0 {
		return nil, nil, fmt.Errorf("fl: fedavg: model length %d is not positive", length)
	}
	skipped = map[string]string{}
	seen := map[string]bool{}
	var use []*Update
	var total float64
	for i := range updates {
		u := &updates[i]
		name := u.Node
		if name == "" {
			name = fmt.Sprintf("#%d", i)
		}
		switch {
		case seen[name]:
			skipped[name+fmt.Sprintf(" (#%d)", i)] = SkipDuplicate
			continue
		case len(u.Weights) != length:
			skipped[name] = fmt.Sprintf("%s: %d values, want %d", SkipWrongLength, len(u.Weights), length)
		case !(u.Samples > 0) || math.IsInf(u.Samples, 0):
			skipped[name] = SkipNoSamples
		case !allFinite(u.Weights):
			skipped[name] = SkipNotFinite
		}
		seen[name] = true
		if _, bad := skipped[name]; bad {
			continue
		}
		use = append(use, u)
		total += u.Samples
	}
	if total == 0 {
		return nil, skipped, ErrNoUpdates
	}
	// Sum block by block so that the block of the sum stays in cache
	// while every update adds to it; each value still adds the updates
	// in their order.
	sum := make([]float64, length)
	const block = 4096
	for lo := 0; lo < length; lo += block {
		hi := min(lo+block, length)
		sm := sum[lo:hi]
		for _, u := range use {
			s, ws := u.Samples, u.Weights[lo:hi]
			for j := range ws {
				sm[j] += s * ws[j]
			}
		}
	}
	for j := range sum {
		sum[j] /= total
	}
	if !allFinite(sum) {
		return nil, skipped, errors.New("fl: fedavg: the average overflowed")
	}
	return sum, skipped, nil
}

func allFinite(v []float64) bool {
	for _, x := range v {
		// x-x is NaN exactly for NaN and ±Inf.
		if x-x != 0 {
			return false
		}
	}
	return true
}

// Weighted returns what a node adds under secure aggregation: its
// weights times its samples, then its samples. FromWeighted turns the
// sum of such vectors into the average and the total of samples.
func Weighted(w []float64, samples float64) []float64 {
	out := make([]float64, len(w)+1)
	for i, x := range w {
		out[i] = samples * x
	}
	out[len(w)] = samples
	return out
}

// FromWeighted reads a sum of Weighted vectors.
func FromWeighted(sum []float64) (avg []float64, samples float64, err error) {
	if len(sum) < 2 {
		return nil, 0, fmt.Errorf("fl: weighted sum of %d values holds no weights", len(sum))
	}
	samples = sum[len(sum)-1]
	if !(samples > 0) || math.IsInf(samples, 0) {
		return nil, 0, errors.New("fl: weighted sum: total samples is not a positive number")
	}
	avg = make([]float64, len(sum)-1)
	for i := range avg {
		avg[i] = sum[i] / samples
	}
	if !allFinite(avg) {
		return nil, 0, errors.New("fl: weighted sum: weights not finite")
	}
	return avg, samples, nil
}
