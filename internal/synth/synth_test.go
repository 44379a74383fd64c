package synth

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

// The shared cohort: large enough (RiskyFloor patients and more) to hold
// every SOP class, small enough to write in well under a second.
const (
	fixturePatients = 12
	fixtureSeed     = 42
)

var fixture struct {
	once  sync.Once
	dir   string
	m     Manifest
	files []fileInfo
	err   error
}

// fileInfo is what the tests need of one written file.
type fileInfo struct {
	rel  string // path relative to the cohort directory
	size int64
	ds   *dicom.Dataset
}

func (f *fileInfo) str(t *testing.T, kw string) string {
	t.Helper()
	e, ok := dicom.LookupKeyword(kw)
	if !ok {
		t.Fatalf("no keyword %s", kw)
	}
	v, _ := f.ds.String(e.Tag)
	return v
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture.dir != "" {
		os.RemoveAll(fixture.dir)
	}
	os.Exit(code)
}

// cohortFixture generates the shared cohort once and reads every file
// back.
func cohortFixture(t *testing.T) (string, Manifest, []fileInfo) {
	t.Helper()
	fixture.once.Do(func() {
		dir, err := os.MkdirTemp("", "synth-test-*")
		if err != nil {
			fixture.err = err
			return
		}
		fixture.dir = dir
		fixture.m, fixture.err = Generate(context.Background(), Options{Dir: dir, Patients: fixturePatients, Seed: fixtureSeed})
		if fixture.err != nil {
			return
		}
		fixture.files, fixture.err = readCohort(dir)
	})
	if fixture.err != nil {
		t.Fatal(fixture.err)
	}
	return fixture.dir, fixture.m, fixture.files
}

// readCohort reads every DICOM file under dir with the project's codec.
func readCohort(dir string) ([]fileInfo, error) {
	var out []fileInfo
	err := filepath.WalkDir(filepath.Join(dir, DICOMDir), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if strings.HasPrefix(d.Name(), ".tmp") {
			return errors.New("temporary file left behind: " + rel)
		}
		f, err := dicom.ReadFile(path, dicom.ReadOptions{})
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, fileInfo{rel: filepath.ToSlash(rel), size: fi.Size(), ds: &f.Dataset})
		return nil
	})
	return out, err
}

// treeBytes maps every file under dir (relative path) to its content.
func treeBytes(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	dir, _, _ := cohortFixture(t)
	// Same seed, one worker instead of several: the same bytes.
	again := t.TempDir()
	if _, err := Generate(context.Background(), Options{Dir: again, Patients: fixturePatients, Seed: fixtureSeed, Workers: 1}); err != nil {
		t.Fatal(err)
	}
	a, b := treeBytes(t, dir), treeBytes(t, again)
	if len(a) != len(b) {
		t.Fatalf("got %d files on the second run, want %d", len(b), len(a))
	}
	for name, content := range a {
		if !bytes.Equal(content, b[name]) {
			t.Errorf("%s differs between two runs with the same seed", name)
		}
	}

	// Another seed: other patients, other UIDs.
	other := t.TempDir()
	if _, err := Generate(context.Background(), Options{Dir: other, Patients: 3, Seed: fixtureSeed + 1}); err != nil {
		t.Fatal(err)
	}
	c := treeBytes(t, other)
	if bytes.Equal(a[ClinicalFile], c[ClinicalFile]) {
		t.Error("clinical.csv is the same for two seeds")
	}
	first := "dicom/0001/01/01/0001.dcm"
	if bytes.Equal(a[first], c[first]) {
		t.Errorf("%s is the same for two seeds", first)
	}
}

