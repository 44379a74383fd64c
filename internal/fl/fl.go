// Package fl is federated learning and validation at the hub and the
// node: FedAvg and FedProx aggregation that skips bad updates (NaN,
// wrong shape) and says so, differential privacy (update clipping,
// Gaussian noise) with a Rényi accountant and a ledger of (ε, δ) per
// researcher across jobs, model weights as safetensors read and written
// as streams, and validation aggregates (confusion counts over a
// threshold grid, calibration bins) merged into AUC, sensitivity,
// specificity and a calibration curve equal to the pooled computation.
package fl

import (
	"context"
	"errors"
	"io"
)

// ErrNotImplemented marks the contract's stubs.
var ErrNotImplemented = errors.New("fl: not implemented")

// Update is one node's training result for a round.
type Update struct {
	Node    string
	Weights []float64
	Samples float64
	Metrics map[string]float64
}

// FedAvg averages updates weighted by their samples. An update with
// NaN or infinite values, the wrong length or no samples is left out
// and named in skipped with the reason.
func FedAvg(updates []Update, length int) (avg []float64, skipped map[string]string, err error) {
	return nil, nil, ErrNotImplemented
}

// Weighted returns what a node adds under secure aggregation: its
// weights times its samples, then its samples. FromWeighted turns the
// sum of such vectors into the average and the total of samples.
func Weighted(w []float64, samples float64) []float64 { return nil }

// FromWeighted reads a sum of Weighted vectors.
func FromWeighted(sum []float64) (avg []float64, samples float64, err error) {
	return nil, 0, ErrNotImplemented
}

// DP configures differentially private training: each node's update is
// clipped to L2 norm Clip, and Gaussian noise of standard deviation
// NoiseMultiplier×Clip is added to the sum.
type DP struct {
	Clip            float64 `json:"clip"`
	NoiseMultiplier float64 `json:"noise_multiplier"`
	Delta           float64 `json:"delta"`
}

// Epsilon is the (ε, δ) privacy loss of rounds Gaussian mechanisms of
// the given noise multiplier, by a Rényi differential privacy
// accountant.
func Epsilon(noiseMultiplier float64, rounds int, delta float64) float64 { return 0 }

// Ledger keeps the privacy loss spent per researcher across jobs.
type Ledger interface {
	// Spend adds eps for researcher, refusing (and adding nothing) when
	// the total would pass the cap; it returns the total after.
	Spend(ctx context.Context, researcher, computation string, eps, delta float64) (total float64, err error)
	Spent(ctx context.Context, researcher string) (float64, error)
}

// Tensor is one named tensor of a safetensors file.
type Tensor struct {
	Name  string
	DType string // F32, F64
	Shape []int64
	Data  []byte // little-endian
}

// WriteSafetensors writes tensors as a safetensors file.
func WriteSafetensors(w io.Writer, tensors []Tensor) error { return ErrNotImplemented }

// ReadSafetensors reads a safetensors file (bounded header, offsets
// checked, no panics on bad input).
func ReadSafetensors(r io.Reader) ([]Tensor, error) { return nil, ErrNotImplemented }

// Validation: each node scores its rows and returns counts only.

// ValidationPart is one node's aggregates over a threshold grid and
// calibration bins.
type ValidationPart struct {
	Grid []float64 // thresholds, ascending
	TP   []float64 // per threshold: score >= t and label 1
	FP   []float64
	TN   []float64
	FN   []float64
	// Calibration bins of equal width over [0,1]: count, sum of scores,
	// positives.
	BinCount []float64
	BinScore []float64
	BinPos   []float64
}

// NodeValidation computes a node's part from scores and labels (0 or 1)
// with floor applied (see its doc).
func NodeValidation(scores, labels []float64, grid []float64, bins int, floor int) (*ValidationPart, error) {
	return nil, ErrNotImplemented
}

// Vector flattens the part for secure aggregation.
func (p *ValidationPart) Vector() []float64 { return nil }

// ValidationPartFromVector reads a vector made by Vector (or a sum).
func ValidationPartFromVector(grid []float64, bins int, v []float64) (*ValidationPart, error) {
	return nil, ErrNotImplemented
}

// ValidationResult is the merged validation.
type ValidationResult struct {
	N           float64   `json:"n"`
	Positives   float64   `json:"positives"`
	AUC         float64   `json:"auc"`
	Grid        []float64 `json:"grid"`
	Sensitivity []float64 `json:"sensitivity"`
	Specificity []float64 `json:"specificity"`
	// Calibration per bin: mean predicted and observed rate (NaN for an
	// empty bin is written as null).
	CalPredicted []float64 `json:"cal_predicted"`
	CalObserved  []float64 `json:"cal_observed"`
	CalCount     []float64 `json:"cal_count"`
}

// Merge turns a summed part into the metrics.
func Merge(sum *ValidationPart) (*ValidationResult, error) { return nil, ErrNotImplemented }
