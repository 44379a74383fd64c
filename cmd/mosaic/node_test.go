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

	"github.com/mosaic-imaging/mosaic/internal/index"
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
	// The commands that de-identify take the policy; the others only
	// where the node is.
	common := []string{"--data", data, "--policy", "longitudinal"}
	adm := []string{"--data", data}

	code, out, errOut := runMosaic(t, append([]string{"node", "init"}, common...)...)
	if code != 0 || !strings.Contains(out, "node made at "+data) {
		t.Fatalf("node init: %d %s %s", code, out, errOut)
	}
	code, out, errOut = runMosaic(t, append([]string{"node", "dataset", "create", "--id", "breast-mr", "--title", "Breast MR", "--tier", "3"}, adm...)...)
	if code != 0 || !strings.Contains(out, "breast-mr") {
		t.Fatalf("dataset create: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := runMosaic(t, append([]string{"node", "dataset", "create", "--id", "breast-mr", "--title", "Again"}, adm...)...); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Errorf("duplicate dataset: %d %s", code, errOut)
	}
	if code, _, _ := runMosaic(t, "node", "dataset", "create", "--id", "x", "--title", "no data dir"); code != 2 {
		t.Errorf("missing --data: exit %d, want 2", code)
	}
	if code, _, errOut := runMosaic(t, append([]string{"node", "token", "create", "--name", "no scope"}, adm...)...); code != 2 || !strings.Contains(errOut, "--scope") {
		t.Errorf("token create without --scope: %d %s", code, errOut)
	}
	code, tok, errOut := runMosaic(t, append([]string{"node", "token", "create", "--name", "test", "--scope", "read", "--dataset", "breast-mr"}, adm...)...)
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

	code, out, _ = runMosaic(t, append([]string{"node", "check", "--dataset", "breast-mr", "--json"}, adm...)...)
	var chk struct {
		Problems []struct {
			Kind  string
			Count int
		}
		Publish  bool
		HeldBack []string `json:"held_back"`
	}
	if err := json.Unmarshal([]byte(out), &chk); err != nil {
		t.Fatalf("check: %d %s", code, out)
	}
	for _, p := range chk.Problems {
		if p.Kind == "patient-no-clinical" || p.Kind == "series-mixed-patients" || p.Kind == "series-no-modality" {
			t.Errorf("check found %s (%d) on a consistent cohort", p.Kind, p.Count)
		}
	}
	// The dataset has no description, licence or contact: it is held
	// back from the hub, and check says why.
	if code != 1 || chk.Publish || strings.Join(chk.HeldBack, ", ") != "no description, no licence, no contact point" {
		t.Errorf("check of a dataset without licence: exit %d, publish %v, held back %q", code, chk.Publish, chk.HeldBack)
	}
	if _, out, _ := runMosaic(t, append([]string{"node", "dataset", "list"}, adm...)...); !strings.Contains(out, "held back: no description, no licence, no contact point") {
		t.Errorf("dataset list does not say the dataset is held back:\n%s", out)
	}
	if code, out, errOut := runMosaic(t, append([]string{"node", "dataset", "update", "breast-mr", "--description", "Synthetic breast MR.",
		"--licence", "CC-BY-4.0", "--contact", "data@example.org"}, adm...)...); code != 0 {
		t.Fatalf("dataset update: %d %s %s", code, out, errOut)
	}
	code, out, _ = runMosaic(t, append([]string{"node", "check", "--dataset", "breast-mr"}, adm...)...)
	if code != 0 || !strings.Contains(out, "hub: published") {
		t.Errorf("check of a complete dataset: exit %d\n%s", code, out)
	}
	code, out, _ = runMosaic(t, append([]string{"node", "check", "--dataset", "breast-mr", "-o", "json"}, adm...)...)
	chk.Publish, chk.HeldBack = false, nil
	if err := json.Unmarshal([]byte(out), &chk); err != nil || code != 0 || !chk.Publish || len(chk.HeldBack) != 0 {
		t.Errorf("check -o json of a complete dataset: exit %d, %v\n%s", code, err, out)
	}
	code, out, _ = runMosaic(t, append([]string{"node", "gc", "--dry-run", "-o", "json"}, adm...)...)
	var gc struct{ Referenced, Removed int }
	if err := json.Unmarshal([]byte(out), &gc); err != nil || code != 0 || gc.Referenced == 0 || gc.Removed != 0 {
		t.Errorf("gc --dry-run -o json: exit %d, %v\n%s", code, err, out)
	}
	if code, _, _ := runMosaic(t, append([]string{"node", "gc", "-o", "yaml"}, adm...)...); code != 2 {
		t.Errorf("gc -o yaml: exit %d, want 2", code)
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
		code, out, errOut := runMosaic(t, append([]string{"node", "check", "--dataset", "breast-mr", "--json", "--verify-objects"}, adm...)...)
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
	f := nodeFlags{data: data, create: true} // no site key yet
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
	if code, _, errOut := runMosaic(t, "node", "serve", "--create", "--data", t.TempDir(), "--policy", "no-such-policy", "--listen", "127.0.0.1:0"); code != 1 || !strings.Contains(errOut, "no-such-policy") {
		t.Errorf("bad policy: %d %s", code, errOut)
	}
}

// TestDataDirRefused: a --data that names no node or hub (a missing or
// empty directory) is refused with a message naming init and --create,
// and nothing is made there; init and --create make one.
func TestDataDirRefused(t *testing.T) {
	root := t.TempDir()
	missing := filepath.Join(root, "mistyped")
	empty := filepath.Join(root, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ kind, dir string }{{"node", missing}, {"node", empty}, {"hub", missing}, {"hub", empty}} {
		args := []string{c.kind, "node", "list", "--data", c.dir}
		if c.kind == "node" {
			args = []string{"node", "dataset", "list", "--data", c.dir}
		}
		code, _, errOut := runMosaic(t, args...)
		want := "no " + c.kind + " at " + c.dir
		if code != 1 || !strings.Contains(errOut, want) || !strings.Contains(errOut, "mosaic "+c.kind+" init --data "+c.dir) || !strings.Contains(errOut, "--create") {
			t.Errorf("%v: exit %d, %q; want 1 and %q with the init command and --create", args, code, errOut, want)
		}
		if _, err := os.Stat(missing); err == nil {
			t.Fatalf("%v made %s", args, missing)
		}
		if ents, _ := os.ReadDir(empty); len(ents) != 0 {
			t.Fatalf("%v wrote into %s", args, empty)
		}
	}
	// --create on a command that makes something, and init, make them.
	if code, _, errOut := runMosaic(t, "node", "token", "create", "--create", "--data", filepath.Join(root, "n1"), "--scope", "admin"); code != 0 {
		t.Errorf("token create --create: %d %s", code, errOut)
	}
	if code, _, errOut := runMosaic(t, "node", "dataset", "list", "--data", filepath.Join(root, "n1")); code != 0 {
		t.Errorf("dataset list after --create: %d %s", code, errOut)
	}
	if code, out, errOut := runMosaic(t, "hub", "init", "--data", missing); code != 0 || !strings.Contains(out, "hub made at") {
		t.Errorf("hub init: %d %s %s", code, out, errOut)
	}
	if code, out, errOut := runMosaic(t, "hub", "init", "--data", missing); code != 0 || !strings.Contains(out, "already") {
		t.Errorf("hub init again: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := runMosaic(t, "hub", "node", "list", "--data", missing); code != 0 {
		t.Errorf("hub node list after init: %d %s", code, errOut)
	}
	if code, _, errOut := runMosaic(t, "hub", "user", "add", "--create", "--data", empty, "bob"); code != 0 {
		t.Errorf("hub user add --create: %d %s", code, errOut)
	}
}

// TestHelpFlags: each command's --help lists only the flags it uses; the
// policy, site key and server flags are not inherited by the commands
// that never de-identify or serve.
func TestHelpFlags(t *testing.T) {
	for _, c := range []struct {
		cmd       string
		want, not []string
	}{
		{"node enroll", []string{"--data", "--hub", "--token", "--refresh", "--create"}, []string{"--policy", "--site-key", "--workers", "--listen", "--max-object-bytes"}},
		{"node dataset list", []string{"--data", "--output"}, []string{"--policy", "--site-key", "--listen", "--create"}},
		{"node dataset create", []string{"--data", "--id", "--title", "--create"}, []string{"--policy", "--site-key", "--listen"}},
		{"node token create", []string{"--scope", "--create", "--output"}, []string{"--policy", "--site-key", "--listen"}},
		{"node token list", []string{"--data", "--output"}, []string{"--policy", "--site-key", "--create"}},
		{"node check", []string{"--dataset", "--output"}, []string{"--policy", "--site-key", "--create"}},
		{"node gc", []string{"--grace", "--output"}, []string{"--policy", "--site-key", "--create"}},
		{"node init", []string{"--data", "--policy", "--site-key"}, []string{"--listen", "--create"}},
		{"node ingest", []string{"--policy", "--site-key", "--workers"}, []string{"--listen"}},
		{"node serve", []string{"--policy", "--site-key", "--listen", "--create"}, []string{"--workers"}},
		{"hub node list", []string{"--data", "--output"}, []string{"--listen", "--nats-listen", "--create"}},
		{"hub user add", []string{"--admin", "--create"}, []string{"--listen", "--nats-listen"}},
		{"hub init", []string{"--data", "--db"}, []string{"--listen", "--create"}},
		{"audit verify", []string{"--head", "--output"}, nil},
	} {
		code, out, errOut := runMosaic(t, append(strings.Fields(c.cmd), "--help")...)
		if code != 0 {
			t.Errorf("%s --help: %d %s", c.cmd, code, errOut)
			continue
		}
		_, flags, _ := strings.Cut(out, "\nFlags:\n")
		for _, f := range c.want {
			if !strings.Contains(flags, f+" ") {
				t.Errorf("%s --help lacks %s:\n%s", c.cmd, f, flags)
			}
		}
		for _, f := range c.not {
			if strings.Contains(flags, f+" ") {
				t.Errorf("%s --help lists %s, which it does not use:\n%s", c.cmd, f, flags)
			}
		}
	}
}

// TestOutputJSON: the list and result commands print one JSON document
// with -o json, holding what the table shows; -o with another format is
// a usage error.
func TestOutputJSON(t *testing.T) {
	data := filepath.Join(t.TempDir(), "node")
	adm := []string{"--data", data}
	decode := func(args []string, v any) {
		t.Helper()
		code, out, errOut := runMosaic(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		dec := json.NewDecoder(strings.NewReader(out))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil || dec.More() {
			t.Fatalf("%v: not one JSON document of the expected shape (%v):\n%s", args, err, out)
		}
	}
	if code, _, errOut := runMosaic(t, append([]string{"node", "init"}, adm...)...); code != 0 {
		t.Fatalf("node init: %s", errOut)
	}
	if code, _, errOut := runMosaic(t, append([]string{"node", "dataset", "create", "--id", "lung", "--title", "Lung",
		"--description", "Synthetic.", "--licence", "CC-BY-4.0", "--contact", "data@example.org"}, adm...)...); code != 0 {
		t.Fatalf("dataset create: %s", errOut)
	}
	var tok struct {
		Token, ID, Name, Scope, Dataset string
		Created                         time.Time
	}
	decode(append([]string{"node", "token", "create", "--scope", "write", "--dataset", "lung", "--name", "pacs", "-o", "json"}, adm...), &tok)
	if !strings.HasPrefix(tok.Token, "mnt_") || tok.ID == "" || tok.Scope != "write" || tok.Dataset != "lung" || tok.Name != "pacs" || tok.Created.IsZero() {
		t.Errorf("token create -o json: %+v", tok)
	}
	var toks struct {
		Tokens []struct {
			ID, Name, Scope, Dataset string
			Created                  time.Time
			LastUsed                 *time.Time `json:"last_used"`
			Revoked                  *time.Time
		}
	}
	decode(append([]string{"node", "token", "list", "-o", "json"}, adm...), &toks)
	if len(toks.Tokens) != 1 || toks.Tokens[0].ID != tok.ID || toks.Tokens[0].Scope != "write" {
		t.Errorf("token list -o json: %+v, want the token %s", toks, tok.ID)
	}
	var ds struct{ Datasets []map[string]any }
	decode(append([]string{"node", "dataset", "list", "-o", "json"}, adm...), &ds)
	if len(ds.Datasets) != 1 || ds.Datasets[0]["id"] != "lung" || ds.Datasets[0]["instances"] != float64(0) {
		t.Errorf("dataset list -o json: %+v", ds)
	}
	var chk struct {
		Dataset  string
		Tier     int
		Checked  time.Time
		Problems []index.Problem
		Publish  bool
		HeldBack []string `json:"held_back"`
	}
	decode(append([]string{"node", "check", "--dataset", "lung", "-o", "json"}, adm...), &chk)
	if chk.Dataset != "lung" || chk.Checked.IsZero() || !chk.Publish || len(chk.HeldBack) != 0 {
		t.Errorf("check -o json: %+v", chk)
	}
	var gc map[string]any
	decode(append([]string{"node", "gc", "--dry-run", "-o", "json"}, adm...), &gc)
	if gc["dry_run"] != true || gc["referenced"] != float64(0) || gc["removed"] != float64(0) || gc["grace"] != "1h0m0s" {
		t.Errorf("gc -o json: %v", gc)
	}
	hubData := filepath.Join(t.TempDir(), "hub")
	if code, _, errOut := runMosaic(t, "hub", "init", "--data", hubData); code != 0 {
		t.Fatalf("hub init: %s", errOut)
	}
	if code, _, errOut := runMosaic(t, "hub", "node", "add", "--data", hubData, "north", "--title", "North"); code != 0 {
		t.Fatalf("hub node add: %s", errOut)
	}
	var nodes struct {
		Nodes []struct {
			ID, Title, Version string
			Created            time.Time
		}
	}
	decode([]string{"hub", "node", "list", "--data", hubData, "-o", "json"}, &nodes)
	if len(nodes.Nodes) != 1 || nodes.Nodes[0].ID != "north" || nodes.Nodes[0].Title != "North" {
		t.Errorf("hub node list -o json: %+v", nodes)
	}
	for _, args := range [][]string{
		append([]string{"node", "dataset", "list", "-o", "yaml"}, adm...),
		append([]string{"node", "gc", "-o", "xml"}, adm...),
		{"hub", "node", "list", "--data", hubData, "-o", "yaml"},
	} {
		if code, _, errOut := runMosaic(t, args...); code != exitUsage || !strings.Contains(errOut, "--output must be table or json") {
			t.Errorf("%v: exit %d %q, want a usage error", args, code, errOut)
		}
	}
}

// node init keeps the settings it was given in node.json, so the later
// commands, given only --data, use the same site key; a command whose
// site key file is missing is refused and makes no new key.
func TestNodeInitKeepsSettings(t *testing.T) {
	tmp := t.TempDir()
	data := filepath.Join(tmp, "node")
	key := filepath.Join(tmp, "keys", "site.key")
	if code, _, errOut := runMosaic(t, "node", "init", "--data", data, "--site-key", key, "--policy", "longitudinal"); code != exitOK {
		t.Fatalf("node init: %d %s", code, errOut)
	}
	raw, err := os.ReadFile(filepath.Join(data, "node.json"))
	if err != nil {
		t.Fatalf("node init wrote no node.json: %v", err)
	}
	var saved map[string]string
	if err := json.Unmarshal(raw, &saved); err != nil {
		t.Fatal(err)
	}
	if saved["site_key"] != key || saved["policy"] != "longitudinal" {
		t.Errorf("node.json = %v; want site_key %s and policy longitudinal", saved, key)
	}
	if code, _, errOut := runMosaic(t, "node", "dataset", "create", "--data", data, "--id", "x", "--title", "X"); code != exitOK {
		t.Fatalf("dataset create with only --data: %d %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(data, "site.key")); !os.IsNotExist(err) {
		t.Errorf("a second site key was made in the data directory (%v)", err)
	}

	// Without node.json the key path falls back to DATA/site.key, which
	// does not exist: refused, and no key is made.
	if err := os.Remove(filepath.Join(data, "node.json")); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runMosaic(t, "node", "dataset", "list", "--data", data)
	if code == exitOK || !strings.Contains(errOut, "does not exist") {
		t.Errorf("missing site key: exit %d, stderr %q; want a refusal", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(data, "site.key")); !os.IsNotExist(err) {
		t.Errorf("a refused command made a site key (%v)", err)
	}
}