func TestManifestMatchesFiles(t *testing.T) {
	t.Parallel()
	dir, m, files := cohortFixture(t)

	// The manifest on disk is the one returned.
	raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var disk Manifest
	if err := json.Unmarshal(raw, &disk); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(disk, m) {
		t.Errorf("manifest.json differs from the returned manifest:\n%+v\n%+v", disk, m)
	}

	// Recount everything from the files themselves.
	type sets struct {
		patients, studies, series map[string]bool
		instances                 int
		bytes                     int64
	}
	newSets := func() *sets {
		return &sets{patients: map[string]bool{}, studies: map[string]bool{}, series: map[string]bool{}}
	}
	total := newSets()
	byMod, byPart := map[string]*sets{}, map[string]*sets{}
	sop := map[string]int{}
	var burned []string
	for i := range files {
		f := &files[i]
		pid, st, se := f.str(t, "PatientID"), f.str(t, "StudyInstanceUID"), f.str(t, "SeriesInstanceUID")
		for _, s := range []*sets{total, get(byMod, f.str(t, "Modality"), newSets), get(byPart, f.str(t, "BodyPartExamined"), newSets)} {
			s.patients[pid], s.studies[st], s.series[se] = true, true, true
			s.instances++
			s.bytes += f.size
		}
		sop[f.ds.UID(dicom.TagSOPClassUID)]++
		if f.str(t, "BurnedInAnnotation") == "YES" {
			burned = append(burned, f.rel)
		}
	}
	check := func(what string, got *sets, want Count) {
		t.Helper()
		g := Count{Patients: len(got.patients), Studies: len(got.studies), Series: len(got.series), Instances: got.instances, Bytes: got.bytes}
		if g != want {
			t.Errorf("%s: files say %+v, manifest says %+v", what, g, want)
		}
	}
	check("total", total, Count{Patients: m.Patients, Studies: m.Studies, Series: m.Series, Instances: m.Instances, Bytes: m.Bytes})
	if len(byMod) != len(m.Modalities) || len(byPart) != len(m.BodyParts) {
		t.Errorf("files have modalities %v and body parts %v; manifest %v and %v", keys(byMod), keys(byPart), keys(m.Modalities), keys(m.BodyParts))
	}
	for k, s := range byMod {
		check("modality "+k, s, m.Modalities[k])
	}
	for k, s := range byPart {
		check("body part "+k, s, m.BodyParts[k])
	}
	if !reflect.DeepEqual(sop, m.SOPClasses) {
		t.Errorf("SOP classes: files %v, manifest %v", sop, m.SOPClasses)
	}
	for _, want := range []string{sopCT, sopMR, sopPT, sopUS, sopSC} {
		if sop[want] == 0 {
			t.Errorf("no instance of SOP class %s in a cohort of %d patients", want, fixturePatients)
		}
	}

	// Risky objects: exactly the files with burned-in text.
	var listed []string
	for _, r := range m.Risky {
		listed = append(listed, r.Path)
		if r.SOPClass != sopUS && r.SOPClass != sopSC {
			t.Errorf("risky %s has SOP class %s", r.Path, r.SOPClass)
		}
	}
	slices.Sort(burned)
	if !slices.Equal(listed, burned) {
		t.Errorf("risky objects %v, files with BurnedInAnnotation YES %v", listed, burned)
	}
	if m.ClinicalRows != m.Patients || m.Seed != fixtureSeed || m.Size != SizeSmall || m.Version != ManifestVersion {
		t.Errorf("manifest header: %+v", m)
	}
}

