package compute

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/executor"
	"github.com/mosaic-imaging/mosaic/internal/fl"
	"github.com/mosaic-imaging/mosaic/internal/sqldb"
)

func readProgram(t testing.TB, name string) Program {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return Program{Name: name, Content: b, Digest: "sha256:" + hex.EncodeToString(sum[:])}
}

// withExecutor gives every node the bubblewrap executor allowing progs.
func withExecutor(t testing.TB, a *memAsker, progs ...Program) {
	t.Helper()
	if _, err := exec.LookPath("bwrap"); err != nil {
		needCI(t, "bubblewrap is not installed (apt-get install bubblewrap)")
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import numpy").Run(); err != nil {
		needCI(t, "Debian's python3 with numpy is needed (apt-get install python3-numpy)")
	}
	var allow []string
	for _, p := range progs {
		allow = append(allow, p.Digest)
	}
	// numpy finds its BLAS through /etc/alternatives; the executor makes
	// /etc readable by root only when it shows /etc/alternatives alone, so
	// the test shows the host's /etc (reported to the executor's owner).
	ex, err := executor.New(executor.Config{Kind: executor.Process, AllowPrograms: allow})
	if err != nil {
		needCI(t, "the process executor is not available: "+err.Error())
	}
	for _, e := range a.envs {
		e.ex, e.allow = ex, allow
	}
}

