package compute

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/mosaic-imaging/mosaic/internal/airlock"
	"github.com/mosaic-imaging/mosaic/internal/executor"
	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/fl"
	"github.com/mosaic-imaging/mosaic/internal/permit"
)

// Limits of what a run writes that the node reads.
const (
	maxUpdateBytes  = 1 << 30
	maxMetricsBytes = 64 << 10
	maxScoresBytes  = 1 << 30
)

// checkProgram refuses a program that is not on the node's allow-list
// or whose content does not match its digest.
func (n *Node) checkProgram(p Program) error {
	if n.env.Executor() == nil {
		return refuse(fed.RefusedExecutor, "the node runs no programs")
	}
	if len(p.Files) > 16 {
		return refuse(fed.RefusedInvalid, "a program brings at most 16 files")
	}
	for _, f := range p.Files {
		if len(f.Files) > 0 || f.Name == p.Name {
			return refuse(fed.RefusedInvalid, "a program's files are plain files beside it")
		}
		if err := n.checkFile(f); err != nil {
			return err
		}
	}
	return n.checkFile(p)
}

// checkFile checks one file of a program against its digest and the
// allow-list.
func (n *Node) checkFile(p Program) error {
	sum := sha256.Sum256(p.Content)
	d := "sha256:" + hex.EncodeToString(sum[:])
	if p.Digest != d {
		return refuse(fed.RefusedTool, "the program's content does not match its digest")
	}
	if !slices.Contains(n.env.AllowPrograms(), d) {
		return refuse(fed.RefusedTool, "the program %s is not on this node's allow-list", d)
	}
	base := filepath.Base(p.Name)
	if base != p.Name || base == "." || base == ".." || base == "" || strings.ContainsAny(base, "/\\") {
		return refuse(fed.RefusedInvalid, "the program's name must be a plain file name")
	}
	return nil
}

// command is how a program file runs.
func command(name string) []string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".py":
		return []string{"/usr/bin/python3", "/prog/" + name}
	case ".r":
		return []string{"/usr/bin/Rscript", "/prog/" + name}
	}
	return []string{"/prog/" + name}
}

// runDir is one run's folders.
type runDir struct{ root, in, data, out, prog string }

// prepare makes a run's folders with the program, the inputs and every
// research table of the permit's snapshot.
func (n *Node) prepare(ctx context.Context, claims permit.Claims, prog Program, inputs map[string][]byte) (*runDir, error) {
	root, err := os.MkdirTemp(n.env.WorkDir(), "compute-")
	if err != nil {
		return nil, fmt.Errorf("the node could not make a run folder")
	}
	d := &runDir{root: root, in: filepath.Join(root, "in"), data: filepath.Join(root, "data"), out: filepath.Join(root, "out"), prog: filepath.Join(root, "prog")}
	for _, p := range []string{d.in, filepath.Join(d.data, "tables"), d.out, d.prog} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			os.RemoveAll(root)
			return nil, fmt.Errorf("the node could not make a run folder")
		}
	}
	if err := os.WriteFile(filepath.Join(d.prog, prog.Name), prog.Content, 0o755); err != nil {
		os.RemoveAll(root)
		return nil, err
	}
	for _, f := range prog.Files {
		if err := os.WriteFile(filepath.Join(d.prog, f.Name), f.Content, 0o644); err != nil {
			os.RemoveAll(root)
			return nil, err
		}
	}
	for name, b := range inputs {
		if err := os.WriteFile(filepath.Join(d.in, name), b, 0o644); err != nil {
			os.RemoveAll(root)
			return nil, err
		}
	}
	names, err := n.env.Tables(ctx, claims.Dataset)
	if err != nil {
		os.RemoveAll(root)
		return nil, fmt.Errorf("the dataset's tables: %w", err)
	}
	for _, name := range names {
		t, err := n.env.Table(ctx, claims.Dataset, claims.Snapshot, name)
		if err != nil {
			os.RemoveAll(root)
			return nil, fmt.Errorf("table %s: %w", name, err)
		}
		f, err := os.Create(filepath.Join(d.data, "tables", name+".csv"))
		if err != nil {
			os.RemoveAll(root)
			return nil, err
		}
		werr := t.WriteCSV(f)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			os.RemoveAll(root)
			return nil, fmt.Errorf("table %s: %w", name, werr)
		}
	}
	return d, nil
}