func get[V any](m map[string]V, k string, mk func() V) V {
	v, ok := m[k]
	if !ok {
		v = mk()
		m[k] = v
	}
	return v
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestIdentifyingValues(t *testing.T) {
	t.Parallel()
	_, _, files := cohortFixture(t)
	required := []string{
		"PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex", "PatientAge",
		"PatientWeight", "PatientAddress", "PatientTelephoneNumbers", "ReferringPhysicianName",
		"OperatorsName", "InstitutionName", "InstitutionAddress", "StationName", "AccessionNumber",
		"StudyID", "StudyDescription", "SeriesDescription", "StudyDate", "StudyInstanceUID",
		"SeriesInstanceUID", "SOPInstanceUID",
	}
	seqs := map[string][]string{
		"OtherPatientIDsSequence":                  {"PatientID", "IssuerOfPatientID"},
		"ReferringPhysicianIdentificationSequence": {"InstitutionName", "PersonAddress"},
		"RequestAttributesSequence":                {"RequestedProcedureID", "ScheduledProcedureStepID"},
	}
	var utf8Names, nameInText int
	uids := map[string]string{}
	for i := range files {
		f := &files[i]
		for _, kw := range required {
			if f.str(t, kw) == "" {
				t.Errorf("%s: %s is empty", f.rel, kw)
			}
		}
		for kw, inner := range seqs {
			e, _ := dicom.LookupKeyword(kw)
			el := f.ds.Get(e.Tag)
			if el == nil || len(el.Items) == 0 {
				t.Errorf("%s: no %s", f.rel, kw)
				continue
			}
			it := &fileInfo{rel: f.rel, ds: &el.Items[0].Dataset}
			for _, k := range inner {
				if it.str(t, k) == "" {
					t.Errorf("%s: %s > %s is empty", f.rel, kw, k)
				}
			}
		}
		if creator, _ := f.ds.String(TagPrivateCreator); creator != PrivateCreator {
			t.Errorf("%s: private creator %q, want %q", f.rel, creator, PrivateCreator)
		}
		if id, _ := f.ds.String(TagPrivatePatientID); id != f.str(t, "PatientID") {
			t.Errorf("%s: private patient ID %q, want %q", f.rel, id, f.str(t, "PatientID"))
		}
		if _, ok := f.ds.Int(TagPrivateProtocol); !ok {
			t.Errorf("%s: no numeric private element", f.rel)
		}
		name := f.str(t, "PatientName")
		if !strings.Contains(name, "^") {
			t.Errorf("%s: patient name %q has no components", f.rel, name)
		}
		if cs, _ := f.ds.String(dicom.TagSpecificCharacterSet); cs == "ISO_IR 192" && hasNonASCII(name) {
			utf8Names++
		} else if hasNonASCII(name) {
			t.Errorf("%s: non-ASCII name %q without ISO_IR 192 (got %q)", f.rel, name, cs)
		}
		family := dicom.ParsePN(name).Alphabetic.Family
		for _, kw := range []string{"StudyDescription", "SeriesDescription"} {
			if strings.Contains(strings.ToUpper(f.str(t, kw)), strings.ToUpper(family)) {
				nameInText++
			}
		}
		// Dates: born before the study, age as written.
		birth, err1 := time.Parse("20060102", f.str(t, "PatientBirthDate"))
		study, err2 := time.Parse("20060102", f.str(t, "StudyDate"))
		if err1 != nil || err2 != nil || !birth.Before(study) {
			t.Errorf("%s: birth %s, study %s", f.rel, f.str(t, "PatientBirthDate"), f.str(t, "StudyDate"))
		} else if want := ageString(ageOn(birth, study)); f.str(t, "PatientAge") != want {
			t.Errorf("%s: PatientAge %s, want %s", f.rel, f.str(t, "PatientAge"), want)
		}
		for _, kw := range []string{"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"} {
			if u := f.str(t, kw); u != "" && !validUID(u) {
				t.Errorf("%s: %s %q is not a valid UID", f.rel, kw, u)
			}
		}
		sop := f.str(t, "SOPInstanceUID")
		if prev, ok := uids[sop]; ok {
			t.Errorf("%s and %s share SOP instance UID %s", prev, f.rel, sop)
		}
		uids[sop] = f.rel
	}
	if utf8Names == 0 {
		t.Error("no file has a non-ASCII patient name in UTF-8")
	}
	if nameInText == 0 {
		t.Error("no description carries the patient's name")
	}
}

func hasNonASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

func validUID(u string) bool {
	if len(u) > 64 || !strings.HasPrefix(u, "2.25.") {
		return false
	}
	for _, c := range strings.Split(u, ".") {
		if c == "" || (len(c) > 1 && c[0] == '0') {
			return false
		}
		for _, d := range c {
			if d < '0' || d > '9' {
				return false
			}
		}
	}
	return true
}

func TestClinicalTable(t *testing.T) {
	t.Parallel()
	dir, m, files := cohortFixture(t)
	fh, err := os.Open(filepath.Join(dir, ClinicalFile))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	rows, err := csv.NewReader(fh).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rows[0], ClinicalColumns) {
		t.Fatalf("header %v, want %v", rows[0], ClinicalColumns)
	}
	if len(rows)-1 != m.Patients {
		t.Fatalf("%d rows, want %d", len(rows)-1, m.Patients)
	}
	col := map[string]int{}
	for i, c := range ClinicalColumns {
		col[c] = i
	}
	// What the images say of each patient.
	type seen struct {
		birth, first, last time.Time
		sex                string
		studies            map[string]bool
	}
	byID := map[string]*seen{}
	for i := range files {
		f := &files[i]
		s := get(byID, f.str(t, "PatientID"), func() *seen { return &seen{studies: map[string]bool{}} })
		s.birth, _ = time.Parse("20060102", f.str(t, "PatientBirthDate"))
		s.sex = f.str(t, "PatientSex")
		d, _ := time.Parse("20060102", f.str(t, "StudyDate"))
		if s.first.IsZero() || d.Before(s.first) {
			s.first = d
		}
		if d.After(s.last) {
			s.last = d
		}
		s.studies[f.str(t, "StudyInstanceUID")] = true
	}
	codes := map[string]string{}
	for _, site := range cancerSites {
		for _, tp := range site.topographies {
			codes[tp.code] = site.cancerType + " " + tp.icd10
		}
	}
	for _, r := range rows[1:] {
		id := r[col["patient_id"]]
		s, ok := byID[id]
		if !ok {
			t.Errorf("clinical patient %s has no images", id)
			continue
		}
		day := func(c string) time.Time {
			v, err := time.Parse("2006-01-02", r[col[c]])
			if err != nil {
				t.Errorf("%s: %s %q: %v", id, c, r[col[c]], err)
			}
			return v
		}
		dx, last := day("diagnosis_date"), day("last_contact_date")
		if !dx.Before(s.first) {
			t.Errorf("%s: diagnosis %s not before the first study %s", id, dx.Format(time.DateOnly), s.first.Format(time.DateOnly))
		}
		if last.Before(s.last) || last.After(clock) {
			t.Errorf("%s: last contact %s before the last study %s or after %s", id, last.Format(time.DateOnly), s.last.Format(time.DateOnly), clock.Format(time.DateOnly))
		}
		if got, _ := strconv.Atoi(r[col["follow_up_days"]]); got != int(last.Sub(dx).Hours()/24) {
			t.Errorf("%s: follow_up_days %d, dates say %d", id, got, int(last.Sub(dx).Hours()/24))
		}
		if got, _ := strconv.Atoi(r[col["age_at_diagnosis"]]); got != ageOn(s.birth, dx) {
			t.Errorf("%s: age_at_diagnosis %d, birth date says %d", id, got, ageOn(s.birth, dx))
		}
		if want := map[string]string{"F": "female", "M": "male"}[s.sex]; r[col["birth_sex"]] != want {
			t.Errorf("%s: birth_sex %s, images say %s", id, r[col["birth_sex"]], s.sex)
		}
		if got, _ := strconv.Atoi(r[col["imaging_studies"]]); got != len(s.studies) {
			t.Errorf("%s: imaging_studies %d, images have %d", id, got, len(s.studies))
		}
		if want := r[col["cancer_type"]] + " " + r[col["icd10_code"]]; codes[r[col["topography_code"]]] != want {
			t.Errorf("%s: topography %s does not fit %s", id, r[col["topography_code"]], want)
		}
		if (r[col["stage_m"]] == "M1") != (r[col["stage_group"]] == "IV") {
			t.Errorf("%s: %s with stage group %s", id, r[col["stage_m"]], r[col["stage_group"]])
		}
		if (r[col["vital_status"]] == "deceased") != (r[col["cause_of_death"]] != "") {
			t.Errorf("%s: vital status %s with cause of death %q", id, r[col["vital_status"]], r[col["cause_of_death"]])
		}
	}
	if len(byID) != m.Patients {
		t.Errorf("images have %d patients, clinical table %d", len(byID), m.Patients)
	}
}

