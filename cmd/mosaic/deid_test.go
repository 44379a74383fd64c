package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/deid"
	"github.com/mosaic-imaging/mosaic/internal/dicom"
	"github.com/mosaic-imaging/mosaic/internal/ingest"
	"github.com/mosaic-imaging/mosaic/internal/synth"
)

// Statuses and codes of the report of mosaic deid.
const (
	statusOK         = deid.TreeOK
	statusRejected   = deid.TreeRejected
	statusFailed     = deid.TreeFailed
	codeSkipped      = deid.CodeSkipped
	codeExists       = deid.CodeExists
	codeDuplicate    = deid.CodeDuplicate
	codeUnsafePath   = deid.CodeUnsafePath
	reasonDuplicate  = deid.ReasonDuplicate
	codeReadError    = ingest.CodeReadError
	codeUnsafeMember = ingest.CodeUnsafeMember
	codeZipLimit     = ingest.CodeZipLimit
	codeNested       = ingest.CodeNested
	reasonUnsafeName = ingest.ReasonUnsafeName
)

// deidSeed gives a 5-patient cohort with objects that have text burned
// into their pixels (TestDeidCohort checks that there are some).
const deidSeed = 2

func runMosaic(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// deidCohort generates a small synthetic cohort and returns its folder and
// manifest.
func deidCohort(t *testing.T) (string, synth.Manifest) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cohort")
	m, err := synth.Generate(context.Background(), synth.Options{Dir: dir, Patients: 5, Seed: deidSeed})
	if err != nil {
		t.Fatal(err)
	}
	return dir, m
}