func initialWeights(t testing.TB, n int) []byte {
	t.Helper()
	coef := make([]float64, n)
	w, err := EncodeWeights([]fl.Tensor{{Name: "coef", DType: "F64", Shape: []int64{int64(n)}}, {Name: "bias", DType: "F64", Shape: []int64{1}}}, append(coef, 0))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func weightsOf(t testing.TB, b []byte) []float64 {
	t.Helper()
	ts, err := fl.ReadSafetensors(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	v, err := Flatten(ts)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestLearnSecureEqualsPlain: rounds of FedAvg of a numpy logistic
// regression run by bubblewrap at three nodes give the same weights
// under secure aggregation as in the clear, and the same as a pooled
// average of the nodes' updates; a node lost in a round drops and the
// round goes on; a NaN update is refused at its node and the round goes
// on without it, saying so.
func TestLearnSecureEqualsPlain(t *testing.T) {
	prog := readProgram(t, "logreg.py")
	csvs := []string{synth(31, 300, 0), synth(32, 200, 0.5), synth(33, 250, -0.5)}
	a, targets := federation(t, 10, map[string]string{"clin": csvs[0]}, map[string]string{"clin": csvs[1]}, map[string]string{"clin": csvs[2]})
	withExecutor(t, a, prog)
	params := map[string]any{"table": "clin", "target": "outcome", "features": []string{"x", "z"}, "epochs": 5, "lr": 0.05}
	spec := LearningSpec{Name: "logreg", Program: prog, Weights: initialWeights(t, 2), Rounds: 3, Params: params}
	r := &Runner{Ask: a, Researcher: "rosa"}
	secure, err := r.Learn(context.Background(), "fl-1", spec, targets, 0, nil, nil)
	if err != nil {
		t.Fatalf("secure: %v", err)
	}
	no := false
	spec.Secure = &no
	plain, err := r.Learn(context.Background(), "fl-2", spec, targets, 0, nil, nil)
	if err != nil {
		t.Fatalf("plain: %v", err)
	}
	ws, wp := weightsOf(t, secure.Weights), weightsOf(t, plain.Weights)
	for i := range ws {
		if math.Abs(ws[i]-wp[i]) > 1e-9 || ws[i] == 0 {
			t.Errorf("weight %d: secure %g, plain %g", i, ws[i], wp[i])
		}
	}
	if len(secure.Rounds) != 3 || secure.Rounds[2].Samples != 750 || len(secure.Rounds[2].Participants) != 3 || secure.Rounds[0].Loss == nil {
		t.Errorf("rounds %+v", secure.Rounds)
	}
	if !(*secure.Rounds[2].Loss < *secure.Rounds[0].Loss) {
		t.Errorf("loss did not fall: %g then %g", *secure.Rounds[0].Loss, *secure.Rounds[2].Loss)
	}

	// A node lost in a round drops; the round goes on with two of three.
	spec.Secure = nil
	spec.Rounds = 1
	a.setDown("node3", StepTrain)
	st, err := r.Learn(context.Background(), "fl-3", spec, targets, 0, nil, nil)
	if err != nil {
		t.Fatalf("with a drop: %v", err)
	}
	if got := st.Rounds[0]; len(got.Participants) != 2 || !strings.HasPrefix(got.Dropped["node3"], "dropped") || got.Samples != 500 {
		t.Errorf("round with a drop: %+v", got)
	}
	a.setDown("node3", "")

	// A NaN update at node2 is refused there; the round goes on.
	a.envs["node2"].tables["poison"] = a.envs["node2"].tables["clin"]
	st, err = r.Learn(context.Background(), "fl-4", spec, targets, 0, nil, nil)
	if err != nil {
		t.Fatalf("with a NaN update: %v", err)
	}
	if got := st.Rounds[0]; len(got.Participants) != 2 || !strings.HasPrefix(got.Skipped["node2"], "airlock") {
		t.Errorf("round with a NaN update: %+v", got)
	}
	// In the clear too: refused at the node, skipped at the hub.
	spec.Secure = &no
	st, err = r.Learn(context.Background(), "fl-5", spec, targets, 0, nil, nil)
	if err != nil {
		t.Fatalf("plain with a NaN update: %v", err)
	}
	if got := st.Rounds[0]; len(got.Participants) != 2 || got.Skipped["node2"] == "" {
		t.Errorf("plain round with a NaN update: %+v", got)
	}
	// Two of three failing: the round fails and says so.
	a.setDown("node3", StepTrain)
	if _, err := r.Learn(context.Background(), "fl-6", spec, targets, 0, nil, nil); !errors.Is(err, ErrTooFew) {
		t.Errorf("two of three failing: %v", err)
	}
	delete(a.envs["node2"].tables, "poison")
	a.setDown("node3", "")

	// A program not on the allow-list is refused at every node.
	other := prog
	other.Content = append(bytes.Clone(prog.Content), '\n')
	sum := sha256.Sum256(other.Content)
	other.Digest = "sha256:" + hex.EncodeToString(sum[:])
	spec.Program = other
	if st, err := r.Learn(context.Background(), "fl-7", spec, targets, 0, nil, nil); err == nil || !strings.HasPrefix(st.Rounds[0].Skipped["node1"], "tool") {
		t.Errorf("a program off the allow-list: %v", err)
	}
}

// TestLearnDP: with differential privacy each round spends its ε in the
// ledger, shown per round and in total, and a round past the cap is
// refused.
func TestLearnDP(t *testing.T) {
	prog := readProgram(t, "logreg.py")
	a, targets := federation(t, 10, map[string]string{"clin": synth(41, 200, 0)}, map[string]string{"clin": synth(42, 200, 0)}, map[string]string{"clin": synth(43, 200, 0)})
	withExecutor(t, a, prog)
	db, err := sqldb.Open(context.Background(), filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dp := &fl.DP{Clip: 1, NoiseMultiplier: 1.1, Delta: 1e-5}
	one := fl.Epsilon(dp.NoiseMultiplier, 1, dp.Delta)
	two := fl.Epsilon(dp.NoiseMultiplier, 2, dp.Delta)
	ledger, err := fl.NewLedger(db, two+0.01)
	if err != nil {
		t.Fatal(err)
	}
	spec := LearningSpec{Name: "dp", Program: prog, Weights: initialWeights(t, 2), Rounds: 3, DP: dp,
		Params: map[string]any{"table": "clin", "target": "outcome", "features": []string{"x", "z"}, "epochs": 2, "lr": 0.05}}
	r := &Runner{Ask: a, Researcher: "rosa"}
	st, err := r.Learn(context.Background(), "dp-1", spec, targets, 0, ledger, nil)
	if err == nil || !strings.Contains(err.Error(), "round 3 refused") {
		t.Fatalf("the third round passed the cap: %v", err)
	}
	if len(st.Rounds) != 2 || !relClose(st.Rounds[0].Epsilon, one, 1e-12) || !relClose(st.Rounds[1].EpsilonTotal, two, 1e-9) {
		t.Errorf("rounds %+v, want ε %g then total %g", st.Rounds, one, two)
	}
	for _, v := range weightsOf(t, st.Weights) {
		if math.IsNaN(v) || v == 0 {
			t.Errorf("weights %v", weightsOf(t, st.Weights))
		}
	}
}

// TestLearningSpecCheck: malformed runs are refused with words before
// any node is asked; a model larger than one message is accepted.
func TestLearningSpecCheck(t *testing.T) {
	prog := Program{Name: "p.py", Content: []byte("print(1)\n")}
	ok := LearningSpec{Program: prog, Weights: initialWeights(t, 2), Rounds: 1}
	if err := ok.Check(); err != nil || ok.Algorithm != "fedavg" || ok.Program.Digest == "" {
		t.Fatalf("a good spec: %v %+v", err, ok)
	}
	// A model larger than one message is accepted: it travels in chunks.
	big := ok
	big.Weights = initialWeights(t, maxValues+1)
	if err := big.Check(); err != nil {
		t.Errorf("a large model: %v", err)
	}
	bad := []LearningSpec{
		{Program: prog, Weights: ok.Weights, Rounds: 0},
		{Program: prog, Weights: ok.Weights, Rounds: 1, Algorithm: "sgd"},
		{Program: prog, Weights: ok.Weights, Rounds: 1, Mu: 0.1},
		{Program: Program{Name: "p.py", Content: prog.Content, Digest: "sha256:00"}, Weights: ok.Weights, Rounds: 1},
		{Program: prog, Weights: []byte("not safetensors"), Rounds: 1},
		{Program: prog, Weights: ok.Weights, Rounds: 1, DP: &fl.DP{Clip: 0, NoiseMultiplier: 1, Delta: 1e-5}},
	}
	for i, s := range bad {
		if err := s.Check(); err == nil {
			t.Errorf("spec %d accepted", i)
		}
	}
}