// TestClinicalDocs keeps docs/clinical-csv.md in step with the columns.
func TestClinicalDocs(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "clinical-csv.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ClinicalColumns {
		if !bytes.Contains(doc, []byte("| `"+c+"` |")) {
			t.Errorf("docs/clinical-csv.md does not document column %s", c)
		}
	}
}

// samplePerSeries returns the first file of every series, which covers
// every SOP class and every kind of series written.
func samplePerSeries(files []fileInfo) []fileInfo {
	var out []fileInfo
	seen := map[string]bool{}
	for _, f := range files {
		dir := f.rel[:strings.LastIndexByte(f.rel, '/')]
		if !seen[dir] {
			seen[dir] = true
			out = append(out, f)
		}
	}
	return out
}

// tool finds an external validator, skipping the test outside CI when it
// is missing and failing in CI.
func tool(t *testing.T, path, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(path)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "" {
		t.Skipf("%s is not installed (Debian package %s); install it to validate the files", path, pkg)
	}
	t.Fatalf("%s is not installed (Debian package %s) and CI is set", path, pkg)
	return ""
}

func TestDciodvfy(t *testing.T) {
	t.Parallel()
	bin := tool(t, "/usr/bin/dciodvfy", "dicom3tools")
	dir, _, files := cohortFixture(t)
	classes := map[string]int{}
	for _, f := range samplePerSeries(files) {
		cmd := exec.Command(bin, filepath.Join(dir, filepath.FromSlash(f.rel)))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatal(err)
			}
		}
		for _, line := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(line, "Error") {
				t.Errorf("%s: %s", f.rel, line)
			}
		}
		classes[f.ds.UID(dicom.TagSOPClassUID)]++
	}
	for _, c := range []string{sopCT, sopMR, sopPT, sopUS, sopSC} {
		if classes[c] == 0 {
			t.Errorf("no file of SOP class %s was checked", c)
		}
	}
}

