package compute

import (
	"github.com/mosaic-imaging/mosaic/internal/fl"
	"github.com/mosaic-imaging/mosaic/internal/secagg"
	"github.com/mosaic-imaging/mosaic/internal/stats"
)

// The steps of a computation (fed.ComputeBody.Step). Every step carries
// the researcher's process permit for the node, which the node checks
// and audits on each of them.
const (
	// StepLevels asks a node for the levels of a formula's categorical
	// variables (each over the node's floor) and the types of its
	// variables; the hub sends the sorted union with the later steps.
	StepLevels = "levels"
	// StepAdvert starts a secure aggregation at the node: it keeps a
	// secagg client for the session and answers its signed advert.
	StepAdvert = "sa-advert"
	// StepShares relays every advert; the node answers its encrypted
	// shares for the others.
	StepShares = "sa-shares"
	// StepMask relays the shares sent to the node; the node computes its
	// part now and answers it masked, with its rows in the clear. A node
	// whose checks refuse the part answers a refusal and is handled as
	// dropped by the protocol.
	StepMask = "sa-mask"
	// StepReveal names the survivors; the node answers what lets the hub
	// remove the masks of the sum.
	StepReveal = "sa-reveal"
	// StepTrain runs the training program once at the node with the
	// round's global weights; the node keeps its update in memory and
	// answers its samples and metrics only.
	StepTrain = "train"
	// StepPlain asks for a node's kept update in the clear (a run without
	// secure aggregation, for comparison).
	StepPlain = "plain"
	// StepEnd tells the node to forget what it keeps for a computation.
	StepEnd = "end"
)

// Kinds of part a node adds under secure aggregation (Part.Kind).
const (
	PartSummary    = "summary"
	PartLM         = "lm"
	PartGLM        = "glm"
	PartUpdate     = "update"
	PartValidation = "validation"
	PartSuppress   = "suppress"
)

// Part says what vector a node adds to one secure aggregation.
type Part struct {
	Kind string `json:"kind"`
	// Table, Formula, Family, Levels and Beta for summaries and models.
	Table     string       `json:"table,omitempty"`
	Formula   string       `json:"formula,omitempty"`
	Family    string       `json:"family,omitempty"`
	Levels    stats.Levels `json:"levels,omitempty"`
	Variables []string     `json:"variables,omitempty"`
	Beta      []float64    `json:"beta,omitempty"`
	// Round names the kept update (PartUpdate) of this computation.
	Round int `json:"round,omitempty"`
	// MinSum is the fewest nodes the sum may end with (PartUpdate under
	// differential privacy: the nodes' noise shares assume as many).
	MinSum int `json:"min_sum,omitempty"`
	// Validation describes the model to score (PartValidation).
	Validation *ValidationSpec `json:"validation,omitempty"`
}

// LevelsParams are the parameters of StepLevels.
type LevelsParams struct {
	Table   string `json:"table"`
	Formula string `json:"formula"`
}

// LevelsResult is a node's answer to StepLevels: its categorical
// levels (each over its floor) and the types of the formula's
// variables (names and types only: the catalogue shows them).
type LevelsResult struct {
	Levels stats.Levels      `json:"levels"`
	Types  map[string]string `json:"types"`
}

// AdvertParams are the parameters of StepAdvert.
type AdvertParams struct {
	Config secagg.Config `json:"config"`
	Part   Part          `json:"part"`
}

// AdvertResult answers StepAdvert.
type AdvertResult struct {
	Advert secagg.Advert `json:"advert"`
}

// SharesParams are the parameters of StepShares.
type SharesParams struct {
	Session string          `json:"session"`
	Adverts []secagg.Advert `json:"adverts"`
}

// SharesResult answers StepShares.
type SharesResult struct {
	Shares []secagg.Share `json:"shares"`
}

// MaskParams are the parameters of StepMask: the shares sent to the
// node.
type MaskParams struct {
	Session string         `json:"session"`
	Shares  []secagg.Share `json:"shares"`
}

// MaskResult answers StepMask: the masked part and, in the clear, the
// rows it was computed from.
type MaskResult struct {
	Masked secagg.Masked `json:"masked"`
	Rows   int           `json:"rows"`
}

// RevealParams are the parameters of StepReveal.
type RevealParams struct {
	Session   string   `json:"session"`
	Survivors []string `json:"survivors"`
}

// RevealResult answers StepReveal.
type RevealResult struct {
	Reveal secagg.Reveal `json:"reveal"`
}

// Program is a training or validation program sent with a step: its
// file name, its content and its digest (sha256:hex), which the node's
// allow-list must hold.
type Program struct {
	Name    string `json:"name"`
	Content []byte `json:"content"`
	Digest  string `json:"digest"`
	// Files are modules the program imports, written beside it; each
	// must be on the node's allow-list too.
	Files []Program `json:"files,omitempty"`
}

// TrainParams are the parameters of StepTrain.
type TrainParams struct {
	Program Program `json:"program"`
	// Weights are the round's global weights (a safetensors file).
	Weights []byte `json:"weights"`
	// WeightsDigest and WeightsLength name the weights sent before in
	// chunks (StepWeightsChunk) when Weights is empty.
	WeightsDigest string `json:"weights_digest,omitempty"`
	WeightsLength int64  `json:"weights_length,omitempty"`
	// Params is written to /in/params.json (round, epochs, lr, mu, seed,
	// table, target, features and whatever the researcher set).
	Params map[string]any `json:"params"`
	// Images asks for the snapshot's DICOM files under /data/dicom.
	Images bool `json:"images,omitempty"`
	// DP, when set, makes the node clip its update and add its share of
	// the noise for at least MinSurvivors nodes in the sum.
	DP           *fl.DP `json:"dp,omitempty"`
	MinSurvivors int    `json:"min_survivors,omitempty"`
	// Plain asks the node to keep its update for StepPlain (a run
	// without secure aggregation); without it the update leaves only
	// masked.
	Plain bool `json:"plain,omitempty"`
}

// TrainResult answers StepTrain: the samples the update was trained on
// (zero when under the floor: the update is then not used) and the
// metrics that passed the node's airlock.
type TrainResult struct {
	Samples float64            `json:"samples"`
	Metrics map[string]float64 `json:"metrics,omitempty"`
}

// PlainParams are the parameters of StepPlain.
type PlainParams struct {
	Round int `json:"round"`
}

// PlainResult answers StepPlain: the node's update (little-endian
// float64s) and its samples.
type PlainResult struct {
	Weights []byte  `json:"weights"`
	Samples float64 `json:"samples"`
}

// ValidationSpec is a model to validate at the nodes: a fitted lm or
// glm (Formula, Levels, Coefficients and Estimates, scored in Go at the
// node against the formula's response) or a program with weights (the
// node runs it and reads /out/scores.csv).
type ValidationSpec struct {
	Table        string       `json:"table,omitempty"`
	Formula      string       `json:"formula,omitempty"`
	Family       string       `json:"family,omitempty"`
	Levels       stats.Levels `json:"levels,omitempty"`
	Coefficients []string     `json:"coefficients,omitempty"`
	Estimates    []float64    `json:"estimates,omitempty"`

	Program *Program       `json:"program,omitempty"`
	Weights []byte         `json:"weights,omitempty"`
	Params  map[string]any `json:"params,omitempty"`

	Grid []float64 `json:"grid"`
	Bins int       `json:"bins"`
	// Plan is the coarsened grid and bins the hub sends with the second
	// step (set by the hub, not the researcher).
	Plan *fl.Plan `json:"plan,omitempty"`
}