// run runs a prepared program in the node's executor.
func (n *Node) run(ctx context.Context, comp string, d *runDir, prog Program) error {
	ex := n.env.Executor()
	spec := executor.Spec{
		Job:     comp,
		Command: command(prog.Name),
		Env:     map[string]string{"MOSAIC_IN": "/in", "MOSAIC_DATA": "/data", "MOSAIC_OUT": "/out"},
		Inputs:  []executor.Mount{{Host: d.in, Target: "/in"}, {Host: d.data, Target: "/data"}, {Host: d.prog, Target: "/prog"}},
		Output:  d.out,
	}
	lines := 0
	res, err := ex.Run(ctx, spec, func(string) { lines++ })
	if err != nil {
		return fmt.Errorf("the program could not run: %w", err)
	}
	if res.Killed != "" {
		return fmt.Errorf("the program was stopped: limit %s", res.Killed)
	}
	if res.ExitCode != 0 {
		// Its log stays at the node: it may carry data.
		return fmt.Errorf("the program failed with exit code %d (%d log lines kept at the node)", res.ExitCode, lines)
	}
	return nil
}

func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", filepath.Base(path), max)
	}
	return b, nil
}

func (n *Node) train(ctx context.Context, claims permit.Claims, body fed.ComputeBody, p TrainParams) (any, error) {
	if err := n.checkProgram(p.Program); err != nil {
		return nil, err
	}
	if p.Plain && p.DP != nil {
		// A node's update carries only its share of the noise: in the
		// clear it is not protected as the accountant counts.
		return nil, refuse(fed.RefusedInvalid, "an update under differential privacy leaves only under secure aggregation")
	}
	if p.Images {
		return nil, refuse(fed.RefusedInvalid, "training on images is not offered by this node yet")
	}
	if len(p.Weights) == 0 && p.WeightsDigest != "" {
		w, err := n.takeWeights(claims, body, p.WeightsDigest, p.WeightsLength)
		if err != nil {
			return nil, err
		}
		p.Weights = w
	}
	global, err := fl.ReadSafetensors(bytes.NewReader(p.Weights))
	if err != nil {
		return nil, refuse(fed.RefusedInvalid, "the global weights: %v", err)
	}
	gv, err := Flatten(global)
	if err != nil {
		return nil, refuse(fed.RefusedInvalid, "%s", err.Error())
	}
	params := map[string]any{}
	for k, v := range p.Params {
		params[k] = v
	}
	params["round"] = body.Round
	pj, err := json.Marshal(params)
	if err != nil {
		return nil, refuse(fed.RefusedInvalid, "the parameters cannot be written as JSON")
	}
	d, err := n.prepare(ctx, claims, p.Program, map[string][]byte{"global.safetensors": p.Weights, "params.json": pj})
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(d.root)
	if err := n.run(ctx, body.Computation, d, p.Program); err != nil {
		return nil, err
	}
	ub, err := readLimited(filepath.Join(d.out, "update.safetensors"), maxUpdateBytes)
	if err != nil {
		return nil, fmt.Errorf("the program wrote no readable update.safetensors")
	}
	upd, err := fl.ReadSafetensors(bytes.NewReader(ub))
	if err != nil {
		return nil, refuse(fed.RefusedAirlock, "update.safetensors: %v", err)
	}
	if !sameLayout(global, upd) {
		return nil, refuse(fed.RefusedAirlock, "the update's tensors differ from the global weights' names, shapes or types")
	}
	uv, err := Flatten(upd)
	if err != nil {
		return nil, refuse(fed.RefusedAirlock, "%s", err.Error())
	}
	for _, x := range uv {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, refuse(fed.RefusedAirlock, "the update holds values that are not finite")
		}
	}
	mb, err := readLimited(filepath.Join(d.out, "metrics.json"), maxMetricsBytes)
	if err != nil {
		return nil, fmt.Errorf("the program wrote no readable metrics.json")
	}
	var metrics map[string]float64
	if err := json.Unmarshal(mb, &metrics); err != nil {
		return nil, refuse(fed.RefusedAirlock, "metrics.json must be an object of numbers")
	}
	samples := metrics["samples"]
	if samples < float64(n.env.Floor()) || samples <= 0 || math.IsNaN(samples) {
		return nil, refuse(fed.RefusedFloor, "the update was trained on fewer rows than the node's floor")
	}
	for k, v := range metrics {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			delete(metrics, k)
		}
	}
	released := n.releaseMetrics(body.Computation, metrics, samples, len(gv))
	if p.DP != nil {
		uv, err = privatise(gv, uv, *p.DP, max(p.MinSurvivors, 1))
		if err != nil {
			return nil, refuse(fed.RefusedInvalid, "%s", err.Error())
		}
		// Under differential privacy every node counts once.
		samples = 1
	}
	u := &update{comp: body.Computation, permit: claims.ID, round: body.Round, weights: uv, samples: samples, plain: p.Plain, created: n.now()}
	if p.DP != nil {
		u.minSurvivors = max(p.MinSurvivors, 1)
	}
	n.keep(u)
	return TrainResult{Samples: samples, Metrics: released}, nil
}

