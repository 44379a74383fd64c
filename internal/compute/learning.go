package compute

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/fl"
	"github.com/mosaic-imaging/mosaic/internal/secagg"
)

// LearningSpec is a federated learning run as the API takes it.
type LearningSpec struct {
	Name string `json:"name"`
	// Program is the training program (name, content, digest); nodes run
	// it only when its digest is on their allow-list.
	Program Program `json:"program"`
	// Weights are the initial global weights (a safetensors file).
	Weights   []byte         `json:"weights"`
	Rounds    int            `json:"rounds"`
	Algorithm string         `json:"algorithm"` // fedavg (default) or fedprox
	Mu        float64        `json:"mu,omitempty"`
	Params    map[string]any `json:"params,omitempty"`
	// Secure asks for secure aggregation (default true); false sends
	// each node's update in the clear, for comparison.
	Secure *bool  `json:"secure,omitempty"`
	DP     *fl.DP `json:"dp,omitempty"`
}

// Signed tasks and answers carry their payload in base64, and bytes
// inside it are base64 again: 16/9 of the bytes travel. maxInline is the
// largest weights file sent inline in one step, and maxValues the most
// weights a secure aggregation's masked vector (16 bytes a value) carries
// in one answer, each with room for the rest of the message.
const (
	maxInline = (fed.MaxMessage - 64<<10) * 9 / 16
	maxValues = (fed.MaxMessage-64<<10)*9/16/16 - 1
)

// Check fills defaults and refuses a malformed spec.
func (s *LearningSpec) Check() error {
	if s.Rounds < 1 || s.Rounds > 1000 {
		return errors.New("rounds: 1 to 1000")
	}
	switch s.Algorithm {
	case "":
		s.Algorithm = "fedavg"
	case "fedavg", "fedprox":
	default:
		return errors.New("algorithm: fedavg or fedprox")
	}
	if s.Algorithm == "fedavg" && s.Mu != 0 {
		return errors.New("mu: only fedprox takes a proximal term")
	}
	if s.Mu < 0 || math.IsNaN(s.Mu) {
		return errors.New("mu: not negative")
	}
	if s.Program.Name == "" || len(s.Program.Content) == 0 {
		return errors.New("program: give its name and content")
	}
	sum := sha256.Sum256(s.Program.Content)
	d := "sha256:" + hex.EncodeToString(sum[:])
	if s.Program.Digest == "" {
		s.Program.Digest = d
	}
	if s.Program.Digest != d {
		return errors.New("program: the digest does not match the content")
	}
	if err := checkFiles(s.Program.Files); err != nil {
		return err
	}
	ts, err := fl.ReadSafetensors(bytes.NewReader(s.Weights))
	if err != nil {
		return fmt.Errorf("weights: %w", err)
	}
	v, err := Flatten(ts)
	if err != nil {
		return fmt.Errorf("weights: %w", err)
	}
	if len(s.Weights) > MaxWeightsBytes || len(v) >= secagg.MaxLength {
		return fmt.Errorf("weights: %d values in %d bytes; models of more than %d bytes are not supported", len(v), len(s.Weights), MaxWeightsBytes)
	}
	if s.DP != nil {
		if err := s.DP.Validate(); err != nil {
			return fmt.Errorf("dp: %w", err)
		}
		if !s.secure() {
			return errors.New("dp: needs secure aggregation (each node's update carries only its share of the noise)")
		}
	}
	return nil
}

func (s *LearningSpec) secure() bool { return s.Secure == nil || *s.Secure }

// Round is one round of a learning run as the hub shows it.
type Round struct {
	Round        int                           `json:"round"`
	Loss         *float64                      `json:"loss,omitempty"`
	Samples      float64                       `json:"samples"`
	Metrics      map[string]map[string]float64 `json:"metrics,omitempty"`
	Participants []string                      `json:"participants"`
	Dropped      map[string]string             `json:"dropped,omitempty"`
	Skipped      map[string]string             `json:"skipped,omitempty"`
	Epsilon      float64                       `json:"epsilon,omitempty"`
	EpsilonTotal float64                       `json:"epsilon_total,omitempty"`
	Seconds      float64                       `json:"seconds"`
}

// LearningState is a learning run's progress.
type LearningState struct {
	Rounds []Round `json:"rounds"`
	// Weights are the latest global weights (safetensors), kept apart.
	Weights []byte `json:"-"`
}