func readReport(t *testing.T, path string) []record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r record
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("report line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// listFiles returns every file under dir, relative, sorted.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// identifiers collects the raw PatientName and PatientID values of the
// inputs, and the family names, as the bytes an output must not contain.
func identifiers(t *testing.T, files []string) [][]byte {
	t.Helper()
	seen := map[string]bool{}
	var out [][]byte
	add := func(b []byte) {
		b = bytes.TrimRight(b, " \x00")
		if len(b) >= 4 && !seen[string(b)] {
			seen[string(b)] = true
			out = append(out, b)
		}
	}
	for _, p := range files {
		f, err := dicom.ReadFile(p, dicom.ReadOptions{StopAtPixelData: true})
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, tag := range []dicom.Tag{dicom.NewTag(0x0010, 0x0010), dicom.NewTag(0x0010, 0x0020)} {
			el := f.Dataset.Get(tag)
			if el == nil {
				t.Fatalf("%s has no %s", p, tag)
			}
			add(el.Value)
			if tag.Element() == 0x0010 {
				family, _, _ := bytes.Cut(el.Value, []byte("^"))
				add(family)
			}
		}
	}
	return out
}

// containsValue reports whether raw holds needle; a needle of digits only
// counts only when no digit or dot touches it, since the new 2.25 UIDs
// (random with each key) hold any run of digits now and then.
func containsValue(raw, needle []byte) bool {
	digits := len(needle) > 0 && bytes.IndexFunc(needle, func(r rune) bool { return r < '0' || r > '9' }) < 0
	for off := 0; ; {
		i := bytes.Index(raw[off:], needle)
		if i < 0 {
			return false
		}
		i += off
		if !digits {
			return true
		}
		end := i + len(needle)
		if (i == 0 || !isUIDByte(raw[i-1])) && (end == len(raw) || !isUIDByte(raw[end])) {
			return true
		}
		off = i + 1
	}
}

func isUIDByte(b byte) bool { return b == '.' || b >= '0' && b <= '9' }

func TestDeidCohort(t *testing.T) {
	cohort, m := deidCohort(t)
	if len(m.Risky) == 0 {
		t.Fatalf("seed %d gives no risky object: the test would prove nothing", deidSeed)
	}
	tmp := t.TempDir()
	out := filepath.Join(tmp, "out")
	key := filepath.Join(tmp, "keys", "site.key")
	report := filepath.Join(tmp, "report.jsonl")
	code, stdout, stderr := runMosaic(t, "deid", "--out", out, "--site-key", key, "--report", report, filepath.Join(cohort, "dicom"))
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}

	// The key: created, 32 bytes, mode 0600, never printed.
	fi, err := os.Stat(key)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600", fi.Mode().Perm())
	}
	kb, _ := os.ReadFile(key)
	if len(kb) != 32 {
		t.Fatalf("key of %d bytes", len(kb))
	}
	if !strings.Contains(stderr, key) {
		t.Errorf("no notice of the new key on stderr:\n%s", stderr)
	}
	for _, enc := range []string{hex.EncodeToString(kb), strings.ToUpper(hex.EncodeToString(kb)),
		base64.StdEncoding.EncodeToString(kb), base64.RawStdEncoding.EncodeToString(kb),
		base64.URLEncoding.EncodeToString(kb), base64.RawURLEncoding.EncodeToString(kb), string(kb)} {
		if strings.Contains(stdout+stderr, enc) {
			t.Fatalf("the key appears in the output")
		}
	}
	if strings.Contains(stderr, "\r") {
		t.Errorf("progress redrawn on a stderr that is not a terminal:\n%q", stderr)
	}

	// The report: one line per input file, in input order; the risky
	// objects rejected, all others ok.
	recs := readReport(t, report)
	if len(recs) != m.Instances {
		t.Fatalf("%d report lines, want %d (one per file)", len(recs), m.Instances)
	}
	risky := map[string]bool{}
	for _, r := range m.Risky {
		risky[filepath.Join(cohort, filepath.FromSlash(r.Path))] = true
	}
	var inputs, outputs []string
	ok := 0
	for _, r := range recs {
		inputs = append(inputs, r.Input)
		switch {
		case risky[r.Input]:
			if r.Status != statusRejected || r.Code == "" || r.Reason == "" || r.Output != "" {
				t.Errorf("risky object %s: %+v, want rejected with a code and reason", r.Input, r)
			}
		case r.Status != statusOK || r.Output == "" || r.Counts == nil || r.Counts.Pseudonyms == 0:
			t.Errorf("%s: %+v, want ok with counts", r.Input, r)
		default:
			ok++
			outputs = append(outputs, r.Output)
		}
	}
	if !slices.IsSorted(inputs) {
		t.Errorf("report not in input order")
	}
	if ok != m.Instances-len(m.Risky) {
		t.Errorf("%d ok, want %d files minus %d risky", ok, m.Instances, len(m.Risky))
	}
	if !strings.Contains(stdout, "ok") || !strings.Contains(stdout, "rejected") || !strings.Contains(stdout, "burned-in-annotation") {
		t.Errorf("summary:\n%s", stdout)
	}

	// The layout: OUTDIR/pseudonym/study/series/instance.dcm, nothing else.
	got := listFiles(t, out)
	var want []string
	for _, o := range outputs {
		rel, err := filepath.Rel(out, o)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, rel)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("OUTDIR holds %d files, the report names %d outputs", len(got), len(want))
	}
	inputFiles := listFiles(t, filepath.Join(cohort, "dicom"))
	for i := range inputFiles {
		inputFiles[i] = filepath.Join(cohort, "dicom", inputFiles[i])
	}
	needles := identifiers(t, inputFiles)
	for _, rel := range got {
		parts := strings.Split(rel, string(filepath.Separator))
		if len(parts) != 4 || !strings.HasPrefix(parts[0], "MOS-") || !strings.HasPrefix(parts[1], "2.25.") ||
			!strings.HasPrefix(parts[2], "2.25.") || !strings.HasPrefix(parts[3], "2.25.") || !strings.HasSuffix(parts[3], ".dcm") {
			t.Fatalf("output %s does not follow pseudonym/study/series/instance.dcm", rel)
		}
		raw, err := os.ReadFile(filepath.Join(out, rel))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range needles {
			if containsValue(raw, n) {
				t.Fatalf("%s contains an input PatientName or PatientID value", rel)
			}
		}
		f, err := dicom.Parse(raw, dicom.ReadOptions{})
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		if id, _ := f.Dataset.String(dicom.NewTag(0x0010, 0x0020)); id != parts[0] {
			t.Fatalf("%s: PatientID %q is not its folder's pseudonym", rel, id)
		}
		if uid := f.Dataset.UID(dicom.TagSOPInstanceUID); uid+".dcm" != parts[3] {
			t.Fatalf("%s: SOP Instance UID %q does not name the file", rel, uid)
		}
	}

	// A second run with the same key skips every output, which stays as it was.
	before := hashTree(t, out)
	code, stdout, stderr = runMosaic(t, "deid", "--out", out, "--site-key", key, "--report", report, filepath.Join(cohort, "dicom"))
	if code != exitOK {
		t.Fatalf("rerun: exit %d; stderr:\n%s", code, stderr)
	}
	if strings.Contains(stderr, "created") {
		t.Errorf("rerun created another key:\n%s", stderr)
	}
	for _, r := range readReport(t, report) {
		if r.Status == statusOK && r.Code != codeSkipped {
			t.Fatalf("rerun: %s was written again: %+v", r.Input, r)
		}
	}
	if !strings.Contains(stdout, "skipped") || !strings.Contains(stdout, strconv.Itoa(ok)) {
		t.Errorf("rerun summary:\n%s", stdout)
	}
	if after := hashTree(t, out); !mapsEqual(before, after) {
		t.Errorf("rerun changed OUTDIR")
	}

	// A separate run into another folder with the same key gives the same
	// files, byte for byte.
	out2 := filepath.Join(tmp, "out2")
	// Its summary is one JSON document with -o json, counting patients
	// (the folders written), not objects.
	code, stdout, stderr = runMosaic(t, "deid", "-q", "-o", "json", "--workers", "1", "--out", out2, "--site-key", key, filepath.Join(cohort, "dicom"))
	if code != exitOK {
		t.Fatalf("second folder: exit %d; stderr:\n%s", code, stderr)
	}
	var js struct{ Objects, OK, Skipped, Rejected, Failed, Patients int }
	if err := json.Unmarshal([]byte(stdout), &js); err != nil {
		t.Fatalf("-o json: %v\n%s", err, stdout)
	}
	patientDirs, _ := os.ReadDir(out2)
	if js.OK != ok || js.Skipped != 0 || js.Failed != 0 || js.Objects != len(inputFiles) || js.Patients != len(patientDirs) || js.Patients >= js.OK {
		t.Errorf("-o json summary %+v; %d objects ok, %d patient folders, %d inputs", js, ok, len(patientDirs), len(inputFiles))
	}
	if !mapsEqual(before, hashTree(t, out2)) {
		t.Errorf("a second run with the same key gave other files")
	}

	// An output that differs from what the run would write is never
	// overwritten: that object fails and the run goes on.
	victim := filepath.Join(out, got[0])
	if err := os.WriteFile(victim, []byte("changed by someone"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runMosaic(t, "deid", "--out", out, "--site-key", key, "--report", report, filepath.Join(cohort, "dicom"))
	if code != exitFailure {
		t.Fatalf("changed output: exit %d, want 1; stderr:\n%s", code, stderr)
	}
	if b, _ := os.ReadFile(victim); string(b) != "changed by someone" {
		t.Errorf("an existing different file was overwritten")
	}
	failed := 0
	for _, r := range readReport(t, report) {
		if r.Status == statusFailed {
			failed++
			if r.Code != codeExists || r.Output != "" {
				t.Errorf("changed output: %+v", r)
			}
		}
	}
	if failed != 1 {
		t.Errorf("%d failed, want 1", failed)
	}
	noTemps(t, out)
}

func hashTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, rel := range listFiles(t, dir) {
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		m[rel] = string(b)
	}
	return m
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// noTemps fails if a temporary file was left in OUTDIR.
func noTemps(t *testing.T, out string) {
	t.Helper()
	for _, rel := range listFiles(t, out) {
		if strings.HasPrefix(filepath.Base(rel), ".deid-") {
			t.Errorf("temporary file left: %s", rel)
		}
	}
}

func TestDeidPolicyFile(t *testing.T) {
	cohort, _ := deidCohort(t)
	tmp := t.TempDir()
	pol := filepath.Join(tmp, "site-policy.json")
	os.WriteFile(pol, []byte(`{"preset": "longitudinal", "name": "site test", "patient_id_prefix": "TST-",
		"overrides": {"BodyPartExamined": "X"}}`), 0o644)
	out := filepath.Join(tmp, "out")
	key := filepath.Join(tmp, "site.key")
	code, stdout, stderr := runMosaic(t, "deid", "--out", out, "--site-key", key, "--policy", pol, filepath.Join(cohort, "dicom", "0001"))
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "site test") {
		t.Errorf("summary does not name the policy:\n%s", stdout)
	}
	files := listFiles(t, out)
	if len(files) == 0 {
		t.Fatal("nothing written")
	}
	for _, rel := range files {
		if !strings.HasPrefix(rel, "TST-") {
			t.Fatalf("%s: not under a TST- pseudonym", rel)
		}
	}
	f, err := dicom.ReadFile(filepath.Join(out, files[0]), dicom.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if f.Dataset.Has(dicom.NewTag(0x0018, 0x0015)) {
		t.Errorf("BodyPartExamined kept despite the override")
	}
	if v, _ := f.Dataset.String(dicom.NewTag(0x0012, 0x0063)); !strings.Contains(v, "SITE TEST") {
		t.Errorf("De-identification Method %q", v)
	}
	if v, _ := f.Dataset.String(dicom.NewTag(0x0008, 0x0020)); len(v) != 8 {
		t.Errorf("longitudinal: StudyDate %q, want a shifted date", v)
	}

	// A prefix that would lead out of OUTDIR fails every object.
	evil := filepath.Join(tmp, "evil.json")
	os.WriteFile(evil, []byte(`{"preset": "basic", "patient_id_prefix": "../../x"}`), 0o644)
	out2 := filepath.Join(tmp, "sub", "out2")
	report := filepath.Join(tmp, "r.jsonl")
	code, _, _ = runMosaic(t, "deid", "--out", out2, "--site-key", key, "--policy", evil, "--report", report, filepath.Join(cohort, "dicom", "0001"))
	if code != exitFailure {
		t.Errorf("unsafe prefix: exit %d, want 1", code)
	}
	for _, r := range readReport(t, report) {
		if r.Status != statusFailed || r.Code != codeUnsafePath {
			t.Fatalf("unsafe prefix: %+v", r)
		}
	}
	if files := listFiles(t, tmp); slices.ContainsFunc(files, func(f string) bool { return strings.Contains(f, "x") && strings.HasSuffix(f, ".dcm") }) {
		t.Errorf("files written with the unsafe prefix: %v", files)
	}

	// The preset basic in the same OUTDIR gives other folders, no clash.
	if code, _, stderr := runMosaic(t, "deid", "--out", out, "--site-key", key, filepath.Join(cohort, "dicom", "0001")); code != exitOK {
		t.Fatalf("basic: exit %d; stderr:\n%s", code, stderr)
	}
}

// writeZip builds a zip with the given members.
func writeZip(t *testing.T, path string, members []zipMember) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for _, m := range members {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: m.name, Method: zip.Deflate})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// bombDICOM returns the object with 8 MiB of zeros as pixel data: it
// compresses about a thousand times.
func bombDICOM(t *testing.T, obj []byte) []byte {
	t.Helper()
	f, err := dicom.Parse(obj, dicom.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.Dataset.SetBytes(dicom.TagPixelData, dicom.OW, make([]byte, 8<<20))
	var b bytes.Buffer
	if err := dicom.WriteFile(&b, f); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type zipMember struct {
	name string
	data []byte
}

func TestDeidZip(t *testing.T) {
	cohort, _ := deidCohort(t)
	series := filepath.Join(cohort, "dicom", "0001", "01", "01")
	a, _ := os.ReadFile(filepath.Join(series, "0001.dcm"))
	b, _ := os.ReadFile(filepath.Join(series, "0002.dcm"))
	c, _ := os.ReadFile(filepath.Join(series, "0003.dcm"))
	tmp := t.TempDir()
	archive := filepath.Join(tmp, "in", "export.zip")
	os.MkdirAll(filepath.Dir(archive), 0o755)
	writeZip(t, archive, []zipMember{
		{"study/", nil},
		{"study/a.dcm", a},
		{"../evil.dcm", b},
		{"/abs.dcm", c},
		{`..\win.dcm`, c},
		{"study/notes.txt", []byte("not DICOM at all, just some notes\n")},
		{"bomb.dcm", bombDICOM(t, a)}, // 8 MiB of zero pixels: inflates about 1000 times
		{"inner.zip", []byte("PK")},
		{"study/b.dcm", b},
	})
	out := filepath.Join(tmp, "out")
	report := filepath.Join(tmp, "report.jsonl")
	code, _, stderr := runMosaic(t, "deid", "--out", out, "--site-key", filepath.Join(tmp, "k"), "--report", report, archive)
	if code != exitFailure {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	want := map[string]struct{ status, code string }{
		archive + "!study/a.dcm":     {statusOK, ""},
		archive + "!../evil.dcm":     {statusFailed, codeUnsafeMember},
		archive + "!/abs.dcm":        {statusFailed, codeUnsafeMember},
		archive + `!..\win.dcm`:      {statusFailed, codeUnsafeMember},
		archive + "!study/notes.txt": {statusFailed, codeReadError},
		archive + "!bomb.dcm":        {statusFailed, codeZipLimit},
		archive + "!inner.zip":       {statusFailed, codeNested},
		archive + "!study/b.dcm":     {statusOK, ""},
	}
	recs := readReport(t, report)
	if len(recs) != len(want) {
		t.Errorf("%d report lines, want %d: %+v", len(recs), len(want), recs)
	}
	for _, r := range recs {
		w, ok := want[r.Input]
		if !ok {
			t.Errorf("unexpected report line %+v", r)
			continue
		}
		if r.Status != w.status || (w.code != "" && r.Code != w.code) {
			t.Errorf("%s: status %s code %s (%s), want %s %s", r.Input, r.Status, r.Code, r.Reason, w.status, w.code)
		}
		if r.Code == codeUnsafeMember && !strings.Contains(r.Reason, reasonUnsafeName) {
			t.Errorf("%s: reason %q", r.Input, r.Reason)
		}
		if r.Status == statusFailed && (r.Output != "" || r.Reason == "") {
			t.Errorf("%s: %+v", r.Input, r)
		}
		if !strings.Contains(stderr, r.Input) && r.Status == statusFailed {
			t.Errorf("failure of %s not on stderr", r.Input)
		}
	}
	// Nothing was written outside OUTDIR: the temporary folder holds the
	// input, the key, the report and OUTDIR only, and OUTDIR two files.
	var stray []string
	filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasPrefix(p, out+string(filepath.Separator)) {
			switch p {
			case archive, report, filepath.Join(tmp, "k"):
			default:
				stray = append(stray, p)
			}
		}
		return nil
	})
	if len(stray) > 0 {
		t.Errorf("files written outside OUTDIR: %v", stray)
	}
	if n := len(listFiles(t, out)); n != 2 {
		t.Errorf("OUTDIR holds %d files, want 2", n)
	}

	// The size limit applies to the declared and the actual size.
	out2 := filepath.Join(tmp, "out2")
	code, _, _ = runMosaic(t, "deid", "-q", "--out", out2, "--site-key", filepath.Join(tmp, "k"), "--report", report, "--zip-max-size", "1000", archive)
	if code != exitFailure {
		t.Fatalf("--zip-max-size: exit %d", code)
	}
	for _, r := range readReport(t, report) {
		if r.Status == statusOK {
			t.Errorf("--zip-max-size 1000: %s passed", r.Input)
		}
	}
}

func TestDeidBadFiles(t *testing.T) {
	cohort, _ := deidCohort(t)
	// The named temporary files of systems without O_TMPFILE are tested
	// in internal/deid (TestTreeNamed).
	testDeidBadFiles(t, cohort)
}

func testDeidBadFiles(t *testing.T, cohort string) {
	tmp := t.TempDir()
	in := filepath.Join(tmp, "in")
	series := filepath.Join(cohort, "dicom", "0001", "01", "01")
	names, _ := os.ReadDir(series)
	os.MkdirAll(filepath.Join(in, "a"), 0o755)
	os.MkdirAll(filepath.Join(in, "b"), 0o755)
	for _, n := range names {
		b, _ := os.ReadFile(filepath.Join(series, n.Name()))
		os.WriteFile(filepath.Join(in, "a", n.Name()), b, 0o644)
	}
	first, _ := os.ReadFile(filepath.Join(series, names[0].Name()))
	os.WriteFile(filepath.Join(in, "b", "truncated.dcm"), first[:len(first)/2], 0o644)
	os.WriteFile(filepath.Join(in, "b", "readme.txt"), []byte("Exported by the PACS on Monday.\n"), 0o644)
	os.WriteFile(filepath.Join(in, "b", "empty"), nil, 0o644)
	// The same object twice: identical is skipped, other pixels fail.
	os.WriteFile(filepath.Join(in, "b", "same.dcm"), first, 0o644)
	changed := slices.Clone(first)
	changed[len(changed)-1] ^= 0xFF // a pixel byte: same UIDs, other content
	os.WriteFile(filepath.Join(in, "b", "twin.dcm"), changed, 0o644)

	// OUTDIR, the key and the report inside an input folder are not read.
	out := filepath.Join(in, "b", "out")
	report := filepath.Join(in, "a", "report.jsonl")
	os.Symlink(filepath.Join(in, "a"), filepath.Join(tmp, "link"))
	code, stdout, stderr := runMosaic(t, "deid", "--workers", "1", "--out", out, "--site-key", filepath.Join(in, "b", "k"), "--report", report,
		filepath.Join(tmp, "link"), filepath.Join(in, "b"), filepath.Join(in, "missing.dcm"))
	if code != exitFailure {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	byInput := map[string]record{}
	for _, r := range readReport(t, report) {
		byInput[r.Input] = r
	}
	if len(byInput) != len(names)+6 {
		t.Errorf("%d report lines, want %d", len(byInput), len(names)+6)
	}
	for _, n := range names {
		if r := byInput[filepath.Join(tmp, "link", n.Name())]; r.Status != statusOK || r.Code == codeSkipped {
			t.Errorf("%s: %+v", n.Name(), r)
		}
	}
	for name, want := range map[string]string{
		"b/truncated.dcm": codeReadError, "b/readme.txt": codeReadError, "b/empty": codeReadError,
		"b/twin.dcm": codeDuplicate, "missing.dcm": codeReadError,
	} {
		r := byInput[filepath.Join(in, filepath.FromSlash(name))]
		if r.Status != statusFailed || r.Code != want || r.Output != "" {
			t.Errorf("%s: %+v, want failed %s", name, r, want)
		}
	}
	if r := byInput[filepath.Join(in, "b", "twin.dcm")]; r.Reason != reasonDuplicate {
		t.Errorf("twin: reason %q", r.Reason)
	}
	if r := byInput[filepath.Join(in, "b", "truncated.dcm")]; !strings.Contains(r.Reason, "offset") {
		t.Errorf("truncated: reason %q does not give the codec's offset", r.Reason)
	}
	if r := byInput[filepath.Join(in, "b", "same.dcm")]; r.Status != statusOK || r.Code != codeSkipped {
		t.Errorf("same object twice: %+v, want ok/skipped", r)
	}
	if !strings.Contains(stdout, "failed") {
		t.Errorf("summary:\n%s", stdout)
	}
	if n := len(listFiles(t, out)); n != len(names) {
		t.Errorf("OUTDIR holds %d files, want %d", n, len(names))
	}
	noTemps(t, out)
}

func TestDeidUsage(t *testing.T) {
	cohort, _ := deidCohort(t)
	in := filepath.Join(cohort, "dicom", "0001")
	tmp := t.TempDir()
	out := filepath.Join(tmp, "out")
	key := filepath.Join(tmp, "site.key")
	bad := filepath.Join(tmp, "bad.json")
	os.WriteFile(bad, []byte(`{"dates": "sometimes"}`), 0o644)
	for _, args := range [][]string{
		{"deid", "--site-key", key, in},                                     // no --out
		{"deid", "--out", out, "--site-key", key},                           // no input
		{"deid", "--out", out, "--site-key", key, "--policy", "strict", in}, // unknown preset
		{"deid", "--out", out, "--site-key", key, "--policy", bad, in},      // invalid policy file
		{"deid", "--out", out, in},                                          // no key and no default
		{"deid", "--out", out, "--site-key", filepath.Join(out, "site.key"), in},
		{"deid", "--out", out, "--site-key", key, "--report", filepath.Join(out, "r.jsonl"), in},
		{"deid", "--out", out, "--site-key", key, "--workers", "-1", in},
		{"deid", "--out", out, "--site-key", key, "--no-such-flag", in},
		{"deid", "--out", cohort, "--site-key", key, in}, // input inside OUTDIR
		{"deid", "-o", out, "--site-key", key, in},       // -o is the format now
		{"deid", "--out", out, "-o", "yaml", "--site-key", key, in},
		{"deid", "clinical", "--site-key", key, "--id-column", "patient_id", "-o", filepath.Join(tmp, "c.csv"), filepath.Join(cohort, "clinical.csv")},
		{"deid", "policy", "show", "--policy", "strict"},
		{"deid", "policy", "bogus"},
		{"deid", "clinical", "--out", filepath.Join(tmp, "c.csv"), filepath.Join(cohort, "clinical.csv")},
		{"deid", "clinical", "--site-key", key, "--id-column", "nope", "--out", filepath.Join(tmp, "c.csv"), filepath.Join(cohort, "clinical.csv")},
	} {
		code, stdout, stderr := runMosaic(t, args...)
		if code != exitUsage {
			t.Errorf("%v: exit %d, want 2; stderr:\n%s", args, code, stderr)
		}
		if stdout != "" || stderr == "" {
			t.Errorf("%v: stdout %q, stderr %q", args, stdout, stderr)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("usage errors created OUTDIR")
	}
	if _, err := os.Stat(key); err == nil {
		t.Errorf("usage errors created the key")
	}
	if _, err := os.Stat(filepath.Join(tmp, "c.csv")); err == nil {
		t.Errorf("usage errors wrote the clinical output")
	}

	// A key file others can read is refused.
	os.WriteFile(filepath.Join(tmp, "open.key"), make([]byte, 32), 0o644)
	os.Chmod(filepath.Join(tmp, "open.key"), 0o644)
	if code, _, stderr := runMosaic(t, "deid", "--out", out, "--site-key", filepath.Join(tmp, "open.key"), in); code != exitUsage {
		t.Errorf("key readable by others: exit %d, want 2; stderr:\n%s", code, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a refused key created OUTDIR")
	}

	// The key may come from the environment.
	var stdout, stderr bytes.Buffer
	getenv := func(k string) string {
		if k == siteKeyEnv {
			return key
		}
		return ""
	}
	if code := run(context.Background(), []string{"deid", "-q", "--out", out, in}, getenv, strings.NewReader(""), &stdout, &stderr); code != exitOK {
		t.Fatalf("key from $%s: exit %d; stderr:\n%s", siteKeyEnv, code, stderr.String())
	}
	if _, err := os.Stat(key); err != nil {
		t.Errorf("key from $%s not created: %v", siteKeyEnv, err)
	}
}

func TestDeidPolicyShow(t *testing.T) {
	code, stdout, stderr := runMosaic(t, "deid", "policy", "show")
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	for _, s := range []string{"(0010,0010)", "Patient's Name", "keyed pseudonym", "(0008,0020)", "Study Date", "basic profile", "(60xx,3000)", "DECIDED BY"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("policy show lacks %q", s)
		}
	}
	code, stdout, stderr = runMosaic(t, "deid", "policy", "show", "--policy", "eucaim", "--json")
	if code != exitOK {
		t.Fatalf("--json: exit %d; stderr:\n%s", code, stderr)
	}
	var doc struct {
		Policy struct {
			Name  string `json:"name"`
			Dates string `json:"dates"`
		} `json:"policy"`
		Rules []policyRule `json:"rules"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Policy.Name != "eucaim" || doc.Policy.Dates != "month" || len(doc.Rules) < 400 {
		t.Errorf("eucaim: %+v, %d rules", doc.Policy, len(doc.Rules))
	}
	found := false
	for _, r := range doc.Rules {
		if r.Tag == "(0008,103E)" {
			found = true
			if r.Action != "K" || r.DecidedBy != "policy override" || r.Keyword != "SeriesDescription" {
				t.Errorf("eucaim SeriesDescription: %+v", r)
			}
		}
	}
	if !found {
		t.Errorf("no rule for (0008,103E)")
	}
}

func TestDeidClinicalJoin(t *testing.T) {
	cohort, m := deidCohort(t)
	tmp := t.TempDir()
	out := filepath.Join(tmp, "out")
	key := filepath.Join(tmp, "site.key")
	if code, _, stderr := runMosaic(t, "deid", "-q", "--out", out, "--site-key", key, filepath.Join(cohort, "dicom")); code != exitOK {
		t.Fatalf("deid: exit %d; stderr:\n%s", code, stderr)
	}
	folders := map[string]bool{}
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		folders[e.Name()] = true
	}
	if len(folders) != m.Patients {
		t.Fatalf("%d patient folders, want %d", len(folders), m.Patients)
	}
	clinical := filepath.Join(cohort, synth.ClinicalFile)
	readCSV := func(p string) [][]string {
		t.Helper()
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rows, err := csv.NewReader(f).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	orig := readCSV(clinical)

	csvOut := filepath.Join(tmp, "clinical-deid.csv")
	code, stdout, stderr := runMosaic(t, "deid", "clinical", "--site-key", key, "--id-column", "patient_id",
		"--issuer-column", "issuer_of_patient_id", "--date-columns", "diagnosis_date,last_contact_date",
		"--out", csvOut, clinical)
	if code != exitOK {
		t.Fatalf("clinical: exit %d; stderr:\n%s", code, stderr)
	}
	rows := readCSV(csvOut)
	// The issuer column names the hospital: it is left out. Each row's
	// keyed mark comes last.
	wantHeader := append(slices.DeleteFunc(slices.Clone(orig[0]), func(c string) bool { return c == "issuer_of_patient_id" }), "mosaic_deid")
	if len(rows) != m.Patients+1 || !slices.Equal(rows[0], wantHeader) {
		t.Fatalf("clinical output: %d rows, header %v", len(rows), rows[0])
	}
	idCol := slices.Index(rows[0], "patient_id")
	dxCol := slices.Index(rows[0], "diagnosis_date")
	for i, r := range rows[1:] {
		if !folders[r[idCol]] {
			t.Errorf("row %d: pseudonym %q matches no patient folder of the images", i+1, r[idCol])
		}
		if r[idCol] == orig[i+1][idCol] {
			t.Errorf("row %d: ID copied unchanged", i+1)
		}
		if r[dxCol] != "" {
			t.Errorf("row %d: basic policy kept diagnosis_date %q", i+1, r[dxCol])
		}
	}
	raw, _ := os.ReadFile(csvOut)
	for _, r := range orig[1:] {
		if bytes.Contains(raw, []byte(r[idCol])) {
			t.Errorf("an original patient ID is in the output")
		}
	}
	if !strings.Contains(stdout, "patient pseudonyms") {
		t.Errorf("summary:\n%s", stdout)
	}

	// Without issuer options the table's own issuer_of_patient_id column
	// (Mosaic's clinical format) keys the pseudonyms, so they match the
	// images, and the summary says so.
	code, stdout, stderr = runMosaic(t, "deid", "clinical", "--site-key", key, "--id-column", "patient_id", "--out", csvOut, clinical)
	if code != exitOK {
		t.Fatalf("clinical without issuer options: exit %d; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "issuers: column issuer_of_patient_id") {
		t.Errorf("summary does not name the issuer column it took:\n%s", stdout)
	}
	for i, r := range readCSV(csvOut)[1:] {
		if !folders[r[idCol]] {
			t.Errorf("row %d: pseudonym %s matches no image folder", i+1, r[idCol])
		}
	}
	// With another issuer the pseudonyms cannot match the images, which
	// key them with the Issuer of Patient ID too.
	code, _, stderr = runMosaic(t, "deid", "clinical", "--site-key", key, "--id-column", "patient_id", "--issuer", "ANOTHER HOSPITAL", "--out", csvOut, clinical)
	if code != exitOK {
		t.Fatalf("clinical with another issuer: exit %d; stderr:\n%s", code, stderr)
	}
	for _, r := range readCSV(csvOut)[1:] {
		if folders[r[idCol]] {
			t.Errorf("a pseudonym keyed with another issuer matched the images")
		}
	}

	// A row without an ID is left out and named by its line; a malformed
	// table writes nothing.
	small := filepath.Join(tmp, "small.csv")
	os.WriteFile(small, []byte("patient_id,visit_date,note\n12345678,2020-03-17,a\n,2020-04-01,b\n87654321,not a date,c\n"), 0o644)
	smallOut := filepath.Join(tmp, "small-deid.csv")
	code, stdout, stderr = runMosaic(t, "deid", "clinical", "--site-key", key, "--policy", "longitudinal", "--id-column", "patient_id",
		"--issuer", "SOME HOSPITAL", "--date-columns", "visit_date", "--out", smallOut, small)
	if code != exitFailure || !strings.Contains(stderr, "line 3") {
		t.Errorf("row without ID: exit %d, stderr:\n%s", code, stderr)
	}
	rows = readCSV(smallOut)
	if len(rows) != 3 || rows[1][1] == "2020-03-17" || len(rows[1][1]) != 10 || rows[2][1] != "" || rows[1][2] != "a" {
		t.Errorf("small table: %v", rows)
	}
	if strings.Contains(stdout+stderr, "12345678") || strings.Contains(stdout+stderr, "2020-03-17") {
		t.Errorf("a value of the table in the messages:\n%s%s", stdout, stderr)
	}
	os.WriteFile(small, []byte("patient_id,visit_date\n1,2,3\n"), 0o644)
	os.Remove(smallOut)
	if code, _, _ := runMosaic(t, "deid", "clinical", "--site-key", key, "--id-column", "patient_id", "--out", smallOut, small); code != exitFailure {
		t.Errorf("malformed table: exit %d, want 1", code)
	}
	if _, err := os.Stat(smallOut); err == nil {
		t.Errorf("malformed table: output written")
	}

	// eucaim moves dates to the first of the month; -o json gives the
	// summary as one document.
	code, stdout, stderr = runMosaic(t, "deid", "clinical", "--site-key", key, "--policy", "eucaim", "--id-column", "patient_id",
		"--issuers-from", filepath.Join(cohort, "dicom"), "--date-columns", "diagnosis_date", "--drop-columns", "topography_label",
		"--out", csvOut, "-o", "json", clinical)
	if code != exitOK {
		t.Fatalf("clinical eucaim: exit %d; stderr:\n%s", code, stderr)
	}
	var js struct {
		Rows, Written, Patients int
		IssuerPatients          int `json:"issuer_patients"`
		NotFound                int `json:"issuer_not_found"`
	}
	if err := json.Unmarshal([]byte(stdout), &js); err != nil {
		t.Fatalf("-o json: %v\n%s", err, stdout)
	}
	if js.Rows != m.Patients || js.Written != m.Patients || js.Patients != m.Patients || js.IssuerPatients != m.Patients || js.NotFound != 0 {
		t.Errorf("-o json summary %+v, want %d patients", js, m.Patients)
	}
	rows = readCSV(csvOut)
	if slices.Contains(rows[0], "topography_label") || len(rows[0]) != len(orig[0]) { // one dropped, the mark added
		t.Errorf("dropped column still there: %v", rows[0])
	}
	dx := slices.Index(rows[0], "diagnosis_date")
	for i, r := range rows[1:] {
		if want := orig[i+1][slices.Index(orig[0], "diagnosis_date")][:8] + "01"; r[dx] != want {
			t.Errorf("row %d: eucaim diagnosis_date %q, want %q", i+1, r[dx], want)
		}
	}
}

// BenchmarkDeid de-identifies a small cohort per iteration, for profiles of
// the command and the engine:
//
//	go test -run '^$' -bench Deid -cpuprofile cpu.out ./cmd/mosaic/
func BenchmarkDeid(b *testing.B) {
	dir := b.TempDir()
	m, err := synth.Generate(context.Background(), synth.Options{Dir: filepath.Join(dir, "cohort"), Patients: 5, Seed: deidSeed})
	if err != nil {
		b.Fatal(err)
	}
	in := filepath.Join(dir, "cohort", "dicom")
	key := filepath.Join(dir, "site.key")
	b.SetBytes(m.Bytes)
	i := 0
	for b.Loop() {
		out := filepath.Join(dir, "out"+strconv.Itoa(i))
		i++
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{"deid", "-q", "--sync=false", "--out", out, "--site-key", key, in},
			func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr); code != exitOK {
			b.Fatalf("exit %d: %s", code, stderr.String())
		}
		b.StopTimer()
		os.RemoveAll(out)
		b.StartTimer()
	}
}
