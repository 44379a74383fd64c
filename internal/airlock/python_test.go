package airlock

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestPythonClient runs clients/python/mosaic_output.py with Debian's
// /usr/bin/python3 (and numpy, which it accepts) to write one output of
// each kind, and checks that the airlock reads each as written and
// decides on it as the data says.
func TestPythonClient(t *testing.T) {
	python := "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is needed: %v", python, err)
		}
		t.Skipf("%s not installed", python)
	}
	client, err := filepath.Abs("../../clients/python")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	script := `
import math, sys
import mosaic_output as mo
try:
    import numpy as np
except ImportError:
    np = None

# 30 women and 25 men in two stages; one stage has 4 men.
sex = ["F"] * 30 + ["M"] * 25
stage = ["I"] * 12 + ["II"] * 18 + ["I"] * 4 + ["II"] * 21
mo.frequency_table("freq_small.json", {"sex": sex, "stage": stage})
mo.frequency_table("freq_ok.json", {"sex": sex})

# Doses: one patient's dose dominates group F.
dose = [1.0] * 29 + [500.0] + [10.0] * 25
mo.magnitude_table("dose_dominated.json", {"sex": sex}, dose, statistic="sum", variable="dose")
even = [float(10 + i % 5) for i in range(55)]
if np is not None:
    even = np.array(even)
mo.magnitude_table("dose_mean.json", {"sex": sex}, even, statistic="mean", variable="dose")

mo.model("model_ok.json", ["(Intercept)", "age"], [1.5, 0.02], n=55, df_residual=53,
         std_errors=[0.1, float("nan")], family="gaussian", formula="y ~ age")
mo.model("model_small.json", ["(Intercept)", "age"], [1.5, 0.02], n=11, df_residual=9)
mo.stats("stats.json", [mo.stat("age", [50 + i for i in range(20)], "mean"), mo.stat("n", range(20), "count")])
mo.write_text("notes.txt", "fitted without problems\n")
mo.write_csv("rows.csv", ["visit", "score"], [["2024-01-02", 3], ["2024-02-03", 4], ["2024-03-09", 5]])
try:
    mo.write_text("../escape.txt", "x")
    sys.exit("escaped the output folder")
except ValueError:
    pass
`
	cmd := exec.Command(python, "-c", script)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+client, "MOSAIC_OUTPUT_DIR="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python: %v\n%s", err, b)
	}
	want := map[string]struct {
		decision Decision
		check    string
		typ      string
	}{
		"freq_small.json":     {Refuse, "threshold", FormatTable},
		"freq_ok.json":        {Release, "", FormatTable},
		"dose_dominated.json": {Refuse, "dominance", FormatTable},
		"dose_mean.json":      {Release, "", FormatTable},
		"model_ok.json":       {Release, "", FormatModel},
		"model_small.json":    {Refuse, "degrees-of-freedom", FormatModel},
		"stats.json":          {Release, "", FormatStats},
		"notes.txt":           {Review, "unstructured", "text"},
		"rows.csv":            {Refuse, "row-level", "csv"},
	}
	for name, w := range want {
		data, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		v := Check(Policy{}, Permissions{}, Output{Job: "j", Name: name, Data: data})
		if v.Type != w.typ {
			t.Errorf("%s: type %q, want %q", name, v.Type, w.typ)
		}
		t.Run(name, func(t *testing.T) { wantDecision(t, v, w.decision, w.check) })
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(out), "escape.txt")); err == nil {
		t.Fatal("a file was written outside the output folder")
	}
}