// Learn runs the rounds of a learning run over targets, calling
// progress after each round. ledger (nil without DP) spends ε.
func (r *Runner) Learn(ctx context.Context, comp string, spec LearningSpec, targets []Target, roundTimeout time.Duration, ledger fl.Ledger, progress func(*LearningState)) (*LearningState, error) {
	if err := spec.Check(); err != nil {
		return nil, err
	}
	if spec.DP != nil && ledger == nil {
		return nil, errors.New("dp: the hub keeps no privacy ledger")
	}
	defer r.End(context.WithoutCancel(ctx), comp, targets)
	template, _ := fl.ReadSafetensors(bytes.NewReader(spec.Weights))
	global, _ := Flatten(template)
	st := &LearningState{Weights: spec.Weights}
	if roundTimeout <= 0 {
		roundTimeout = 30 * time.Minute
	}
	need := Threshold(len(targets))
	for round := 1; round <= spec.Rounds; round++ {
		t0 := time.Now()
		rd := Round{Round: round, Dropped: map[string]string{}, Skipped: map[string]string{}}
		if spec.DP != nil {
			eps := fl.RoundEpsilon(spec.DP.NoiseMultiplier, round, spec.DP.Delta)
			total, err := ledger.Spend(ctx, r.Researcher, comp, eps, spec.DP.Delta)
			if err != nil {
				return st, fmt.Errorf("round %d refused: %w", round, err)
			}
			rd.Epsilon, rd.EpsilonTotal = eps, total
		}
		params := map[string]any{}
		for k, v := range spec.Params {
			params[k] = v
		}
		params["round"], params["mu"] = round, spec.Mu
		if _, ok := params["seed"]; !ok {
			params["seed"] = round
		}
		tp := TrainParams{Program: spec.Program, Weights: st.Weights, Params: params, DP: spec.DP, MinSurvivors: need, Plain: !spec.secure()}
		left := map[string]outcome{}
		got := r.each(ctx, comp, StepTrain, round, r.sendWeights(ctx, comp, round, &tp, targets, left), roundTimeout, func(Target) (any, error) { return tp, nil }, nil, left)
		var live []Target
		var lossSum, lossW float64
		rd.Metrics = map[string]map[string]float64{}
		for _, t := range targets {
			a, ok := got[t.Node]
			if !ok {
				continue
			}
			var tr TrainResult
			if err := json.Unmarshal(a.Result, &tr); err != nil || tr.Samples <= 0 {
				left[t.Node] = outcome{Code: "error", Reason: "a malformed training answer"}
				continue
			}
			live = append(live, t)
			if len(tr.Metrics) > 0 {
				rd.Metrics[t.Node] = tr.Metrics
			}
			if l, ok := tr.Metrics["loss"]; ok {
				lossSum += l * tr.Samples
				lossW += tr.Samples
			}
		}
		for n, o := range left {
			if o.Code == "dropped" || o.Code == "error" {
				rd.Dropped[n] = o.String()
			} else {
				rd.Skipped[n] = o.String()
			}
		}
		if len(live) < need {
			rd.Seconds = time.Since(t0).Seconds()
			st.Rounds = append(st.Rounds, rd)
			if progress != nil {
				progress(st)
			}
			return st, fmt.Errorf("%w: round %d: %d of %d nodes trained, %d needed (%s)", ErrTooFew, round, len(live), len(targets), need, describeLeft(left))
		}
		var avg []float64
		if spec.secure() {
			part := Part{Kind: PartUpdate, Round: round}
			if spec.DP != nil {
				part.MinSum = need
			}
			agg, err := r.Aggregate(ctx, comp, round, fmt.Sprintf("%s/update/%d", comp, round), live, part, len(global)+1)
			if agg != nil {
				for n, why := range agg.Left {
					rd.Dropped[n] = why
				}
			}
			if err != nil {
				return st, fmt.Errorf("round %d: %w", round, err)
			}
			var samples float64
			avg, samples, err = fl.FromWeighted(agg.Sum)
			if err != nil {
				return st, fmt.Errorf("round %d: %w", round, err)
			}
			rd.Samples = samples
			rd.Participants = sortedKeys(agg.Rows)
		} else {
			pleft := map[string]outcome{}
			got := r.each(ctx, comp, StepPlain, round, live, r.timeout(), func(Target) (any, error) { return PlainParams{Round: round}, nil }, nil, pleft)
			var ups []fl.Update
			for _, id := range sortedKeys(got) {
				var pr PlainResult
				if err := json.Unmarshal(got[id].Result, &pr); err != nil {
					rd.Dropped[id] = "a malformed update"
					continue
				}
				w, err := bytesFloats(pr.Weights)
				if err != nil {
					rd.Skipped[id] = err.Error()
					continue
				}
				ups = append(ups, fl.Update{Node: id, Weights: w, Samples: pr.Samples})
			}
			for n, o := range pleft {
				rd.Dropped[n] = o.String()
			}
			var skipped map[string]string
			var err error
			avg, skipped, err = fl.FedAvg(ups, len(global))
			if err != nil {
				return st, fmt.Errorf("round %d: %w", round, err)
			}
			for n, why := range skipped {
				rd.Skipped[n] = why
			}
			for _, u := range ups {
				if _, bad := skipped[u.Node]; !bad {
					rd.Participants = append(rd.Participants, u.Node)
					rd.Samples += u.Samples
				}
			}
			sort.Strings(rd.Participants)
			if len(rd.Participants) < need {
				return st, fmt.Errorf("%w: round %d: %d usable updates, %d needed", ErrTooFew, round, len(rd.Participants), need)
			}
		}
		if lossW > 0 {
			l := lossSum / lossW
			rd.Loss = &l
		}
		w, err := EncodeWeights(template, avg)
		if err != nil {
			return st, err
		}
		global = avg
		st.Weights = w
		rd.Seconds = time.Since(t0).Seconds()
		if len(rd.Dropped) == 0 {
			rd.Dropped = nil
		}
		if len(rd.Skipped) == 0 {
			rd.Skipped = nil
		}
		st.Rounds = append(st.Rounds, rd)
		if progress != nil {
			progress(st)
		}
	}
	return st, nil
}

// checkFiles fills in and checks the digests of a program's files.
func checkFiles(fs []Program) error {
	for i := range fs {
		f := &fs[i]
		if f.Name == "" || len(f.Content) == 0 {
			return errors.New("program files: give each one's name and content")
		}
		sum := sha256.Sum256(f.Content)
		d := "sha256:" + hex.EncodeToString(sum[:])
		if f.Digest == "" {
			f.Digest = d
		}
		if f.Digest != d {
			return fmt.Errorf("program file %s: the digest does not match the content", f.Name)
		}
	}
	return nil
}
