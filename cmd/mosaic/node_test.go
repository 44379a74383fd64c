package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/synth"
)

// TestNodeCLI drives the node's command line as a data holder would:
// create a dataset and a token, ingest a cohort folder, import its
// clinical table, check the dataset, and serve it; QIDO-RS then finds
// what the manifest says, minus what the door refused.
func TestNodeCLI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cohort")
	man, err := synth.Generate(context.Background(), synth.Options{Dir: dir, Patients: 6, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "node")
	common := []string{"--data", data, "--policy", "longitudinal"}

	code, out, errOut := runMosaic(t, append([]string{"node", "dataset", "create", "--id", "breast-mr", "--title", "Breast MR", "--tier", "3"}, common...)...)
	if code != 0 || !strings.Contains(out, "breast-mr") {
		t.Fatalf("dataset create: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := runMosaic(t, append([]string{"node", "dataset", "create", "--id", "breast-mr", "--title", "Again"}, common...)...); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Errorf("duplicate dataset: %d %s", code, errOut)
	}
	if code, _, _ := runMosaic(t, "node", "dataset", "create", "--id", "x", "--title", "no data dir"); code != 2 {
		t.Errorf("missing --data: exit %d, want 2", code)
	}
	if code, _, errOut := runMosaic(t, append([]string{"node", "token", "create", "--name", "no scope"}, common...)...); code != 2 || !strings.Contains(errOut, "--scope") {
		t.Errorf("token create without --scope: %d %s", code, errOut)
	}
	code, tok, errOut := runMosaic(t, append([]string{"node", "token", "create", "--name", "test", "--scope", "read", "--dataset", "breast-mr"}, common...)...)
	tok = strings.TrimSuffix(tok, "\n")
	if code != 0 || !regexp.MustCompile(`^mnt_[a-z0-9]+_[a-z0-9]+$`).MatchString(tok) {
		t.Fatalf("token create printed %q (%d %s)", tok, code, errOut)
	}

	report := filepath.Join(t.TempDir(), "ingest.jsonl")
	code, out, errOut = runMosaic(t, append([]string{"node", "ingest", "--dataset", "breast-mr", "--report", report, "-q", filepath.Join(dir, "dicom")}, common...)...)
	if code != 0 {
		t.Fatalf("ingest: %d\n%s\n%s", code, out, errOut)
	}
	want := man.Instances - len(man.Risky)
	if !strings.Contains(out, "stored     "+itoa(want)) || !strings.Contains(out, "rejected   "+itoa(len(man.Risky))) {
		t.Errorf("ingest summary, want %d stored and %d rejected:\n%s", want, len(man.Risky), out)
	}
	lines := 0
	f, _ := os.Open(report)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r struct{ Input, Status, Reason string }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.Input == "" || r.Status == "" {
			t.Fatalf("report line %s: %v", sc.Text(), err)
		}
		lines++
	}
	f.Close()
	if lines != man.Instances {
		t.Errorf("report has %d lines for %d objects", lines, man.Instances)
	}
	// Again: every object is a duplicate, nothing changes.
	code, out, _ = runMosaic(t, append([]string{"node", "ingest", "--dataset", "breast-mr", "-q", filepath.Join(dir, "dicom")}, common...)...)
	if code != 0 || !strings.Contains(out, "duplicate  "+itoa(want)) {
		t.Errorf("second ingest: %d\n%s", code, out)
	}

	// -o json: the summary as one document; an input that cannot be
	// opened is reported, not dropped.
	missing := filepath.Join(t.TempDir(), "missing.dcm")
	code, out, errOut = runMosaic(t, append([]string{"node", "ingest", "--dataset", "breast-mr", "-q", "-o", "json", filepath.Join(dir, "dicom"), missing}, common...)...)
	var sum struct {
		Objects  int
		Statuses map[string]int
		Reasons  map[string]int
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("ingest -o json: %v\n%s", err, out)
	}
	if code != exitFailure || sum.Objects != man.Instances+1 || sum.Statuses["duplicate"] != want || sum.Statuses["failed"] != 1 ||
		sum.Reasons["failed: read-error"] != 1 || !strings.Contains(errOut, missing) {
		t.Errorf("ingest -o json with a missing input: exit %d, %+v\n%s", code, sum, errOut)
	}

	// Clinical rows join the images.
	code, out, errOut = runMosaic(t, append([]string{"node", "import-clinical", "--dataset", "breast-mr", "-o", "json", filepath.Join(dir, "clinical.csv")}, common...)...)
	if code != 0 {
		t.Fatalf("import-clinical: %d %s %s", code, out, errOut)
	}
	var rep struct {
		Rows, Imported, Skipped int
		Join                    struct {
			ClinicalPatients int      `json:"clinical_patients"`
			ImagedPatients   int      `json:"imaged_patients"`
			ClinicalNoImages []string `json:"clinical_without_images"`
			ImagesNoClinical []string `json:"images_without_clinical"`
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Rows != man.Patients || rep.Imported != man.Patients || rep.Skipped != 0 || rep.Join.ImagedPatients != man.Patients ||
		len(rep.Join.ClinicalNoImages) != 0 || len(rep.Join.ImagesNoClinical) != 0 {
		t.Errorf("clinical import: %+v (manifest %d patients)", rep, man.Patients)
	}
	// A table with bad codes: reported by row and column, rows skipped.
	bad := filepath.Join(t.TempDir(), "bad.csv")
	csv, _ := os.ReadFile(filepath.Join(dir, "clinical.csv"))
	rows := strings.SplitN(string(csv), "\n", 3)
	head := strings.Split(rows[0], ",")
	cells := strings.Split(rows[1], ",")
	for i, h := range head {
		if h == "morphology_code" {
			cells[i] = "not-a-code"
		}
	}
	os.WriteFile(bad, []byte(rows[0]+"\n"+strings.Join(cells, ",")+"\n"), 0o600)
	code, out, _ = runMosaic(t, append([]string{"node", "import-clinical", "--dataset", "breast-mr", bad}, common...)...)
	if code != 1 || !strings.Contains(out, "row 1 morphology_code") || strings.Contains(out, cells[0]) {
		t.Errorf("bad clinical table: %d\n%s", code, out)
	}

	code, out, _ = runMosaic(t, append([]string{"node", "check", "--dataset", "breast-mr", "--json"}, common...)...)
	var chk struct {
		Problems []struct {
			Kind  string
			Count int
		}
	}
	if err := json.Unmarshal([]byte(out), &chk); err != nil {
		t.Fatalf("check: %d %s", code, out)
	}
	for _, p := range chk.Problems {
		if p.Kind == "patient-no-clinical" || p.Kind == "series-mixed-patients" || p.Kind == "series-no-modality" {
			t.Errorf("check found %s (%d) on a consistent cohort", p.Kind, p.Count)
		}
	}

	// Serve, and search.
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int)
	go func() {
		done <- run(ctx, append([]string{"node", "serve", "--listen", "127.0.0.1:0"}, common...), func(string) string { return "" }, strings.NewReader(""), pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	base := strings.TrimSpace(strings.TrimPrefix(line, "mosaic node listening on "))
	get := func(path, token string) (int, []byte) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, _ := get("/readyz", ""); code != 200 {
		t.Fatalf("readyz: %d", code)
	}
	code2, b := get("/dicom-web/breast-mr/instances?limit=1000", tok)
	var insts []any
	if code2 != 200 || json.Unmarshal(b, &insts) != nil || len(insts) != want {
		t.Errorf("QIDO instances: %d, %d results, want %d", code2, len(insts), want)
	}
	if code, _ := get("/dicom-web/breast-mr/studies", "mnt_bogus_token"); code != 401 {
		t.Errorf("bad token: %d", code)
	}
	code2, b = get("/api/v1/datasets/breast-mr", tok)
	var info struct {
		Instances int
		Tier      int
	}
	if code2 != 200 || json.Unmarshal(b, &info) != nil || info.Instances != want || info.Tier != 3 {
		t.Errorf("dataset API: %d %s", code2, b)
	}
	code2, b = get("/metrics", "")
	if code2 != 200 || !strings.Contains(string(b), `mosaic_node_http_request_seconds_count{code="200"`) {
		t.Errorf("metrics: %d", code2)
	}
	cancel()
	select {
	case c := <-done:
		if c != 0 {
			t.Errorf("serve exited %d after interrupt", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}

	// The scrub: every object reads back intact; then one object's bytes
	// are damaged and another's record header, and check names both.
	verify := func() (int, []string, int) {
		t.Helper()
		code, out, errOut := runMosaic(t, append([]string{"node", "check", "--dataset", "breast-mr", "--json", "--verify-objects"}, common...)...)
		var r struct {
			Problems []struct {
				Kind  string
				Count int
			}
			ObjectsVerified int `json:"objects_verified"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("check --verify-objects: %d %s %s", code, out, errOut)
		}
		var kinds []string
		for _, p := range r.Problems {
			if strings.HasPrefix(p.Kind, "object-") {
				kinds = append(kinds, fmt.Sprintf("%s %d", p.Kind, p.Count))
			}
		}
		return code, kinds, r.ObjectsVerified
	}
	if code, kinds, n := verify(); code != 0 || len(kinds) != 0 || n != want {
		t.Errorf("verify of an intact node: exit %d, %v, %d objects verified; want 0, none, %d", code, kinds, n, want)
	}
	packs, _ := filepath.Glob(filepath.Join(data, "blobs", "packs", "*.pack"))
	if len(packs) == 0 {
		t.Fatal("no pack files")
	}
	pk, err := os.OpenFile(packs[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var hdr [64]byte
	pk.ReadAt(hdr[:], 0)
	size := int64(binary.LittleEndian.Uint64(hdr[8:16]))
	pk.WriteAt([]byte{hdr[0] ^ 0xff}, 64+size)         // the second record's header
	pk.WriteAt([]byte("damage"), 64+min(size/2, 1000)) // the first record's bytes
	pk.Close()
	if code, kinds, _ := verify(); code != 1 || strings.Join(kinds, ", ") != "object-missing 1, object-damaged 1" {
		t.Errorf("verify after damage: exit %d, %v; want 1, one missing and one damaged", code, kinds)
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// TestNodeConfig: the configuration file, the environment and the flags
// merge in that order of precedence, and a wrong value stops the command
// with a message naming it.
func TestNodeConfig(t *testing.T) {
	data := t.TempDir()
	os.WriteFile(filepath.Join(data, "node.json"), []byte(`{"policy": "basic", "listen": "127.0.0.1:1", "max_qido_limit": 50}`), 0o600)
	e := &env{ctx: context.Background(), stdout: io.Discard, stderr: io.Discard}
	f := nodeFlags{data: data}
	env := map[string]string{}
	e.getenv = func(k string) string { return env[k] }
	cmd := newNodeServeCmd(e)
	c, err := f.configFor(e, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if c.Policy != "basic" || c.Listen != "127.0.0.1:1" || c.MaxQIDOLimit != 50 || c.DB != filepath.Join(data, "index.db") {
		t.Errorf("from the file: %+v", c)
	}
	env["MOSAIC_NODE_POLICY"] = "longitudinal"
	env["MOSAIC_NODE_LISTEN"] = "127.0.0.1:2"
	f.listen = "127.0.0.1:3"
	c, err = f.configFor(e, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if c.Policy != "longitudinal" || c.Listen != "127.0.0.1:3" {
		t.Errorf("environment over file, flag over environment: %+v", c)
	}
	os.WriteFile(filepath.Join(data, "node.json"), []byte(`{"max_qido_limit": -1}`), 0o600)
	if _, err := f.configFor(e, cmd); err == nil || !strings.Contains(err.Error(), "max_qido_limit") {
		t.Errorf("invalid value: %v", err)
	}
	os.WriteFile(filepath.Join(data, "node.json"), []byte(`{"polcy": "basic"}`), 0o600)
	if _, err := f.configFor(e, cmd); err == nil || !strings.Contains(err.Error(), "polcy") {
		t.Errorf("unknown field: %v", err)
	}
	if code, _, errOut := runMosaic(t, "node", "serve", "--data", t.TempDir(), "--policy", "no-such-policy", "--listen", "127.0.0.1:0"); code != 1 || !strings.Contains(errOut, "no-such-policy") {
		t.Errorf("bad policy: %d %s", code, errOut)
	}
}