func TestDcmdump(t *testing.T) {
	t.Parallel()
	bin := tool(t, "dcmdump", "dcmtk")
	dir, _, files := cohortFixture(t)
	done := map[string]bool{}
	for _, f := range files {
		class := f.ds.UID(dicom.TagSOPClassUID)
		if done[class] {
			continue
		}
		done[class] = true
		cmd := exec.Command(bin, "-q", "+U8", filepath.Join(dir, filepath.FromSlash(f.rel)))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("dcmdump %s: %v: %s", f.rel, err, stderr.String())
			continue
		}
		if !strings.Contains(stdout.String(), "PatientName") || !strings.Contains(stdout.String(), "(7fe0,0010)") {
			t.Errorf("dcmdump %s: no patient name or pixel data in\n%s", f.rel, stdout.String())
		}
	}
	if len(done) < 5 {
		t.Errorf("dumped %d SOP classes, want 5", len(done))
	}
}

// TestPhantomLesion checks that the tumour is drawn where the plan puts
// it, with its own attenuation, and that the organs around are there.
func TestPhantomLesion(t *testing.T) {
	t.Parallel()
	o := Options{Dir: "unused", Patients: 30, Seed: 3}
	if err := o.normalise(); err != nil {
		t.Fatal(err)
	}
	c := planCohort(o)
	r := newRenderer()
	var lung bool
	for _, p := range c.patients {
		st := p.studies[0]
		les := lesionAt(st)
		g := &grid{cols: 256, rows: 256, x0: -255, y0: -255, dx: 2, dy: 2}
		l := ctLUT(p.site, "")
		pix := r.render16(g, p.ph, les, les.cz, l, 1)
		at := func(x, y float64) int32 {
			i := int((x - g.x0) / g.dx)
			j := int((y - g.y0) / g.dy)
			return int32(pix[2*(j*g.cols+i)]) | int32(pix[2*(j*g.cols+i)+1])<<8
		}
		in := at(les.cx, les.cy) - 1024
		want := int32(ctLesion(p.site.host, ""))
		if in < want-60 || in > want+60 {
			t.Errorf("patient %d (%s): %d HU at the tumour centre, want about %d", p.index, p.site.cancerType, in, want)
		}
		if at(-250, -250)-1024 > -900 {
			t.Errorf("patient %d: corner is not air", p.index)
		}
		if p.site.cancerType == "lung" {
			lung = true
			// The slice through a lung tumour is mostly air-filled lung.
			n := 0
			for k := 0; k < len(pix); k += 2 {
				if v := int32(pix[k]) | int32(pix[k+1])<<8 - 1024; v > -900 && v < -650 {
					n++
				}
			}
			if n < 1000 {
				t.Errorf("patient %d: %d lung pixels in the slice through a lung tumour", p.index, n)
			}
		}
	}
	if !lung {
		t.Error("no lung cancer patient among 30")
	}
}

