package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/deid"
	"github.com/mosaic-imaging/mosaic/internal/synth"
)

// TestDeidThenIngest follows the data holder's first path: de-identify a
// folder with 'mosaic deid' and the clinical table with 'mosaic deid
// clinical', then ingest the de-identified tree into a node that has the
// same site key and import the de-identified table. Nothing is
// pseudonymised twice: every clinical row joins its images and the node
// counts as many patients as the cohort has, and each patient's clinical
// dates stay aligned with the image dates (the same days apart as at a
// node that took the original files under the policy of 'mosaic deid').
// With a node policy that shifts dates after 'mosaic deid' truncated them
// to the month, the dates are shifted on top, not kept. A table whose
// mark column was taken away is original data: it joins nothing, and the
// report says why. A node with another key refuses the tree and the
// table, saying why.
func TestDeidThenIngest(t *testing.T) {
	t.Run("longitudinal", func(t *testing.T) { deidThenIngest(t, "longitudinal", "longitudinal", true) })
	t.Run("eucaim-then-longitudinal", func(t *testing.T) { deidThenIngest(t, "eucaim", "longitudinal", false) })
}

func deidThenIngest(t *testing.T, deidPolicy, nodePolicy string, full bool) {
	tmp := t.TempDir()
	cohort := filepath.Join(tmp, "cohort")
	m, err := synth.Generate(context.Background(), synth.Options{Dir: cohort, Patients: 6, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(tmp, "keys", "site.key")
	out := filepath.Join(tmp, "deid")
	if code, _, stderr := runMosaic(t, "deid", "-q", "--policy", deidPolicy, "--site-key", key, "--out", out, filepath.Join(cohort, synth.DICOMDir)); code != exitOK {
		t.Fatalf("deid: exit %d\n%s", code, stderr)
	}
	clinical := filepath.Join(tmp, "clinical-deid.csv")
	if code, _, stderr := runMosaic(t, "deid", "clinical", "--policy", deidPolicy, "--site-key", key, "--id-column", "patient_id",
		"--issuer-column", "issuer_of_patient_id", "--date-columns", "diagnosis_date,last_contact_date",
		"--out", clinical, filepath.Join(cohort, synth.ClinicalFile)); code != exitOK {
		t.Fatalf("deid clinical: exit %d\n%s", code, stderr)
	}

	node := func(data, key string, args ...string) (int, string, string) {
		t.Helper()
		return runMosaic(t, append(args, "--data", data, "--site-key", key)...)
	}
	data := filepath.Join(tmp, "node")
	if code, _, stderr := node(data, key, "node", "init", "--policy", nodePolicy); code != 0 {
		t.Fatalf("node init: %d %s", code, stderr)
	}
	for _, d := range []string{"d", "forged"} {
		if code, _, stderr := runMosaic(t, "node", "dataset", "create", "--data", data, "--id", d, "--title", "D"); code != 0 {
			t.Fatalf("dataset create: %d %s", code, stderr)
		}
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

	// The dates: the reference is a node with the policy of 'mosaic
	// deid' that took the original files and table.
	ref := filepath.Join(tmp, "ref")
	if code, _, stderr := node(ref, key, "node", "init", "--policy", deidPolicy); code != 0 {
		t.Fatalf("node init: %d %s", code, stderr)
	}
	if code, _, stderr := runMosaic(t, "node", "dataset", "create", "--data", ref, "--id", "d", "--title", "D"); code != 0 {
		t.Fatalf("dataset create: %d %s", code, stderr)
	}
	if code, stdout, stderr := node(ref, key, "node", "ingest", "--dataset", "d", "-q", filepath.Join(cohort, synth.DICOMDir)); code != 0 {
		t.Fatalf("reference ingest: %d %s %s", code, stdout, stderr)
	}
	if code, stdout, stderr := node(ref, key, "node", "import-clinical", "--dataset", "d", filepath.Join(cohort, synth.ClinicalFile)); code != 0 {
		t.Fatalf("reference import-clinical: %d %s %s", code, stdout, stderr)
	}
	got, exp := clinicalDates(t, data, "d"), clinicalDates(t, ref, "d")
	if len(got) != m.Patients || len(exp) != m.Patients {
		t.Fatalf("dates of %d and %d patients, want %d", len(got), len(exp), m.Patients)
	}
	shifted := 0
	for p, w := range exp {
		g, ok := got[p]
		if !ok || g.gap != w.gap {
			t.Errorf("patient %s: diagnosis %d days after the first study, %d at the reference node", p, g.gap, w.gap)
		}
		if g.diagnosis != w.diagnosis {
			shifted++
		}
	}
	if sameMode := deidPolicy == nodePolicy; sameMode != (shifted == 0) {
		t.Errorf("%d of %d patients' dates differ from the reference node's (%s then %s)", shifted, len(exp), deidPolicy, nodePolicy)
	}

	// The same table without its mark column: pseudonym-like IDs with
	// no seal are original data, pseudonymised again; nothing joins and
	// the report says why.
	b, err := os.ReadFile(clinical)
	if err != nil {
		t.Fatal(err)
	}
	var forged strings.Builder
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		forged.WriteString(line[:strings.LastIndex(line, ",")] + "\n")
	}
	if strings.Contains(forged.String(), deid.ClinicalMarkColumn) || strings.Contains(forged.String(), "MOSAIC DEID") {
		t.Fatalf("mark column not taken away:\n%.300s", forged.String())
	}
	forgedPath := filepath.Join(tmp, "forged.csv")
	if err := os.WriteFile(forgedPath, []byte(forged.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := node(data, key, "node", "ingest", "--dataset", "forged", "-q", out); code != 0 {
		t.Fatalf("ingest: %d %s", code, stderr)
	}
	code, stdout, _ = node(data, key, "node", "import-clinical", "--dataset", "forged", "--json", forgedPath)
	var frep struct {
		Unsealed int `json:"unsealed_pseudonym_rows"`
		Warnings []struct{ Problem string }
		Join     struct {
			ClinicalNoImagesN int `json:"clinical_without_images_count"`
		}
	}
	if err := json.Unmarshal([]byte(stdout), &frep); err != nil {
		t.Fatalf("import-clinical report: %v\n%s", err, stdout)
	}
	if frep.Unsealed != m.Patients || frep.Join.ClinicalNoImagesN != m.Patients || len(frep.Warnings) == 0 ||
		!strings.Contains(frep.Warnings[len(frep.Warnings)-1].Problem, deid.ClinicalMarkColumn) {
		t.Errorf("table without marks: exit %d, want %d unsealed rows joining nothing and a warning\n%s", code, m.Patients, stdout)
	}
	if !full {
		return
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
	if code, _, stderr := node(other, otherKey, "node", "init", "--policy", nodePolicy); code != 0 {
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
	b, _ = os.ReadFile(report)
	if !strings.Contains(string(b), "another site key") {
		t.Errorf("the report does not say why:\n%.400s", b)
	}
	code, stdout, stderr = node(other, otherKey, "node", "import-clinical", "--dataset", "d", clinical)
	if code == 0 || !strings.Contains(stderr, "another site key") {
		t.Errorf("table of another key: exit %d\n%s%s", code, stdout, stderr)
	}
}

// patientDates are one patient's treated diagnosis date and the days from
// the first study to it.
type patientDates struct {
	diagnosis string
	gap       int
}

// clinicalDates reads each patient's dates from a node's index, by the
// keyed part of the pseudonym (the part every policy of a key shares).
func clinicalDates(t *testing.T, data, dataset string) map[string]patientDates {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err := db.Query(`SELECT p.patient_id, c.diagnosis_date, MIN(s.study_date) FROM cdm_patient p
		JOIN cdm_cancer_condition c ON c.patient_pk = p.pk
		JOIN cdm_image_study s ON s.dataset_id = p.dataset_id AND s.patient_id = p.patient_id
		WHERE p.dataset_id = ? GROUP BY p.patient_id, c.diagnosis_date`, dataset)
	if err != nil {
		t.Fatalf("reading the index: %v", err)
	}
	defer q.Close()
	out := map[string]patientDates{}
	for q.Next() {
		var id, diag, study string
		if err := q.Scan(&id, &diag, &study); err != nil {
			t.Fatal(err)
		}
		d, err1 := time.Parse("20060102", diag)
		s, err2 := time.Parse("20060102", study)
		if err1 != nil || err2 != nil || len(id) < 16 {
			t.Fatalf("patient %s: dates %q %q", id, diag, study)
		}
		out[id[len(id)-16:]] = patientDates{diagnosis: diag, gap: int(d.Sub(s).Hours() / 24)}
	}
	if err := q.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