// privatise clips the update's change to dp.Clip (L2) and adds this
// node's share of Gaussian noise (fl's NodeSigma for at least
// minSurvivors nodes in the sum), so that the sum carries the full noise.
func privatise(global, upd []float64, dp fl.DP, minSurvivors int) ([]float64, error) {
	if err := dp.Validate(); err != nil {
		return nil, err
	}
	c, _, err := fl.ClipUpdate(upd, global, dp.Clip)
	if err != nil {
		return nil, err
	}
	r, err := fl.NewNoiseSource()
	if err != nil {
		return nil, err
	}
	if err := fl.AddNoise(c, dp.NodeSigma(minSurvivors), r); err != nil {
		return nil, err
	}
	return c, nil
}

// readScores reads /out/scores.csv (score,label).
func readScores(b []byte) (scores, labels []float64, err error) {
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = 2
	head, err := r.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("scores.csv: no header")
	}
	si, li := -1, -1
	for i, h := range head {
		switch strings.TrimSpace(h) {
		case "score":
			si = i
		case "label":
			li = i
		}
	}
	if si < 0 || li < 0 {
		return nil, nil, fmt.Errorf("scores.csv: the header must be score,label")
	}
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("scores.csv: line %d is malformed", line)
		}
		s, err1 := strconv.ParseFloat(strings.TrimSpace(rec[si]), 64)
		l, err2 := strconv.ParseFloat(strings.TrimSpace(rec[li]), 64)
		if err1 != nil || err2 != nil || (l != 0 && l != 1) || math.IsNaN(s) {
			return nil, nil, fmt.Errorf("scores.csv: line %d is not a score and a 0/1 label", line)
		}
		scores, labels = append(scores, s), append(labels, l)
	}
	return scores, labels, nil
}

// releaseMetrics passes a round's metrics through the node's airlock as
// the fit statistics of a model (its rows and residual degrees of
// freedom checked: rows less the model's parameters); it returns them
// when released, none otherwise.
func (n *Node) releaseMetrics(comp string, metrics map[string]float64, samples float64, params int) map[string]float64 {
	names := make([]string, 0, len(metrics))
	for k := range metrics {
		if k != "samples" {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		return nil
	}
	df := samples - float64(params)
	m := airlock.Model{Output: airlock.FormatModel, Version: airlock.FormatVersion, Title: "training metrics", N: &samples, DFResidual: &df}
	for _, k := range names {
		v := metrics[k]
		m.Coefficients = append(m.Coefficients, airlock.Coefficient{Term: k, Estimate: &v})
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	if v := airlock.Check(n.env.Airlock(), airlock.Permissions{}, airlock.Output{Job: comp, Name: "metrics.json", Data: b}); v.Decision != airlock.Release {
		return nil
	}
	out := map[string]float64{}
	for _, k := range names {
		out[k] = metrics[k]
	}
	return out
}