// TestBenchPlan checks, without writing, that the bench size meets its
// promise for the default patient count whatever the seed.
func TestBenchPlan(t *testing.T) {
	t.Parallel()
	for seed := range uint64(40) {
		o := Options{Dir: "unused", Patients: DefaultPatients, Seed: seed, Size: SizeBench}
		if err := o.normalise(); err != nil {
			t.Fatal(err)
		}
		var pixels int64
		var n int
		ct512 := false
		for _, in := range planCohort(o).instances() {
			se := in.se
			pixels += int64(se.rows * se.cols * 2)
			n++
			ct512 = ct512 || (se.modality == "CT" && se.rows == 512 && se.cols == 512)
		}
		if pixels < 1e9 || n < 2000 || !ct512 {
			t.Errorf("seed %d: bench has %d pixel bytes in %d files (CT 512: %v), want at least 1 GB and 2,000 files", seed, pixels, n, ct512)
		}
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, o := range []Options{
		{Dir: dir, Patients: 0},
		{Dir: dir, Patients: MaxPatients + 1},
		{Dir: dir, Patients: 1, Size: "huge"},
		{Dir: dir, Patients: 1, CTMatrix: 8},
		{Patients: 1},
	} {
		if _, err := Generate(context.Background(), o); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: got %v, want ErrInvalid", o, err)
		}
	}
	if _, err := Generate(context.Background(), Options{Dir: dir, Patients: 1, Seed: 5, CTMatrix: 64}); err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(context.Background(), Options{Dir: dir, Patients: 1}); !errors.Is(err, ErrExists) {
		t.Errorf("second run into the same directory: got %v, want ErrExists", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Generate(ctx, Options{Dir: t.TempDir(), Patients: 2}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v, want context.Canceled", err)
	}
}

func TestProgress(t *testing.T) {
	t.Parallel()
	var calls, last, total int
	m, err := Generate(context.Background(), Options{Dir: t.TempDir(), Patients: 2, Seed: 9, Progress: func(done, n int) {
		calls++
		if done != last+1 {
			t.Errorf("progress went from %d to %d", last, done)
		}
		last, total = done, n
	}})
	if err != nil {
		t.Fatal(err)
	}
	if calls != m.Instances || last != m.Instances || total != m.Instances {
		t.Errorf("%d progress calls ending at %d/%d for %d files", calls, last, total, m.Instances)
	}
}

// BenchmarkCTSlice measures rendering and encoding one 512x512 CT slice.
func BenchmarkCTSlice(b *testing.B) {
	o := Options{Dir: "unused", Patients: 4, Seed: 1, Size: SizeBench}
	if err := o.normalise(); err != nil {
		b.Fatal(err)
	}
	var ct *instance
	for _, in := range planCohort(o).instances() {
		if in.se.modality == "CT" {
			ct = in
			break
		}
	}
	if ct == nil {
		b.Fatal("no CT instance planned")
	}
	r := newRenderer()
	b.SetBytes(int64(ct.se.rows * ct.se.cols * 2))
	b.ReportAllocs()
	for b.Loop() {
		if err := encodeInstance(io.Discard, r, ct); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCancerTypeAndManufacturerOptions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m, err := Generate(context.Background(), Options{Dir: dir, Patients: 8, Seed: 5, CancerTypes: []string{"prostate", "liver"}, Manufacturers: []string{"Norden Scientific"}})
	if err != nil {
		t.Fatal(err)
	}
	for ct := range m.CancerTypes {
		if ct != "prostate" && ct != "liver" {
			t.Errorf("cancer type %s outside the options", ct)
		}
	}
	files := 0
	filepath.WalkDir(filepath.Join(dir, "dicom"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := dicom.ReadFile(p, dicom.ReadOptions{StopAtPixelData: true})
		if err != nil {
			t.Fatal(err)
		}
		mod, _ := f.Dataset.String(dicom.NewTag(0x0008, 0x0060))
		man, _ := f.Dataset.String(dicom.NewTag(0x0008, 0x0070))
		if (mod == "MR" || mod == "PT") && man != "Norden Scientific" {
			t.Errorf("%s: %s scanner from %s", p, mod, man)
		}
		files++
		return nil
	})
	if files == 0 {
		t.Fatal("no files")
	}
	if _, err := Generate(context.Background(), Options{Dir: t.TempDir(), Patients: 1, CancerTypes: []string{"spleen"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown cancer type: %v", err)
	}
}
