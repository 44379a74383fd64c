package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/synth"
	"github.com/mosaic-imaging/mosaic/internal/table"
)

// TestNodeImportTable drives `mosaic node import-table`: a patient-linked
// table from a file with original IDs (pseudonymised to the patients the
// clinical import made), a table from standard input with a dictionary
// file, a bad row and unknown patients (refused with the line, the old
// table kept), and the help.
func TestNodeImportTable(t *testing.T) {
	tmp := t.TempDir()
	data := filepath.Join(tmp, "node")
	adm := []string{"--data", data}
	if code, out, errOut := runMosaic(t, "node", "init", "--data", data, "--policy", "longitudinal"); code != 0 {
		t.Fatalf("node init: %d %s %s", code, out, errOut)
	}
	if code, out, errOut := runMosaic(t, append([]string{"node", "dataset", "create", "--id", "lung", "--title", "Lung", "--tier", "3"}, adm...)...); code != 0 {
		t.Fatalf("dataset create: %d %s %s", code, out, errOut)
	}
	clinical := filepath.Join(tmp, "clinical.csv")
	os.WriteFile(clinical, []byte("patient_id,birth_sex,age_at_diagnosis,diagnosis_date,cancer_type,topography_code,morphology_code\n"+
		"HOSP-1,female,61,2020-03-04,lung,C34.1,8140/3\nHOSP-2,male,70,2021-05-06,lung,C34.1,8140/3\nHOSP-3,male,55,2019-01-02,lung,C34.1,8140/3\n"), 0o600)
	if code, out, errOut := runMosaic(t, append([]string{"node", "import-clinical", "--dataset", "lung", clinical}, adm...)...); code != 0 {
		t.Fatalf("import-clinical: %d %s %s", code, out, errOut)
	}
	var csvBuf bytes.Buffer
	if err := synth.WriteResearch(&csvBuf, []string{"HOSP-1", "HOSP-2", "HOSP-3"}, 1); err != nil {
		t.Fatal(err)
	}
	research := filepath.Join(tmp, "research.csv")
	os.WriteFile(research, csvBuf.Bytes(), 0o600)
	code, out, errOut := runMosaic(t, append([]string{"node", "import-table", "--dataset", "lung", "--name", "clinical", "--patient", "patient_id",
		"--type", "stage=categorical", "--type", "sex=categorical", research}, adm...)...)
	if code != 0 || !strings.Contains(out, "3 rows, 10 columns") || !strings.Contains(out, "patient_id") ||
		!strings.Contains(out, "linked to the dataset's pseudonyms") || !strings.Contains(out, "stage                    categorical") {
		t.Fatalf("import-table: %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out, "HOSP-") {
		t.Errorf("the report shows a patient ID:\n%s", out)
	}

	// From standard input, with a dictionary file, as JSON.
	dict := filepath.Join(tmp, "dict.json")
	os.WriteFile(dict, []byte(`{"columns": {"beds": "numeric"}}`), 0o600)
	var stdout, stderr bytes.Buffer
	code = run(context.Background(), append([]string{"node", "import-table", "--dataset", "lung", "--name", "sites", "--dictionary", dict, "-o", "json", "-"}, adm...),
		func(string) string { return "" }, strings.NewReader("site,beds\nA,10\nB,20\n"), &stdout, &stderr)
	var info table.Info
	if code != 0 || json.Unmarshal(stdout.Bytes(), &info) != nil || info.Rows != 2 || info.Schema.Columns[1].Type != table.Numeric {
		t.Fatalf("import-table from stdin: %d\n%s%s", code, stdout.String(), stderr.String())
	}

	// A bad row and unknown patients: refused with the line, nothing
	// imported.
	bad := filepath.Join(tmp, "bad.csv")
	os.WriteFile(bad, []byte("patient_id,x\nHOSP-1,1\nHOSP-2,2,3\n"), 0o600)
	code, _, errOut = runMosaic(t, append([]string{"node", "import-table", "--dataset", "lung", "--name", "clinical", "--patient", "patient_id", bad}, adm...)...)
	if code == 0 || !strings.Contains(errOut, "line 3") || !strings.Contains(errOut, "nothing imported") {
		t.Errorf("bad row: %d %s", code, errOut)
	}
	os.WriteFile(bad, []byte("patient_id,x\nHOSP-1,1\nNOBODY-9,2\n"), 0o600)
	code, _, errOut = runMosaic(t, append([]string{"node", "import-table", "--dataset", "lung", "--name", "clinical", "--patient", "patient_id", bad}, adm...)...)
	if code == 0 || !strings.Contains(errOut, "line 3") || strings.Contains(errOut, "NOBODY") {
		t.Errorf("unknown patient: %d %s", code, errOut)
	}
	code, out, _ = runMosaic(t, append([]string{"node", "import-table", "--dataset", "lung", "--name", "clinical", "-o", "json", research, "--patient", "patient_id", "--type", "stage=bogus"}, adm...)...)
	if code != 2 {
		t.Errorf("bad type: exit %d, want 2", code)
	}
	if code, _, _ := runMosaic(t, append([]string{"node", "import-table", "--dataset", "lung", research}, adm...)...); code != 2 {
		t.Errorf("no --name: exit %d, want 2", code)
	}
	code, out, _ = runMosaic(t, "node", "import-table", "--help")
	if code != 0 || !strings.Contains(out, "--dictionary") || !strings.Contains(out, "categorical") {
		t.Errorf("help: %d %s", code, out)
	}
	_ = out
}
