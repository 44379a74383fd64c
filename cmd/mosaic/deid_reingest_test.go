package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/synth"
)

// TestDeidThenIngest follows the data holder's first path: de-identify a
// folder with 'mosaic deid' and the clinical table with 'mosaic deid
// clinical', then ingest the de-identified tree into a node that has the
// same site key and import the de-identified table. Nothing is
// pseudonymised twice: every clinical row joins its images and the node
// counts as many patients as the cohort has. A node with another key
// refuses the tree, saying why.
func TestDeidThenIngest(t *testing.T) {
	tmp := t.TempDir()
	cohort := filepath.Join(tmp, "cohort")
	m, err := synth.Generate(context.Background(), synth.Options{Dir: cohort, Patients: 6, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(tmp, "keys", "site.key")
	out := filepath.Join(tmp, "deid")
	if code, _, stderr := runMosaic(t, "deid", "-q", "--policy", "eucaim", "--site-key", key, "--out", out, filepath.Join(cohort, synth.DICOMDir)); code != exitOK {
		t.Fatalf("deid: exit %d\n%s", code, stderr)
	}
	clinical := filepath.Join(tmp, "clinical-deid.csv")
	if code, _, stderr := runMosaic(t, "deid", "clinical", "--policy", "eucaim", "--site-key", key, "--id-column", "patient_id",
		"--issuer-column", "issuer_of_patient_id", "--date-columns", "diagnosis_date,last_contact_date",
		"--out", clinical, filepath.Join(cohort, synth.ClinicalFile)); code != exitOK {
		t.Fatalf("deid clinical: exit %d\n%s", code, stderr)
	}

	node := func(data, key string, args ...string) (int, string, string) {
		t.Helper()
		return runMosaic(t, append(args, "--data", data, "--site-key", key)...)
	}
	data := filepath.Join(tmp, "node")
	if code, _, stderr := node(data, key, "node", "init"); code != 0 {
		t.Fatalf("node init: %d %s", code, stderr)
	}
	if code, _, stderr := runMosaic(t, "node", "dataset", "create", "--data", data, "--id", "d", "--title", "D"); code != 0 {
		t.Fatalf("dataset create: %d %s", code, stderr)
	}
	want := m.Instances - len(m.Risky) // what 'mosaic deid' let through
	code, stdout, stderr := node(data, key, "node", "ingest", "--dataset", "d", "-q", out)
	if code != 0 || !strings.Contains(stdout, "stored     "+itoa(want)) || !strings.Contains(stdout, "rejected   0") {
		t.Fatalf("ingest of the de-identified tree: exit %d, want %d stored and none rejected\n%s%s", code, want, stdout, stderr)
	}
	code, stdout, stderr = node(data, key, "node", "import-clinical", "--dataset", "d", "--json", clinical)
	if code != 0 {
		t.Fatalf("import-clinical: %d %s %s", code, stdout, stderr)
	}
	var rep struct {
		Rows, Imported, Skipped int
		Join                    struct {
			ClinicalPatients  int      `json:"clinical_patients"`
			ImagedPatients    int      `json:"imaged_patients"`
			ClinicalNoImages  []string `json:"clinical_without_images"`
			ImagesNoClinical  []string `json:"images_without_clinical"`
			ClinicalNoImagesN int      `json:"clinical_without_images_count"`
			ImagesNoClinicalN int      `json:"images_without_clinical_count"`
		}
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("import-clinical report: %v\n%s", err, stdout)
	}
	j := rep.Join
	if rep.Rows != m.Patients || rep.Imported != m.Patients || rep.Skipped != 0 ||
		j.ImagedPatients != m.Patients || j.ClinicalPatients != m.Patients ||
		len(j.ClinicalNoImages) != 0 || len(j.ImagesNoClinical) != 0 || j.ClinicalNoImagesN != 0 || j.ImagesNoClinicalN != 0 {
		t.Errorf("clinical import: %+v; want %d patients, every row joined", rep, m.Patients)
	}

	// Either path gives the same objects: the original files are now
	// duplicates of what the de-identified tree brought.
	code, stdout, _ = node(data, key, "node", "ingest", "--dataset", "d", "-q", filepath.Join(cohort, synth.DICOMDir))
	if !strings.Contains(stdout, "stored     0") || !strings.Contains(stdout, "duplicate  "+itoa(want)) {
		t.Errorf("raw files after the de-identified tree: exit %d, want %d duplicates\n%s", code, want, stdout)
	}

	// The same tree at a node with another site key: refused, not
	// pseudonymised a second time.
	other := filepath.Join(tmp, "other")
	otherKey := filepath.Join(tmp, "keys", "other.key")
	if code, _, stderr := node(other, otherKey, "node", "init"); code != 0 {
		t.Fatalf("node init: %d %s", code, stderr)
	}
	if code, _, stderr := runMosaic(t, "node", "dataset", "create", "--data", other, "--id", "d", "--title", "D"); code != 0 {
		t.Fatalf("dataset create: %d %s", code, stderr)
	}
	report := filepath.Join(tmp, "other.jsonl")
	code, stdout, _ = node(other, otherKey, "node", "ingest", "--dataset", "d", "-q", "--report", report, out)
	if !strings.Contains(stdout, "stored     0") || !strings.Contains(stdout, "other-site-key") || !strings.Contains(stdout, itoa(want)) {
		t.Errorf("ingest with another key: exit %d\n%s", code, stdout)
	}
	b, _ := os.ReadFile(report)
	if !strings.Contains(string(b), "another site key") {
		t.Errorf("the report does not say why:\n%.400s", b)
	}
}
