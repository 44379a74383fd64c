package fl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/synth"
)

// The example programs of examples/fl run here with Debian's
// /usr/bin/python3 (numpy, torch, pydicom), without a sandbox, in a
// temporary folder laid out as the training program contract says.

const python = "/usr/bin/python3"

func needPython(t *testing.T, modules ...string) {
	t.Helper()
	args := []string{"-c", "import " + strings.Join(append([]string{"numpy"}, modules...), ", ")}
	if out, err := exec.Command(python, args...).CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s with %v is needed in CI: %v %s", python, modules, err, out)
		}
		t.Skipf("%s with numpy %v not available: %v", python, modules, err)
	}
}

type run struct{ in, data, out string }

func newRun(t *testing.T) run {
	d := t.TempDir()
	r := run{filepath.Join(d, "in"), filepath.Join(d, "data"), filepath.Join(d, "out")}
	for _, p := range []string{r.in, filepath.Join(r.data, "tables"), r.out} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func (r run) params(t *testing.T, p map[string]any) {
	b, _ := json.Marshal(p)
	if err := os.WriteFile(filepath.Join(r.in, "params.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (r run) writeModel(t *testing.T, name string, ts []Tensor) {
	var b bytes.Buffer
	if err := WriteSafetensors(&b, ts); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.in, name), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (r run) exec(t *testing.T, program string) (stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, filepath.Join("..", "..", "examples", "fl", program))
	cmd.Env = append(os.Environ(), "MOSAIC_IN="+r.in, "MOSAIC_DATA="+r.data, "MOSAIC_OUT="+r.out)
	var e bytes.Buffer
	cmd.Stderr = &e
	err = cmd.Run()
	return e.String(), err
}

func (r run) readOut(t *testing.T, name string) []Tensor {
	f, err := os.Open(filepath.Join(r.out, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ts, err := ReadSafetensors(f)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func (r run) metrics(t *testing.T) map[string]float64 {
	b, err := os.ReadFile(filepath.Join(r.out, "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]float64
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func f32(t *testing.T, name string, shape []int64, v []float64) Tensor {
	d := make([]byte, 4*len(v))
	if err := EncodeFloats("F32", v, d); err != nil {
		t.Fatal(err)
	}
	return Tensor{Name: name, DType: "F32", Shape: shape, Data: d}
}

// writeTable writes a research table of n rows: a patient id, two
// numeric features (some missing), a 0/1 outcome drawn from a logistic
// model of them, and a text column.
func writeTable(t *testing.T, path string, n int, seed uint64) (complete int) {
	r := rand.New(rand.NewPCG(seed, 1))
	var b strings.Builder
	b.WriteString("pid,age_z,size_z,outcome,site\n")
	for i := range n {
		a, s := r.NormFloat64(), r.NormFloat64()
		y := 0
		if r.Float64() < 1/(1+math.Exp(-(1.5*a-s+0.3))) {
			y = 1
		}
		as := strconv.FormatFloat(a, 'f', 6, 64)
		if i%25 == 0 {
			as = "NA"
		} else {
			complete++
		}
		fmt.Fprintf(&b, "p%04d,%s,%.6f,%d,north\n", i, as, s, y)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return complete
}

func logregGlobal(t *testing.T, w []float64, bias float64) []Tensor {
	return []Tensor{f32(t, "weight", []int64{int64(len(w))}, w), f32(t, "bias", []int64{1}, []float64{bias})}
}

func TestLogregProgram(t *testing.T) {
	t.Parallel()
	needPython(t)
	train := func(mu float64) (run, []float64) {
		r := newRun(t)
		complete := writeTable(t, filepath.Join(r.data, "tables", "cohort.csv"), 400, 5)
		global := logregGlobal(t, []float64{0.1, -0.1}, 0)
		r.writeModel(t, "global.safetensors", global)
		r.params(t, map[string]any{"round": 1, "epochs": 30, "lr": 0.3, "mu": mu, "seed": 1,
			"table": "cohort", "target": "outcome", "features": []string{"age_z", "size_z"}, "unknown_key": "ignored"})
		if stderr, err := r.exec(t, "logreg.py"); err != nil {
			t.Fatalf("logreg.py: %v: %s", err, stderr)
		}
		up := r.readOut(t, "update.safetensors")
		if err := SameLayout(Infos(global), Infos(up)); err != nil {
			t.Fatalf("update does not match the global: %v", err)
		}
		m := r.metrics(t)
		if m["samples"] != float64(complete) || !(m["loss"] < m["loss_before"]) || m["accuracy"] < 0.6 {
			t.Errorf("metrics %v, want %d samples and a falling loss", m, complete)
		}
		v, err := Flatten(up)
		if err != nil {
			t.Fatal(err)
		}
		return r, v
	}
	r, plain := train(0)
	// The fitted weights point the way of the true model (1.5, -1).
	if !(plain[0] > 0.5 && plain[1] < -0.3) {
		t.Errorf("weights %v, want about (1.5, -1)", plain)
	}
	// FedProx's term keeps the update nearer the global.
	_, prox := train(3)
	dist := func(v []float64) float64 { return math.Hypot(math.Hypot(v[0]-0.1, v[1]+0.1), v[2]) }
	if !(dist(prox) < dist(plain)/2) {
		t.Errorf("FedProx update %v is not nearer the global than FedAvg's %v", prox, plain)
	}

	// Validation on the trained model: scores.csv into NodeValidation.
	upd, _ := os.ReadFile(filepath.Join(r.out, "update.safetensors"))
	if err := os.WriteFile(filepath.Join(r.in, "model.safetensors"), upd, 0o644); err != nil {
		t.Fatal(err)
	}
	if stderr, err := r.exec(t, "validate_logreg.py"); err != nil {
		t.Fatalf("validate_logreg.py: %v: %s", err, stderr)
	}
	f, err := os.Open(filepath.Join(r.out, "scores.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	scores, labels, err := ReadScores(f, 100000)
	if err != nil {
		t.Fatal(err)
	}
	plan, _ := NewPlan([]float64{0.2, 0.4, 0.5, 0.6, 0.8}, 5)
	sup, err := Suppress(scores, labels, plan, 10)
	if err != nil {
		t.Fatal(err)
	}
	coarse, _ := plan.Coarsen(sup)
	part, err := NodeValidationPlan(scores, labels, coarse, 10)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Merge(part)
	if err != nil {
		t.Fatal(err)
	}
	if res.N != float64(len(scores)) || res.AUC < 0.7 {
		t.Errorf("validation of the trained model: n %v AUC %v", res.N, res.AUC)
	}
}

func TestLogregProgramRefusesBadInput(t *testing.T) {
	t.Parallel()
	needPython(t)
	for name, c := range map[string]struct {
		global []Tensor
		params map[string]any
		want   string
	}{
		"wrong shape":     {logregGlobal(t, []float64{0, 0, 0}, 0), nil, "shape"},
		"missing tensor":  {[]Tensor{f32(t, "weight", []int64{2}, []float64{0, 0})}, nil, "tensors"},
		"text feature":    {nil, map[string]any{"features": []string{"age_z", "site"}}, "not numeric"},
		"unknown column":  {nil, map[string]any{"features": []string{"age_z", "nope"}}, "no column"},
		"unknown table":   {nil, map[string]any{"table": "other"}, "not in the snapshot"},
		"non-binary":      {nil, map[string]any{"target": "size_z", "features": []string{"age_z", "age_z"}}, "0 or 1"},
		"negative epochs": {nil, map[string]any{"epochs": -1}, "out of range"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := newRun(t)
			writeTable(t, filepath.Join(r.data, "tables", "cohort.csv"), 100, 2)
			g := c.global
			if g == nil {
				g = logregGlobal(t, []float64{0, 0}, 0)
			}
			r.writeModel(t, "global.safetensors", g)
			p := map[string]any{"table": "cohort", "target": "outcome", "features": []string{"age_z", "size_z"}}
			for k, v := range c.params {
				p[k] = v
			}
			r.params(t, p)
			stderr, err := r.exec(t, "logreg.py")
			if err == nil {
				t.Fatal("exit 0")
			}
			if !strings.Contains(stderr, c.want) {
				t.Errorf("stderr %q, want %q", stderr, c.want)
			}
			if strings.Contains(stderr, "p00") || strings.Contains(stderr, "north") {
				t.Errorf("stderr carries data values: %q", stderr)
			}
			if _, err := os.Stat(filepath.Join(r.out, "update.safetensors")); err == nil {
				t.Error("an update was written")
			}
		})
	}
}

func cnnGlobal(t *testing.T, fcIn int64) []Tensor {
	r := rand.New(rand.NewPCG(9, 9))
	rnd := func(n int, s float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = s * r.NormFloat64()
		}
		return v
	}
	return []Tensor{
		f32(t, "conv1.weight", []int64{8, 1, 3, 3}, rnd(72, 0.3)),
		f32(t, "conv1.bias", []int64{8}, rnd(8, 0.01)),
		f32(t, "conv2.weight", []int64{16, 8, 3, 3}, rnd(1152, 0.1)),
		f32(t, "conv2.bias", []int64{16}, rnd(16, 0.01)),
		f32(t, "fc.weight", []int64{1, fcIn}, rnd(int(fcIn), 0.03)),
		f32(t, "fc.bias", []int64{1}, []float64{0}),
	}
}

// TestCNNProgram trains the small CNN for one round on a few synthetic
// DICOM slices (labels: CT or not), then gives it a global of the wrong
// shape, which it refuses.
func TestCNNProgram(t *testing.T) {
	t.Parallel()
	needPython(t, "torch", "pydicom")
	r := newRun(t)
	if _, err := synth.Generate(context.Background(), synth.Options{Dir: filepath.Join(r.data, "cohort"), Patients: 2, Seed: 4, CTMatrix: 32}); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(r.data, "cohort", synth.DICOMDir), filepath.Join(r.data, "dicom")); err != nil {
		t.Fatal(err)
	}
	global := cnnGlobal(t, 16*8*8)
	r.writeModel(t, "global.safetensors", global)
	r.params(t, map[string]any{"round": 1, "epochs": 2, "lr": 0.05, "mu": 0.01, "seed": 2, "size": 32, "max_images": 48,
		"label": map[string]any{"attribute": "Modality", "positive": "CT"}})
	start := time.Now()
	stderr, err := r.exec(t, "cnn.py")
	if err != nil {
		t.Fatalf("cnn.py: %v: %s", err, stderr)
	}
	t.Logf("one CNN round on 48 slices: %v", time.Since(start))
	up := r.readOut(t, "update.safetensors")
	if err := SameLayout(Infos(global), Infos(up)); err != nil {
		t.Fatal(err)
	}
	m := r.metrics(t)
	if m["samples"] < 10 || m["samples"] > 48 || math.IsNaN(m["loss"]) {
		t.Errorf("metrics %v", m)
	}
	a, _ := Flatten(global)
	b, _ := Flatten(up)
	changed := false
	for i := range a {
		changed = changed || a[i] != b[i]
	}
	if !changed {
		t.Error("training changed no weight")
	}

	// A global of the wrong shape: exit non-zero, no update.
	os.Remove(filepath.Join(r.out, "update.safetensors"))
	r.writeModel(t, "global.safetensors", cnnGlobal(t, 100))
	stderr, err = r.exec(t, "cnn.py")
	if err == nil || !strings.Contains(stderr, "shape") {
		t.Fatalf("wrong-shape global: %v %q", err, stderr)
	}
	if _, err := os.Stat(filepath.Join(r.out, "update.safetensors")); err == nil {
		t.Error("an update was written for a wrong-shape global")
	}
}

// TestPythonClientSafetensors: a file Go writes (F16, F32, F64, I64,
// metadata, an empty tensor) reads in mosaic_fl.py and writes back the
// same tensors, which Go reads byte for byte; logreg.py init writes a
// global Go reads.
func TestPythonClientSafetensors(t *testing.T) {
	t.Parallel()
	needPython(t)
	d := t.TempDir()
	in := sampleTensors()
	var b bytes.Buffer
	w, err := NewWriter(&b, Infos(in), map[string]string{"round": "2"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ts := range in {
		if err := w.WriteTensor(ts); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "a.safetensors"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `import sys; sys.path.insert(0, "../../clients/python"); import mosaic_fl as fl
t, meta = fl.read_safetensors(sys.argv[1] + "/a.safetensors")
assert meta == {"round": "2"}, meta
fl.write_safetensors(sys.argv[1] + "/b.safetensors", t, meta)
print(",".join(t))`
	out, err := exec.Command(python, "-c", script, d).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v %s", err, out)
	}
	f, err := os.Open(filepath.Join(d, "b.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	back, err := ReadSafetensors(f)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Tensor{}
	for _, ts := range back {
		byName[ts.Name] = ts
	}
	for _, ts := range in {
		got := byName[ts.Name]
		if got.DType != ts.DType || !slices.Equal(got.Shape, ts.Shape) || !bytes.Equal(got.Data, ts.Data) {
			t.Errorf("tensor %s back from Python: %+v, want %+v", ts.Name, got, ts)
		}
	}
	// A file Python cannot trust: refused with exit 1.
	os.WriteFile(filepath.Join(d, "a.safetensors"), b.Bytes()[:len(b.Bytes())-2], 0o644)
	if out, err := exec.Command(python, "-c", script, d).CombinedOutput(); err == nil {
		t.Errorf("a truncated file read in Python: %s", out)
	}

	cmd := exec.Command(python, filepath.Join("..", "..", "examples", "fl", "logreg.py"), "init", "--features", "3", "--out", filepath.Join(d, "g.safetensors"), "--dtype", "F64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("logreg.py init: %v %s", err, out)
	}
	g, err := os.Open(filepath.Join(d, "g.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	gt, err := ReadSafetensors(g)
	if err != nil {
		t.Fatal(err)
	}
	want := []TensorInfo{{Name: "weight", DType: "F64", Shape: []int64{3}}, {Name: "bias", DType: "F64", Shape: []int64{1}}}
	if err := SameLayout(want, Infos(gt)); err != nil {
		t.Error(err)
	}
}
