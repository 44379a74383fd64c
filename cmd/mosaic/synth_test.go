package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
	"github.com/mosaic-imaging/mosaic/internal/synth"
)

func runSynth(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"synth"}, args...), func(string) string { return "" },
		strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestSynthWritesCohort(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cohort")
	code, stdout, stderr := runSynth(t, "--out", dir, "--patients", "3", "--seed", "1")
	if code != exitOK {
		t.Fatalf("exit %d, want 0; stderr:\n%s", code, stderr)
	}
	raw, err := os.ReadFile(filepath.Join(dir, synth.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var m synth.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m.Patients != 3 || m.Seed != 1 || m.Instances == 0 {
		t.Errorf("manifest: %d patients, seed %d, %d instances; want 3 patients, seed 1", m.Patients, m.Seed, m.Instances)
	}
	if _, err := os.Stat(filepath.Join(dir, synth.ClinicalFile)); err != nil {
		t.Error(err)
	}
	first := filepath.Join(dir, "dicom", "0001", "01", "01", "0001.dcm")
	f, err := dicom.ReadFile(first, dicom.ReadOptions{})
	if err != nil {
		t.Fatalf("read %s: %v", first, err)
	}
	if id, _ := f.Dataset.String(dicom.NewTag(0x0010, 0x0020)); id == "" {
		t.Errorf("%s has no PatientID", first)
	}
	n := 0
	filepath.WalkDir(filepath.Join(dir, "dicom"), func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	})
	if n != m.Instances {
		t.Errorf("%d files written, manifest says %d", n, m.Instances)
	}
	if !strings.Contains(stdout, "wrote 3 patients") {
		t.Errorf("summary on stdout:\n%s", stdout)
	}
	if !strings.Contains(stderr, "synth: ") || !strings.Contains(stderr, "files") {
		t.Errorf("no progress on stderr:\n%s", stderr)
	}

	// A second run into the same directory refuses to mix cohorts.
	if code, _, stderr := runSynth(t, "--out", dir, "--patients", "3"); code != exitFailure {
		t.Errorf("second run: exit %d, want %d; stderr:\n%s", code, exitFailure, stderr)
	}
}

func TestSynthUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--patients", "3"},
		{"--out", dir, "--patients", "0"},
		{"--out", dir, "--patients", "-2"},
		{"--out", dir, "--size", "huge"},
		{"--out", dir, "--ct-matrix", "7"},
		{"--out", dir, "--seed", "x"},
		{"--out", dir, "extra"},
	} {
		code, stdout, stderr := runSynth(t, args...)
		if code != exitUsage {
			t.Errorf("synth %v: exit %d, want %d; stderr:\n%s", args, code, exitUsage, stderr)
		}
		if stdout != "" || stderr == "" {
			t.Errorf("synth %v: stdout %q, stderr %q", args, stdout, stderr)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("usage errors wrote %d entries into the output directory", len(entries))
	}
}

func TestSynthJSON(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cohort")
	code, stdout, stderr := runSynth(t, "--out", dir, "--patients", "2", "-o", "json")
	if code != exitOK {
		t.Fatalf("exit %d, want 0; stderr:\n%s", code, stderr)
	}
	if stderr != "" {
		t.Errorf("-o json printed progress on stderr: %q", stderr)
	}
	var got synthSummary
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, stdout)
	}
	raw, err := os.ReadFile(filepath.Join(dir, synth.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var m synth.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if got.Dir != dir || got.Patients != 2 || got.Instances != m.Instances || got.Instances == 0 {
		t.Errorf("summary dir %q, %d patients, %d instances; want %q, 2, %d", got.Dir, got.Patients, got.Instances, dir, m.Instances)
	}

	// -o was the output directory before: a path given to it is refused
	// with a pointer to --out, and nothing is written.
	other := filepath.Join(t.TempDir(), "other")
	code, _, stderr = runSynth(t, "-o", other, "--patients", "2")
	if code != exitUsage || !strings.Contains(stderr, "--out") {
		t.Errorf("synth -o PATH: exit %d, stderr %q; want a usage error naming --out", code, stderr)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Errorf("synth -o PATH wrote %s", other)
	}
}
