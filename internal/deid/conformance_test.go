package deid_test

// Conformance tests of the de-identification engine: the acceptance tests
// of the issue, written independently of the engine's internals. The
// corpus is every file of pydicom's test data (Debian's python3-pydicom)
// plus a synthetic cohort from internal/synth with RT structure sets added
// here that reference its images. Each object goes through every preset,
// and the outputs are judged by other implementations: pydicom reads the
// inputs and outputs for an independent leak scan, dcmtk's dcmdump must
// read every output, and dicom3tools' dciodvfy must find no error in an
// output that it did not find in the input.
//
// The tests:
//
//	TestConformanceOutcomes                     every object is ok or rejected with a reason; codec failures only where listed
//	TestConformanceNoLeakIndependentScan        no identifying value of an input survives in its output (pydicom extraction, byte and text scan)
//	TestConformanceLeakRejectionsAreReal        every "leak" rejection names a value that would really have survived
//	TestConformanceUIDsReplaced                 no UID that the profile replaces survives anywhere in an output
//	TestConformanceDcmdumpReadsOutputs          dcmdump reads every output without an error
//	TestConformanceDciodvfyNoNewErrors          dciodvfy reports no error on an output that it did not report on the input
//	TestConformancePixelDataUnchanged           pixel data bytes (native or every fragment) are identical
//	TestConformanceDeterministic                separate engines with one key give identical bytes; Apply equals Rewrite; another key gives other pseudonyms
//	TestConformanceCohortConsistency            one patient, study, series, frame of reference maps to one pseudonym or UID, distinct ones stay distinct; dates move consistently
//	TestConformanceReferencesResolve            references between objects point at the outputs of their targets
//	TestConformanceUNEncodedStandardAttributes  standard attributes written as UN are de-identified, not dropped
//
// FuzzDeidMarkers (fuzz_test.go) injects marker values and checks that no
// output contains one; TestConformanceInjectedMarkers runs the same check
// over the whole corpus.

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/mosaic-imaging/mosaic/internal/deid"
	"github.com/mosaic-imaging/mosaic/internal/dicom"
	"github.com/mosaic-imaging/mosaic/internal/synth"
)

// pydicomData is where Debian's python3-pydicom keeps its test files; its
// test_files and charset_files folders, read recursively, are the corpus.
const pydicomData = "/usr/lib/python3/dist-packages/pydicom/data"

var pydicomDirs = []string{"test_files", "charset_files"}

// pythonBin is Debian's Python, which has python3-pydicom.
const pythonBin = "/usr/bin/python3"

// The synthetic cohort: small, but at least synth.RiskyFloor patients so
// that it holds ultrasound and secondary-capture objects with burned-in
// text, which must be rejected.
const (
	synthPatients = synth.RiskyFloor
	// Seed 4 gives 530 files in 21 studies, with three ultrasound images
	// and a secondary capture (burned-in text), and three series whose
	// description carries the patient's name (kept by the eucaim preset).
	synthSeed = 4
)

// codecUnreadable lists the corpus files that are not DICOM the codec can
// read at all: Rewrite must fail on them with a *dicom.Error. Every other
// corpus file must come out ok or as a *deid.Rejection.
var codecUnreadable = map[string]string{
	"test_files/README.txt":                      "text file, not DICOM",
	"test_files/dicomdirtests/README.txt":        "text file, not DICOM",
	"test_files/dicomdirtests/TINY_ALPHA/README": "text file, not DICOM",
	"charset_files/FileInfo.txt":                 "text file, not DICOM",
	"test_files/rtplan.dump":                     "dcmdump output of rtplan.dcm, text",
	"test_files/rtstruct.dump":                   "dcmdump output of rtstruct.dcm, text",
	"test_files/test1.json":                      "DICOM JSON, not Part 10",
	"test_files/test_PN.json":                    "DICOM JSON, not Part 10",
	"test_files/zipMR.gz":                        "gzip-compressed file; the codec does not read gzip",
	"test_files/MR_truncated.dcm":                "truncated on purpose inside Pixel Data",
	"test_files/rtplan_truncated.dcm":            "truncated on purpose inside Beam Sequence",
	"test_files/no_meta.dcm": "starts with a stray byte 0x20 before the dataset, so every tag is misaligned " +
		"(dcmdump rejects it too; pydicom reads it only with force=True, as one garbage element)",
}

// rejectionCodes are the codes a *deid.Rejection may carry (see its doc).
var rejectionCodes = map[string]bool{
	"burned-in-annotation": true, "recognizable-features": true, "pixel-text-risk": true, "leak": true, "missing-uid": true,
}

// need skips the test when a tool is missing on a developer's machine and
// fails it in CI, which must never skip.
func need(t testing.TB, ok bool, format string, args ...any) {
	t.Helper()
	if ok {
		return
	}
	msg := fmt.Sprintf(format, args...) + " (scripts/test-deps.sh installs it)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	need(t, err == nil, "%s is not installed", name)
	return p
}

func needPydicom(t testing.TB) {
	t.Helper()
	err := exec.Command(pythonBin, "-c", "import pydicom").Run()
	need(t, err == nil, "%s cannot import pydicom (Debian package python3-pydicom)", pythonBin)
}

func keyOf(seed string) deid.Key {
	s := sha256.Sum256([]byte(seed))
	k, err := deid.NewKey(s[:])
	if err != nil {
		panic(err)
	}
	return k
}

// The site key of every run, and another one.
var (
	siteKey  = keyOf("mosaic conformance site key")
	otherKey = keyOf("mosaic conformance other key")
)

func presetPolicy(t testing.TB, name string) deid.Policy {
	t.Helper()
	p, err := deid.Preset(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newEngine(t testing.TB, p deid.Policy, k deid.Key) *deid.Engine {
	t.Helper()
	e, err := deid.NewEngine(p, k)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// ---------------------------------------------------------------------------
// The corpus and the runs.

// object is one input file of the corpus.
type object struct {
	name   string // source/relative path, e.g. pydicom/test_files/CT_small.dcm
	source string // "pydicom", "synth" or "ref" (structure sets made here)
	rel    string // path inside its source
	in     []byte
	risky  bool // the synth manifest says it has burned-in text

	// Identity of the input, read with the codec (empty when unreadable).
	patientID, study, series, frame, sop, sopClass string
}

// outcome is the result of one Rewrite.
type outcome struct {
	out []byte
	res deid.Result
	err error
	rej *deid.Rejection
}

func (o outcome) ok() bool { return o.err == nil }

// key names the outcome for counts: "ok", "rejected:CODE" or "error".
func (o outcome) key() string {
	switch {
	case o.err == nil:
		return "ok"
	case o.rej != nil:
		return "rejected:" + o.rej.Code
	}
	return "error"
}

type fixture struct {
	objs     []*object
	runs     map[string][]outcome // by preset
	manifest synth.Manifest
	// refTargets maps each structure set (index into objs) to the indexes
	// of the images it references.
	refTargets map[int][]int
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  error
)

// getFixture builds the corpus and runs every preset over it, once per
// test binary. Everything is kept in memory; tests that need files write
// them to their own temporary directories.
func getFixture(t *testing.T) *fixture {
	t.Helper()
	_, err := os.Stat(filepath.Join(pydicomData, "test_files", "CT_small.dcm"))
	need(t, err == nil, "pydicom's test files are missing from %s (Debian package python3-pydicom)", pydicomData)
	fixOnce.Do(func() { fix, fixErr = buildFixture() })
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return fix
}

func buildFixture() (*fixture, error) {
	fx := &fixture{runs: map[string][]outcome{}, refTargets: map[int][]int{}}
	// pydicom's corpus.
	for _, dir := range pydicomDirs {
		root := filepath.Join(pydicomData, dir)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !d.Type().IsRegular() {
				return err
			}
			rel, _ := filepath.Rel(pydicomData, p)
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel = filepath.ToSlash(rel)
			fx.objs = append(fx.objs, &object{name: "pydicom/" + rel, source: "pydicom", rel: rel, in: b})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	// The synthetic cohort, read into memory and its folder removed.
	dir, err := os.MkdirTemp("", "deid-conformance-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	m, err := synth.Generate(context.Background(), synth.Options{Dir: dir, Patients: synthPatients, Seed: synthSeed})
	if err != nil {
		return nil, err
	}
	fx.manifest = m
	risky := map[string]bool{}
	for _, r := range m.Risky {
		risky[r.Path] = true
	}
	var synthObjs []*object
	err = filepath.WalkDir(filepath.Join(dir, synth.DICOMDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".dcm" {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		synthObjs = append(synthObjs, &object{name: "synth/" + rel, source: "synth", rel: rel, in: b, risky: risky[rel]})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(synthObjs) != m.Instances {
		return nil, fmt.Errorf("synth: read %d files, the manifest counts %d", len(synthObjs), m.Instances)
	}
	fx.objs = append(fx.objs, synthObjs...)
	for _, o := range fx.objs {
		o.identify()
	}
	if err := fx.addStructureSets(); err != nil {
		return nil, err
	}
	for _, name := range deid.Presets {
		p, err := deid.Preset(name)
		if err != nil {
			return nil, err
		}
		e, err := deid.NewEngine(p, siteKey)
		if err != nil {
			return nil, err
		}
		fx.runs[name] = runAll(e, fx.objs)
	}
	return fx, nil
}

// identify reads the identity of the input with the codec.
func (o *object) identify() {
	f, err := dicom.Parse(o.in, dicom.ReadOptions{StopAtPixelData: true})
	if err != nil {
		return
	}
	ds := &f.Dataset
	o.patientID, _ = ds.String(0x00100020)
	o.study = ds.UID(0x0020000D)
	o.series = ds.UID(0x0020000E)
	o.frame = ds.UID(0x00200052)
	o.sop = ds.UID(dicom.TagSOPInstanceUID)
	o.sopClass = ds.UID(dicom.TagSOPClassUID)
}

// runAll rewrites every object with e, on all cores.
func runAll(e *deid.Engine, objs []*object) []outcome {
	out := make([]outcome, len(objs))
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i] = rewrite(e, objs[i].in)
			}
		}()
	}
	for i := range objs {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// rewrite runs the engine on one input, turning a panic into an error.
func rewrite(e *deid.Engine, in []byte) (oc outcome) {
	defer func() {
		if r := recover(); r != nil {
			oc = outcome{err: fmt.Errorf("panic: %v", r)}
		}
	}()
	var buf bytes.Buffer
	res, err := e.Rewrite(&buf, bytes.NewReader(in), dicom.ReadOptions{})
	oc = outcome{out: buf.Bytes(), res: res, err: err}
	errors.As(err, &oc.rej)
	return oc
}

// addStructureSets adds, for every study of the cohort, an RT Structure
// Set that references the images of its first image series (frame of
// reference, study, series and every instance), as a planning system
// would. The cohort itself has no references between objects.
func (fx *fixture) addStructureSets() error {
	type seriesRef struct {
		first   *object
		members []int
	}
	byStudy := map[string]*seriesRef{}
	var studies []string
	for i, o := range fx.objs {
		if o.source != "synth" || o.risky || o.frame == "" {
			continue
		}
		r := byStudy[o.study]
		if r == nil {
			r = &seriesRef{first: o}
			byStudy[o.study] = r
			studies = append(studies, o.study)
		}
		if o.series == r.first.series {
			r.members = append(r.members, i)
		}
	}
	for _, st := range studies {
		r := byStudy[st]
		b, err := buildStructureSet(r.first, fx.objs, r.members)
		if err != nil {
			return err
		}
		o := &object{name: "ref/" + r.first.rel + ".rtstruct", source: "ref", rel: r.first.rel + ".rtstruct", in: b}
		o.identify()
		fx.refTargets[len(fx.objs)] = r.members
		fx.objs = append(fx.objs, o)
	}
	if len(studies) == 0 {
		return errors.New("synth cohort has no image series to reference")
	}
	return nil
}

// uidFor derives a 2.25 UID from a seed.
func uidFor(seed string) string {
	s := sha256.Sum256([]byte(seed))
	return "2.25." + new(big.Int).SetBytes(s[:16]).String()
}

// builder sets attributes by keyword and keeps the first error.
type builder struct {
	ds  *dicom.Dataset
	err *error
}

func (b builder) fail(err error) {
	if *b.err == nil {
		*b.err = err
	}
}

func (b builder) str(kw string, v ...string) {
	e, ok := dicom.LookupKeyword(kw)
	if !ok {
		b.fail(fmt.Errorf("no keyword %s", kw))
		return
	}
	if err := b.ds.SetStrings(e.Tag, e.VR, v...); err != nil {
		b.fail(fmt.Errorf("%s: %w", kw, err))
	}
}

func (b builder) ints(kw string, v ...int64) {
	e, _ := dicom.LookupKeyword(kw)
	if err := b.ds.SetInts(e.Tag, e.VR, v...); err != nil {
		b.fail(fmt.Errorf("%s: %w", kw, err))
	}
}

// copy copies the elements of src with the given keywords, as they are.
func (b builder) copy(src *dicom.Dataset, kws ...string) {
	for _, kw := range kws {
		e, _ := dicom.LookupKeyword(kw)
		if el := src.Get(e.Tag); el != nil {
			b.ds.Set(*el)
		}
	}
}

// items attaches a sequence of n items, then returns builders for them
// (attached first, so that they inherit the character set).
func (b builder) items(kw string, n int) []builder {
	e, ok := dicom.LookupKeyword(kw)
	if !ok {
		b.fail(fmt.Errorf("no keyword %s", kw))
		return nil
	}
	its := make([]*dicom.Item, n)
	for i := range its {
		its[i] = dicom.NewItem()
	}
	b.ds.SetSequence(e.Tag, its...)
	el := b.ds.Get(e.Tag)
	out := make([]builder, n)
	for i := range out {
		out[i] = builder{ds: &el.Items[i].Dataset, err: b.err}
	}
	return out
}

func buildStructureSet(first *object, objs []*object, members []int) ([]byte, error) {
	src, err := dicom.Parse(first.in, dicom.ReadOptions{StopAtPixelData: true})
	if err != nil {
		return nil, err
	}
	var e error
	f := &dicom.File{Preamble: make([]byte, 128), Syntax: dicom.Syntax{UID: dicom.ExplicitVRLittleEndian}}
	b := builder{ds: &f.Dataset, err: &e}
	s := &src.Dataset
	b.copy(s, "SpecificCharacterSet", "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex",
		"StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
		"Manufacturer", "InstitutionName", "StationName", "OperatorsName")
	b.str("SOPClassUID", "1.2.840.10008.5.1.4.1.1.481.3")
	b.str("SOPInstanceUID", uidFor("rtstruct instance "+first.series))
	b.str("Modality", "RTSTRUCT")
	b.str("SeriesInstanceUID", uidFor("rtstruct series "+first.series))
	b.ints("SeriesNumber", 99)
	b.ints("InstanceNumber", 1)
	b.str("StructureSetLabel", "CONFORMANCE")
	b.copy(s, "StudyDate")
	if d, ok := s.String(0x00080020); ok {
		b.str("StructureSetDate", d)
	}
	b.str("StructureSetTime", "120000")
	// Referenced Frame of Reference > RT Referenced Study > RT Referenced
	// Series > Contour Image: every image of the series.
	rf := b.items("ReferencedFrameOfReferenceSequence", 1)[0]
	rf.str("FrameOfReferenceUID", first.frame)
	rs := rf.items("RTReferencedStudySequence", 1)[0]
	rs.str("ReferencedSOPClassUID", "1.2.840.10008.3.1.2.3.1")
	rs.str("ReferencedSOPInstanceUID", first.study)
	se := rs.items("RTReferencedSeriesSequence", 1)[0]
	se.str("SeriesInstanceUID", first.series)
	ci := se.items("ContourImageSequence", len(members))
	for k, i := range members {
		ci[k].str("ReferencedSOPClassUID", objs[i].sopClass)
		ci[k].str("ReferencedSOPInstanceUID", objs[i].sop)
	}
	roi := b.items("StructureSetROISequence", 1)[0]
	roi.ints("ROINumber", 1)
	roi.str("ReferencedFrameOfReferenceUID", first.frame)
	roi.str("ROIName", "GTV")
	roi.str("ROIGenerationAlgorithm", "MANUAL")
	rc := b.items("ROIContourSequence", 1)[0]
	rc.ints("ROIDisplayColor", 255, 0, 0)
	rc.ints("ReferencedROINumber", 1)
	cs := rc.items("ContourSequence", 1)[0]
	img := cs.items("ContourImageSequence", 1)[0]
	img.str("ReferencedSOPClassUID", first.sopClass)
	img.str("ReferencedSOPInstanceUID", first.sop)
	cs.str("ContourGeometricType", "POINT")
	cs.ints("NumberOfContourPoints", 1)
	cs.str("ContourData", "0", "0", "0")
	obs := b.items("RTROIObservationsSequence", 1)[0]
	obs.ints("ObservationNumber", 1)
	obs.ints("ReferencedROINumber", 1)
	obs.str("RTROIInterpretedType", "GTV")
	if el := s.Get(0x00080090); el != nil {
		// ROI Interpreter: the referring physician, a person name nested
		// two levels down.
		obs.ds.Set(dicom.Element{Tag: 0x300600A6, VR: dicom.PN, Value: el.Value})
	}
	if e != nil {
		return nil, e
	}
	var out bytes.Buffer
	if err := dicom.WriteFile(&out, f); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// ---------------------------------------------------------------------------
// Helpers shared by the tests.

// okIndexes lists the objects that came out ok under preset.
func (fx *fixture) okIndexes(preset string) []int {
	var out []int
	for i, oc := range fx.runs[preset] {
		if oc.ok() {
			out = append(out, i)
		}
	}
	return out
}

// writeFiles writes the chosen byte slices to dir, named by index, and
// returns the paths in the same order.
func writeFiles(t *testing.T, dir string, idx []int, data func(int) []byte) []string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	paths := make([]string, len(idx))
	for k, i := range idx {
		paths[k] = filepath.Join(dir, fmt.Sprintf("%05d.dcm", i))
		if err := os.WriteFile(paths[k], data(i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return paths
}

func keyword(t dicom.Tag) string {
	if e, ok := dicom.Lookup(t); ok && e.Keyword != "" {
		return e.Keyword
	}
	return t.Hex()
}

// pixelRanges returns the byte ranges of the value of the top-level pixel
// data (every fragment and the offset table when encapsulated) in data,
// a whole Part 10 file; dicom.Parse keeps values as slices of its input.
// It reports false when data does not parse or is deflated (values are
// then not slices of data).
func pixelRanges(data []byte) ([][2]int, bool) {
	f, err := dicom.Parse(data, dicom.ReadOptions{})
	if err != nil || f.Syntax.Deflated {
		return nil, false
	}
	var out [][2]int
	add := func(v []byte) bool {
		if len(v) == 0 {
			return true
		}
		off := int(uintptr(unsafe.Pointer(unsafe.SliceData(v))) - uintptr(unsafe.Pointer(unsafe.SliceData(data))))
		if off < 0 || off+len(v) > len(data) || &data[off] != &v[0] {
			return false
		}
		out = append(out, [2]int{off, off + len(v)})
		return true
	}
	for _, tag := range []dicom.Tag{dicom.TagPixelData, dicom.TagFloatPixelData, dicom.TagDoubleFloatPixelData} {
		el := f.Dataset.Get(tag)
		if el == nil {
			continue
		}
		if el.Fragments != nil {
			if !add(el.Fragments.OffsetTable) {
				return nil, false
			}
			for _, fr := range el.Fragments.Items {
				if !add(fr) {
					return nil, false
				}
			}
		} else if !add(el.Value) {
			return nil, false
		}
	}
	return out, true
}

// scanBytes returns a copy of a Part 10 file for the byte scan: ASCII
// upper case folded to lower case and the pixel data value blanked (it is
// copied unchanged from the input, and checked by other means). A
// deflated dataset is inflated first, so that its values can be seen.
func scanBytes(data []byte) []byte {
	if inflated, ok := inflateDataset(data); ok {
		return lowerASCII(inflated)
	}
	out := lowerASCII(data)
	if rs, ok := pixelRanges(data); ok {
		for _, r := range rs {
			clear(out[r[0]:r[1]])
		}
	}
	return out
}

// inflateDataset returns the file meta information followed by the
// inflated dataset of a file in the Deflated Explicit VR Little Endian
// transfer syntax; false for any other file.
func inflateDataset(data []byte) ([]byte, bool) {
	const start = 128 + 4
	if len(data) < start+12 || string(data[128:132]) != "DICM" || !bytes.Equal(data[start:start+4], []byte{2, 0, 0, 0}) {
		return nil, false
	}
	end := start + 12 + int(binary.LittleEndian.Uint32(data[start+8:]))
	if end > len(data) || !bytes.Contains(data[start:end], []byte(dicom.DeflatedExplicitVRLittleEndian)) {
		return nil, false
	}
	inflated, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(data[end:])), 64<<20))
	if err != nil {
		return nil, false
	}
	return append(append([]byte(nil), data[:end]...), inflated...), true
}

func lowerASCII(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// findBounded returns the offset of the first occurrence of needle in hay
// that does not start or end inside a longer number: a value that starts
// (ends) with a digit must not be preceded (followed) by one, so that an
// ID "4820" is not found inside "2.25.1948207...". -1 when none.
func findBounded(hay, needle []byte) int { return find(hay, needle, true) }

// findRaw is findBounded for the bytes of a file, where a value may be
// followed or preceded by binary bytes that happen to be digits (the next
// tag's group 0x0038 starts with '8'): there, a match is inside a longer
// number only when the number goes on for two characters (digits or a
// dot, as in a UID or a decimal string).
func findRaw(hay, needle []byte) int { return find(hay, needle, false) }

func find(hay, needle []byte, strict bool) int {
	if len(needle) == 0 {
		return -1
	}
	numeric := func(c byte) bool { return isDigit(c) || c == '.' }
	continues := func(a, b int) bool { // hay[a] next to the match, hay[b] beyond it
		if a < 0 || a >= len(hay) || !isDigit(hay[a]) {
			return false
		}
		return strict || (b >= 0 && b < len(hay) && numeric(hay[b]))
	}
	base := 0
	for {
		i := bytes.Index(hay[base:], needle)
		if i < 0 {
			return -1
		}
		i += base
		j := i + len(needle)
		okStart := !isDigit(needle[0]) || !continues(i-1, i-2)
		okEnd := !isDigit(needle[len(needle)-1]) || !continues(j, j+1)
		if okStart && okEnd {
			return i
		}
		base = i + 1
	}
}

// ---------------------------------------------------------------------------
// The independent reader (pydicom).

type pyValue struct {
	Tag   string   `json:"tag"`
	Kw    string   `json:"kw"`
	Kind  string   `json:"kind"`
	Path  string   `json:"path"`
	Forms []string `json:"forms"`
	Raw   []string `json:"raw"`
}

type pyIDs struct {
	Values []pyValue `json:"values"`
	Error  string    `json:"error"`
}

type pyStrings struct {
	Values [][2]string `json:"values"`
	Error  string      `json:"error"`
}

// runPy runs testdata/deid_scan.py in the given mode over paths and
// decodes its JSON answer into a map by path.
func runPy[T any](t *testing.T, mode string, paths []string) map[string]T {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("testdata", "deid_scan.py"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(pythonBin, script, mode)
	cmd.Stdin = strings.NewReader(strings.Join(paths, "\n") + "\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("deid_scan.py %s: %v: %s", mode, err, stderr.String())
	}
	out := map[string]T{}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("deid_scan.py %s: %v", mode, err)
	}
	for _, p := range paths {
		if _, ok := out[p]; !ok {
			t.Fatalf("deid_scan.py %s: no answer for %s", mode, p)
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Needles: the identifying values looked for in outputs.

// needle is one spelling of one identifying value of an input.
type needle struct {
	attr string // where it is in the input, e.g. OtherPatientIDsSequence>PatientID
	kind string
	form string   // as written
	text string   // Unicode lower case, for the decoded scan
	raw  [][]byte // byte forms (UTF-8 and the input's character set), ASCII-folded
}

// publicAttrs are attributes that name products and coding schemes, not
// people or places. When an identifying value of an input is also part of
// one of these in the same input (InstitutionName "TOSHIBA" inside
// Manufacturer "TOSHIBA_MEC", "Here" inside ManufacturerModelName
// "Treatment Planning System name here", family name "Test" and coding
// scheme "TEST"), the policy keeps that text on purpose and finding it in
// the output says nothing about the identifying value.
var publicAttrs = map[dicom.Tag]bool{
	0x00080070: true, // Manufacturer
	0x00081090: true, // Manufacturer's Model Name
	0x00181020: true, // Software Versions
	0x00080102: true, // Coding Scheme Designator
	0x00180015: true, // Body Part Examined
}

// publicTexts lists the lower-case values of publicAttrs anywhere in in.
func publicTexts(in []byte) []string {
	f, err := dicom.Parse(in, dicom.ReadOptions{StopAtPixelData: true})
	if err != nil {
		return nil
	}
	var out []string
	f.Dataset.Walk(func(_ []dicom.Tag, ds *dicom.Dataset, el *dicom.Element) bool {
		if publicAttrs[el.Tag] && el.VR.IsText() {
			for _, v := range ds.Strings(el) {
				if v != "" {
					out = append(out, strings.ToLower(v))
				}
			}
		}
		return true
	})
	return out
}

// minNeedle is the shortest value looked for, in characters. Shorter
// values (sex "M", a study ID "S1", initials, a 3-digit ID) occur by chance
// in every output, in code values, numbers and UIDs, so a hit would say
// nothing. Values outside ASCII are looked for from 2 characters: two
// given ideographs or Hangul syllables do not occur by chance.
const minNeedle = 4

func longEnough(s string) bool {
	n := utf8.RuneCountInString(s)
	for _, r := range s {
		if r >= 0x80 {
			return n >= 2
		}
	}
	return n >= minNeedle
}

func hasAlnum(s string) bool {
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return true
		}
	}
	return false
}

// skipped counts needles left out, by reason.
type skipped map[string]int

// needlesFor turns the identifying values pydicom found in an input into
// needles under a policy: values of attributes the policy keeps on purpose
// (Table E.1-1 with its options and overrides says K) are left out, and so
// are values that are also text the policy keeps (a kept identifying
// attribute, or a product or coding scheme name).
func needlesFor(vals []pyValue, actions map[dicom.Tag]deid.Action, public []string, sk skipped) []needle {
	kept := func(tagHex string) bool {
		var tag uint32
		fmt.Sscanf(tagHex, "%08X", &tag)
		a, ok := actions[dicom.Tag(tag)]
		return ok && a == deid.Keep
	}
	var keptTexts []string
	for _, v := range vals {
		if kept(v.Tag) {
			for _, f := range v.Forms {
				keptTexts = append(keptTexts, strings.ToLower(f))
			}
		}
	}
	seen := map[string]bool{}
	var out []needle
	for _, v := range vals {
		if kept(v.Tag) {
			sk["kept by the policy: "+v.Kw] += len(v.Forms)
			continue
		}
		for k, form := range v.Forms {
			form = strings.TrimSpace(form)
			text := strings.ToLower(form)
			switch {
			case !longEnough(form):
				sk["shorter than 4 characters"]++
				continue
			case !hasAlnum(form):
				sk["no letter or digit (a placeholder such as ----)"]++
				continue
			case placeholders[text]:
				sk["a de-identification placeholder (ANON, UNKNOWN, ...)"]++
				continue
			case seen[text]:
				continue
			}
			if containsAny(keptTexts, text) {
				sk["also the value of an attribute the policy keeps"]++
				continue
			}
			if containsAny(public, text) {
				sk["part of a product or coding scheme name in the same input"]++
				continue
			}
			seen[text] = true
			n := needle{attr: v.Path, kind: v.Kind, form: form, text: text, raw: [][]byte{lowerASCII([]byte(form))}}
			if k < len(v.Raw) {
				if b, err := hex.DecodeString(v.Raw[k]); err == nil && len(b) > 0 && !bytes.Equal(lowerASCII(b), n.raw[0]) {
					n.raw = append(n.raw, lowerASCII(b))
				}
			}
			out = append(out, n)
		}
	}
	return out
}

func containsAny(list []string, s string) bool {
	for _, l := range list {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// actionsOf maps every tag of the policy's table to its action.
func actionsOf(p deid.Policy) map[dicom.Tag]deid.Action {
	m := map[dicom.Tag]deid.Action{}
	for _, r := range p.Table() {
		m[r.Tag] = r.Action
	}
	return m
}

// hit is an identifying value found in an output.
type hit struct {
	n     needle
	where string
}

// scanOutput looks for every needle in the output's bytes (pixel data
// blanked) and in its text values as pydicom decodes them.
func scanOutput(out []byte, decoded [][2]string, needles []needle) []hit {
	hay := scanBytes(out)
	lower := make([][]byte, len(decoded))
	for k, d := range decoded {
		lower[k] = []byte(strings.ToLower(d[1]))
	}
	var hits []hit
	for _, n := range needles {
		found := false
		for _, r := range n.raw {
			if i := findRaw(hay, r); i >= 0 {
				hits = append(hits, hit{n, fmt.Sprintf("bytes at offset %d", i)})
				found = true
				break
			}
		}
		if found {
			continue
		}
		text := []byte(n.text)
		for k, d := range decoded {
			if findBounded(lower[k], text) >= 0 {
				hits = append(hits, hit{n, "decoded " + d[0] + " = " + fmt.Sprintf("%q", d[1])})
				break
			}
		}
	}
	return hits
}

// ---------------------------------------------------------------------------
// The tests.

func TestConformanceOutcomes(t *testing.T) {
	fx := getFixture(t)
	listed := map[string]bool{}
	for _, o := range fx.objs {
		if o.source == "pydicom" {
			listed[o.rel] = true
		}
	}
	for rel := range codecUnreadable {
		if !listed[rel] {
			t.Errorf("exception list names %s, which is not in the corpus: remove the stale entry", rel)
		}
	}
	for _, preset := range deid.Presets {
		p := presetPolicy(t, preset)
		counts := map[string]map[string]int{}
		for i, o := range fx.objs {
			oc := fx.runs[preset][i]
			if counts[o.source] == nil {
				counts[o.source] = map[string]int{}
			}
			counts[o.source][oc.key()]++
			reason, unreadable := codecUnreadable[o.rel]
			unreadable = unreadable && o.source == "pydicom"
			switch {
			case oc.ok():
				if unreadable {
					t.Errorf("%s %s: listed as unreadable (%s) but came out ok: remove the entry", preset, o.name, reason)
				}
				checkOKOutput(t, preset, p, o, oc)
			case oc.rej != nil:
				if unreadable {
					t.Errorf("%s %s: listed as unreadable (%s) but was read and rejected: remove the entry", preset, o.name, reason)
				}
				if !rejectionCodes[oc.rej.Code] || strings.TrimSpace(oc.rej.Reason) == "" {
					t.Errorf("%s %s: rejection without a known code and a reason: %+v", preset, o.name, *oc.rej)
				}
				if !errors.Is(oc.err, deid.ErrRejected) {
					t.Errorf("%s %s: rejection does not wrap deid.ErrRejected", preset, o.name)
				}
				if len(oc.out) != 0 {
					t.Errorf("%s %s: rejected (%s), yet %d bytes were written", preset, o.name, oc.rej.Code, len(oc.out))
				}
			default:
				var de *dicom.Error
				switch {
				case !unreadable:
					t.Errorf("%s %s: neither ok nor rejected: %v", preset, o.name, oc.err)
				case !errors.As(oc.err, &de):
					t.Errorf("%s %s: listed as unreadable (%s) but the error is not a *dicom.Error: %v", preset, o.name, reason, oc.err)
				}
			}
			// What the cohort says about its objects.
			switch {
			case o.risky:
				if oc.rej == nil || oc.rej.Code != "burned-in-annotation" {
					t.Errorf("%s %s: has Burned In Annotation YES and must be rejected as burned-in-annotation, got %s", preset, o.name, oc.key())
				}
			case (o.source == "synth" || o.source == "ref") && preset != "eucaim":
				// basic removes every free text and longitudinal keeps only
				// device identity and patient characteristics: a clean
				// image or structure set must pass. (eucaim keeps Series
				// Description, where the cohort sometimes writes the
				// patient's name, so rejections for a leak are expected;
				// TestConformanceLeakRejectionsAreReal checks they are.)
				if !oc.ok() {
					t.Errorf("%s %s: a clean cohort object was not let through: %v", preset, o.name, oc.err)
				}
			}
		}
		for _, src := range []string{"pydicom", "synth", "ref"} {
			keys := make([]string, 0, len(counts[src]))
			for k := range counts[src] {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var parts []string
			for _, k := range keys {
				parts = append(parts, fmt.Sprintf("%s %d", k, counts[src][k]))
			}
			t.Logf("%s %s: %s", preset, src, strings.Join(parts, ", "))
		}
	}
	var exc []string
	for rel, why := range codecUnreadable {
		exc = append(exc, rel+": "+why)
	}
	sort.Strings(exc)
	t.Logf("codec errors expected (exception list, %d files):\n  %s", len(exc), strings.Join(exc, "\n  "))
}

// checkOKOutput checks what every ok output must carry.
func checkOKOutput(t *testing.T, preset string, p deid.Policy, o *object, oc outcome) {
	t.Helper()
	f, err := dicom.Parse(oc.out, dicom.ReadOptions{})
	if err != nil {
		t.Errorf("%s %s: the output does not parse: %v", preset, o.name, err)
		return
	}
	ds := &f.Dataset
	if v, _ := ds.String(0x00120062); v != "YES" {
		t.Errorf("%s %s: Patient Identity Removed is %q, want YES", preset, o.name, v)
	}
	if v, _ := ds.String(0x00120063); v == "" {
		t.Errorf("%s %s: no De-identification Method", preset, o.name)
	}
	for _, c := range []struct {
		tag  dicom.Tag
		want string
	}{{dicom.TagSOPInstanceUID, oc.res.SOPInstanceUID}, {0x0020000D, oc.res.StudyUID}, {0x0020000E, oc.res.SeriesUID}} {
		if got := ds.UID(c.tag); got != c.want {
			t.Errorf("%s %s: %s is %q, the result says %q", preset, o.name, keyword(c.tag), got, c.want)
		}
	}
	if !strings.HasPrefix(oc.res.SOPInstanceUID, "2.25.") {
		t.Errorf("%s %s: SOP Instance UID %q is not a replacement UID", preset, o.name, oc.res.SOPInstanceUID)
	}
	if !strings.HasPrefix(oc.res.PatientPseudonym, p.PatientIDPrefix) {
		t.Errorf("%s %s: pseudonym %q lacks the prefix %q", preset, o.name, oc.res.PatientPseudonym, p.PatientIDPrefix)
	}
	// An input without Patient ID (a few pydicom files) gets none.
	if got, ok := ds.String(0x00100020); (ok || o.patientID != "") && got != oc.res.PatientPseudonym {
		t.Errorf("%s %s: Patient ID %q, pseudonym in the result %q", preset, o.name, got, oc.res.PatientPseudonym)
	}
}

// leakScan runs the independent scan of the ok outputs of every preset.
// It returns the hits by preset and object, and counts.
type scanReport struct {
	hits      map[string]map[int][]hit
	needles   int
	objects   int
	skipped   skipped
	unscanned []string
}

func TestConformanceNoLeakIndependentScan(t *testing.T) {
	fx := getFixture(t)
	needPydicom(t)
	dir := t.TempDir()
	// Inputs with at least one ok output.
	inSet := map[int]bool{}
	for _, preset := range deid.Presets {
		for _, i := range fx.okIndexes(preset) {
			inSet[i] = true
		}
	}
	var inIdx []int
	for i := range fx.objs {
		if inSet[i] {
			inIdx = append(inIdx, i)
		}
	}
	inPaths := writeFiles(t, filepath.Join(dir, "in"), inIdx, func(i int) []byte { return fx.objs[i].in })
	outPaths := map[string][]string{}
	for _, preset := range deid.Presets {
		idx := fx.okIndexes(preset)
		outPaths[preset] = writeFiles(t, filepath.Join(dir, preset), idx, func(i int) []byte { return fx.runs[preset][i].out })
	}
	// pydicom, in parallel: one process for the inputs, one per preset.
	start := time.Now()
	var (
		wg      sync.WaitGroup
		ids     map[string]pyIDs
		decoded = map[string]map[string]pyStrings{}
		mu      sync.Mutex
	)
	wg.Add(1 + len(deid.Presets))
	go func() { defer wg.Done(); ids = runPy[pyIDs](t, "ids", inPaths) }()
	for _, preset := range deid.Presets {
		go func() {
			defer wg.Done()
			r := runPy[pyStrings](t, "strings", outPaths[preset])
			mu.Lock()
			decoded[preset] = r
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.Logf("pydicom read %d inputs and %d outputs in %v", len(inPaths), len(outPaths["basic"])+len(outPaths["eucaim"])+len(outPaths["longitudinal"]), time.Since(start))
	if t.Failed() {
		return
	}
	inPath := map[int]string{}
	for k, i := range inIdx {
		inPath[i] = inPaths[k]
	}
	total, objects, byKind, selfChecked := 0, 0, map[string]int{}, 0
	for _, preset := range deid.Presets {
		actions := actionsOf(presetPolicy(t, preset))
		sk := skipped{}
		var leaks []string
		for k, i := range fx.okIndexes(preset) {
			o := fx.objs[i]
			in := ids[inPath[i]]
			if in.Error != "" {
				t.Errorf("%s %s: pydicom cannot read the input, so its output cannot be checked: %s", preset, o.name, in.Error)
				continue
			}
			outDec := decoded[preset][outPaths[preset][k]]
			if outDec.Error != "" {
				t.Errorf("%s %s: pydicom cannot read the output: %s", preset, o.name, outDec.Error)
				continue
			}
			needles := needlesFor(in.Values, actions, publicTexts(o.in), sk)
			total += len(needles)
			objects++
			for _, n := range needles {
				byKind[n.kind]++
			}
			// The scan must work: every value that is not a name variant
			// is found in the input it came from.
			if preset == "basic" {
				if rs, ok := pixelRanges(o.in); ok || rs != nil {
					hay := scanBytes(o.in)
					for _, n := range needles {
						if n.kind == "name" {
							continue
						}
						found := false
						for _, r := range n.raw {
							found = found || findRaw(hay, r) >= 0
						}
						if !found {
							t.Errorf("scanner self-check: %s %q (%s) not found in its own input %s", n.kind, n.form, n.attr, o.name)
						}
						selfChecked++
					}
				}
			}
			for _, h := range scanOutput(fx.runs[preset][i].out, outDec.Values, needles) {
				leaks = append(leaks, fmt.Sprintf("%s: %s %q (from %s) found in the output, %s", o.name, h.n.kind, h.n.form, h.n.attr, h.where))
			}
		}
		sort.Strings(leaks)
		for _, l := range leaks {
			t.Errorf("%s: leak: %s", preset, l)
		}
		var sks []string
		for r, n := range sk {
			sks = append(sks, fmt.Sprintf("%s: %d", r, n))
		}
		sort.Strings(sks)
		t.Logf("%s: %d ok outputs scanned; values left out: %s", preset, len(fx.okIndexes(preset)), strings.Join(sks, "; "))
	}
	t.Logf("%d identifying values looked for in %d outputs (by kind: %v); scanner self-check found %d values in their inputs", total, objects, byKind, selfChecked)
	if total == 0 {
		t.Fatal("no identifying value was looked for: the scan checks nothing")
	}
}

func TestConformanceLeakRejectionsAreReal(t *testing.T) {
	fx := getFixture(t)
	needPydicom(t)
	dir := t.TempDir()
	type cand struct {
		preset string
		i      int
		reason string
		out    []byte
	}
	var cands []cand
	for _, preset := range deid.Presets {
		e := newEngine(t, presetPolicy(t, preset), siteKey)
		for i, oc := range fx.runs[preset] {
			if oc.rej == nil || oc.rej.Code != "leak" {
				continue
			}
			// Apply works in place: after the rejection the dataset is what
			// the output would have been.
			f, err := dicom.Parse(fx.objs[i].in, dicom.ReadOptions{})
			if err != nil {
				t.Fatalf("%s: %v", fx.objs[i].name, err)
			}
			_, err = e.Apply(f)
			var rj *deid.Rejection
			if !errors.As(err, &rj) || rj.Code != "leak" {
				t.Errorf("%s %s: Rewrite rejected it as a leak, Apply says %v", preset, fx.objs[i].name, err)
				continue
			}
			var buf bytes.Buffer
			if err := dicom.WriteFile(&buf, f); err != nil {
				t.Fatalf("%s: %v", fx.objs[i].name, err)
			}
			cands = append(cands, cand{preset, i, oc.rej.Reason, buf.Bytes()})
		}
	}
	if len(cands) == 0 {
		t.Log("no object was rejected for a leak")
		return
	}
	inIdx := make([]int, len(cands))
	for k, c := range cands {
		inIdx[k] = c.i
	}
	inPaths := writeFiles(t, filepath.Join(dir, "in"), inIdx, func(i int) []byte { return fx.objs[i].in })
	outPaths := make([]string, len(cands))
	for k, c := range cands {
		outPaths[k] = filepath.Join(dir, fmt.Sprintf("would-%s-%05d.dcm", c.preset, c.i))
		if err := os.WriteFile(outPaths[k], c.out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ids := runPy[pyIDs](t, "ids", inPaths)
	dec := runPy[pyStrings](t, "strings", outPaths)
	real, falsePos := 0, map[string][]string{}
	for k, c := range cands {
		o := fx.objs[c.i]
		actions := actionsOf(presetPolicy(t, c.preset))
		in := ids[inPaths[k]]
		hits := scanOutput(c.out, dec[outPaths[k]].Values, needlesFor(in.Values, actions, publicTexts(o.in), skipped{}))
		if len(hits) > 0 {
			real++
			continue
		}
		// What did the engine match? The same scan without leaving out
		// product and coding scheme names shows it.
		var why []string
		for _, h := range scanOutput(c.out, dec[outPaths[k]].Values, needlesFor(in.Values, actions, nil, skipped{})) {
			why = append(why, fmt.Sprintf("%q (%s) is also in %s", h.n.form, h.n.attr, h.where))
		}
		key := fmt.Sprintf("engine says %q; independent scan finds no identifying value; coincidence: %s", c.reason, strings.Join(why, "; "))
		falsePos[key] = append(falsePos[key], c.preset+" "+o.name)
	}
	t.Logf("%d leak rejections confirmed by the independent scan", real)
	keys := make([]string, 0, len(falsePos))
	for k := range falsePos {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		objs := falsePos[k]
		t.Errorf("false leak rejection of %d object(s) (%s): %s", len(objs), strings.Join(objs, ", "), k)
	}
}

func TestConformanceUIDsReplaced(t *testing.T) {
	fx := getFixture(t)
	checked := 0
	for _, preset := range deid.Presets {
		actions := actionsOf(presetPolicy(t, preset))
		for _, i := range fx.okIndexes(preset) {
			o := fx.objs[i]
			in, err := dicom.Parse(o.in, dicom.ReadOptions{StopAtPixelData: true})
			if err != nil {
				t.Fatalf("%s: %v", o.name, err)
			}
			out, err := dicom.Parse(fx.runs[preset][i].out, dicom.ReadOptions{StopAtPixelData: true})
			if err != nil {
				t.Errorf("%s %s: output does not parse: %v", preset, o.name, err)
				continue
			}
			// The input's values of every attribute the profile replaces.
			var uids []string
			collect := func(ds *dicom.Dataset, el *dicom.Element) {
				if el.VR != dicom.UI || actions[el.Tag] != deid.UID {
					return
				}
				for _, v := range ds.Strings(el) {
					v = strings.TrimRight(v, "\x00 ")
					if len(v) >= 8 && !strings.HasPrefix(v, "1.2.840.10008.") {
						uids = append(uids, v)
					}
				}
			}
			in.Dataset.Walk(func(_ []dicom.Tag, ds *dicom.Dataset, el *dicom.Element) bool { collect(ds, el); return true })
			if v := in.Meta.Get(dicom.TagMediaStorageSOPInstanceUID); v != nil {
				collect(&in.Meta, v)
			}
			hay := scanBytes(fx.runs[preset][i].out)
			for _, u := range uids {
				checked++
				if j := findUID(hay, []byte(u)); j >= 0 {
					t.Errorf("%s %s: UID %s of the input is still in the output at offset %d", preset, o.name, u, j)
				}
			}
			// And every replaced attribute of the output holds a new UID.
			out.Dataset.Walk(func(_ []dicom.Tag, ds *dicom.Dataset, el *dicom.Element) bool {
				if el.VR == dicom.UI && actions[el.Tag] == deid.UID {
					for _, v := range ds.Strings(el) {
						if v != "" && !strings.HasPrefix(v, "2.25.") {
							t.Errorf("%s %s: %s is %q, not a replacement UID", preset, o.name, keyword(el.Tag), v)
						}
					}
				}
				return true
			})
		}
	}
	t.Logf("%d replaced UIDs looked for", checked)
}

// findUID returns the offset of the first occurrence of the UID u in hay
// that is a whole UID, not part of a longer one: the characters around it
// do not continue it (a digit or dot followed by another; one digit alone
// may be the group of the next element's tag). -1 when none.
func findUID(hay, u []byte) int {
	num := func(k int) bool { return k >= 0 && k < len(hay) && (isDigit(hay[k]) || hay[k] == '.') }
	for base := 0; ; {
		i := bytes.Index(hay[base:], u)
		if i < 0 {
			return -1
		}
		i += base
		j := i + len(u)
		if !(num(i-1) && num(i-2)) && !(num(j) && num(j+1)) {
			return i
		}
		base = i + 1
	}
}

func TestConformanceDcmdumpReadsOutputs(t *testing.T) {
	fx := getFixture(t)
	dcmdump := needTool(t, "dcmdump")
	dir := t.TempDir()
	var all []string
	for _, preset := range deid.Presets {
		idx := fx.okIndexes(preset)
		paths := writeFiles(t, filepath.Join(dir, preset), idx, func(i int) []byte { return fx.runs[preset][i].out })
		all = append(all, paths...)
	}
	run := func(paths []string) (bool, string) {
		cmd := exec.Command(dcmdump, append([]string{"+L", "-M"}, paths...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var bad []string
		for _, l := range strings.Split(stderr.String(), "\n") {
			if strings.HasPrefix(l, "E:") || strings.HasPrefix(l, "F:") {
				bad = append(bad, l)
			}
		}
		if err != nil {
			bad = append(bad, err.Error())
		}
		return len(bad) == 0, strings.Join(bad, "\n")
	}
	const batch = 200
	for s := 0; s < len(all); s += batch {
		paths := all[s:min(s+batch, len(all))]
		if ok, _ := run(paths); ok {
			continue
		}
		for _, p := range paths {
			if ok, msg := run([]string{p}); !ok {
				rel, _ := filepath.Rel(dir, p)
				t.Errorf("dcmdump cannot read output %s (%s): %s", rel, fx.nameOfPath(p), msg)
			}
		}
	}
	t.Logf("dcmdump read %d outputs", len(all))
}

// nameOfPath names the object of a file written by writeFiles.
func (fx *fixture) nameOfPath(p string) string {
	var i int
	if _, err := fmt.Sscanf(filepath.Base(p), "%05d.dcm", &i); err != nil || i >= len(fx.objs) {
		return "?"
	}
	return fx.objs[i].name
}

var (
	dciodvfyUID   = regexp.MustCompile(`[0-9]+(\.[0-9]+)+`)
	dciodvfyValue = regexp.MustCompile(`<[^>]*[0-9][^>]*>`)
	dciodvfyLast  = regexp.MustCompile(`UID [0-9]+$`) // a value ending the line ("... ReferencedSOPInstanceUID 0")
)

// dciodvfyErrors runs dciodvfy and returns its error messages, normalised
// so that an input and its output compare: UIDs and values with digits
// (which de-identification changes) are blanked.
func dciodvfyErrors(bin, path string) (map[string]bool, error) {
	cmd := exec.Command(bin, path)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run() // exits non-zero whenever it reports an error
	if out.Len() == 0 {
		return nil, fmt.Errorf("dciodvfy printed nothing for %s", path)
	}
	m := map[string]bool{}
	for _, l := range strings.Split(out.String(), "\n") {
		if !strings.HasPrefix(l, "Error") {
			continue
		}
		l = strings.TrimSpace(l)
		l = dciodvfyUID.ReplaceAllString(l, "#")
		l = dciodvfyValue.ReplaceAllString(l, "<#>")
		l = dciodvfyLast.ReplaceAllString(l, "UID #")
		m[strings.TrimSpace(l)] = true
	}
	return m, nil
}

func TestConformanceDciodvfyNoNewErrors(t *testing.T) {
	fx := getFixture(t)
	bin := needTool(t, "dciodvfy")
	dir := t.TempDir()
	// The sample: every pydicom and structure set output, and the first
	// instance of every synth series.
	firstOfSeries := map[string]bool{}
	sample := map[int]bool{}
	for i, o := range fx.objs {
		switch {
		case o.source != "synth":
			sample[i] = true
		case !firstOfSeries[o.series]:
			firstOfSeries[o.series] = true
			sample[i] = true
		}
	}
	type job struct {
		preset string // "" for the input
		i      int
		path   string
	}
	var jobs []job
	inputs := map[int]bool{}
	for _, preset := range deid.Presets {
		for _, i := range fx.okIndexes(preset) {
			if !sample[i] {
				continue
			}
			p := filepath.Join(dir, preset, fmt.Sprintf("%05d.dcm", i))
			jobs = append(jobs, job{preset, i, p})
			inputs[i] = true
		}
		os.MkdirAll(filepath.Join(dir, preset), 0o755)
	}
	os.MkdirAll(filepath.Join(dir, "in"), 0o755)
	for i := range inputs {
		jobs = append(jobs, job{"", i, filepath.Join(dir, "in", fmt.Sprintf("%05d.dcm", i))})
	}
	for _, j := range jobs {
		data := fx.objs[j.i].in
		if j.preset != "" {
			data = fx.runs[j.preset][j.i].out
		}
		if err := os.WriteFile(j.path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	results := make([]map[string]bool, len(jobs))
	var wg sync.WaitGroup
	next := make(chan int)
	var errMu sync.Mutex
	var runErr error
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				m, err := dciodvfyErrors(bin, jobs[k].path)
				if err != nil {
					errMu.Lock()
					runErr = err
					errMu.Unlock()
				}
				results[k] = m
			}
		}()
	}
	for k := range jobs {
		next <- k
	}
	close(next)
	wg.Wait()
	if runErr != nil {
		t.Fatal(runErr)
	}
	inErrs := map[int]map[string]bool{}
	for k, j := range jobs {
		if j.preset == "" {
			inErrs[j.i] = results[k]
		}
	}
	// New errors, grouped by message.
	type group struct{ objs []string }
	news := map[string]*group{}
	outputs := 0
	for k, j := range jobs {
		if j.preset == "" {
			continue
		}
		outputs++
		for msg := range results[k] {
			if inErrs[j.i][msg] {
				continue
			}
			key := j.preset + ": " + msg
			if news[key] == nil {
				news[key] = &group{}
			}
			news[key].objs = append(news[key].objs, fx.objs[j.i].name)
		}
	}
	keys := make([]string, 0, len(news))
	for k := range news {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		g := news[k]
		sort.Strings(g.objs)
		shown := g.objs
		if len(shown) > 4 {
			shown = append(shown[:4:4], fmt.Sprintf("... %d more", len(g.objs)-4))
		}
		t.Errorf("dciodvfy error new in %d output(s): %s\n    in: %s", len(g.objs), k, strings.Join(shown, ", "))
	}
	t.Logf("dciodvfy checked %d outputs against %d inputs", outputs, len(inErrs))
}

func TestConformancePixelDataUnchanged(t *testing.T) {
	fx := getFixture(t)
	var checked, fragments int
	var bytesCompared int64
	for _, preset := range deid.Presets {
		for _, i := range fx.okIndexes(preset) {
			o := fx.objs[i]
			in, err := dicom.Parse(o.in, dicom.ReadOptions{})
			if err != nil {
				t.Fatalf("%s: %v", o.name, err)
			}
			out, err := dicom.Parse(fx.runs[preset][i].out, dicom.ReadOptions{})
			if err != nil {
				t.Errorf("%s %s: output does not parse: %v", preset, o.name, err)
				continue
			}
			for _, tag := range []dicom.Tag{dicom.TagPixelData, dicom.TagFloatPixelData, dicom.TagDoubleFloatPixelData} {
				a, b := in.Dataset.Get(tag), out.Dataset.Get(tag)
				switch {
				case a == nil && b == nil:
					continue
				case a == nil || b == nil:
					t.Errorf("%s %s: %s present in input %v, output %v", preset, o.name, keyword(tag), a != nil, b != nil)
					continue
				}
				checked++
				if (a.Fragments == nil) != (b.Fragments == nil) {
					t.Errorf("%s %s: %s encapsulated in input %v, output %v", preset, o.name, keyword(tag), a.Fragments != nil, b.Fragments != nil)
					continue
				}
				if a.Fragments == nil {
					bytesCompared += int64(len(a.Value))
					if !bytes.Equal(a.Value, b.Value) {
						t.Errorf("%s %s: %s differs (%d bytes in, %d out)", preset, o.name, keyword(tag), len(a.Value), len(b.Value))
					}
					if a.VR != b.VR {
						t.Errorf("%s %s: %s VR %s became %s", preset, o.name, keyword(tag), a.VR, b.VR)
					}
					continue
				}
				if !bytes.Equal(a.Fragments.OffsetTable, b.Fragments.OffsetTable) {
					t.Errorf("%s %s: basic offset table differs", preset, o.name)
				}
				if len(a.Fragments.Items) != len(b.Fragments.Items) {
					t.Errorf("%s %s: %d fragments in, %d out", preset, o.name, len(a.Fragments.Items), len(b.Fragments.Items))
					continue
				}
				for k := range a.Fragments.Items {
					fragments++
					bytesCompared += int64(len(a.Fragments.Items[k]))
					if !bytes.Equal(a.Fragments.Items[k], b.Fragments.Items[k]) {
						t.Errorf("%s %s: fragment %d differs", preset, o.name, k)
					}
				}
			}
			if in.Syntax.UID != out.Syntax.UID {
				t.Errorf("%s %s: transfer syntax %s became %s", preset, o.name, in.Syntax.UID, out.Syntax.UID)
			}
		}
	}
	t.Logf("%d pixel data elements (%d fragments, %d bytes) compared", checked, fragments, bytesCompared)
	if checked == 0 {
		t.Fatal("no pixel data compared")
	}
}

func TestConformanceDeterministic(t *testing.T) {
	fx := getFixture(t)
	for _, preset := range deid.Presets {
		p := presetPolicy(t, preset)
		again := runAll(newEngine(t, p, siteKey), fx.objs)
		other := runAll(newEngine(t, p, otherKey), fx.objs)
		same, diffKey, datesMoved := 0, 0, 0
		for i, o := range fx.objs {
			a, b, c := fx.runs[preset][i], again[i], other[i]
			if a.key() != b.key() {
				t.Errorf("%s %s: first engine %s, second engine with the same key %s", preset, o.name, a.key(), b.key())
				continue
			}
			if !a.ok() {
				if c.key() != a.key() {
					t.Errorf("%s %s: %s with one key, %s with another", preset, o.name, a.key(), c.key())
				}
				continue
			}
			if !bytes.Equal(a.out, b.out) || noFile(a.res) != noFile(b.res) {
				t.Errorf("%s %s: two engines with the same key give different outputs (%d vs %d bytes, %+v vs %+v)", preset, o.name, len(a.out), len(b.out), a.res, b.res)
				continue
			}
			same++
			if !c.ok() {
				t.Errorf("%s %s: ok with one key, %s with another", preset, o.name, c.key())
				continue
			}
			diffKey++
			if c.res.PatientPseudonym == a.res.PatientPseudonym || c.res.SOPInstanceUID == a.res.SOPInstanceUID ||
				c.res.StudyUID == a.res.StudyUID || c.res.SeriesUID == a.res.SeriesUID {
				t.Errorf("%s %s: another key gives the same pseudonym or UIDs: %+v", preset, o.name, c.res)
			}
			if p.Dates == deid.DatesShift && studyDate(a.out) != studyDate(c.out) {
				datesMoved++
			}
		}
		t.Logf("%s: %d outputs identical across engines, %d differ as they should with another key (%d with other shifted dates)", preset, same, diffKey, datesMoved)
		if p.Dates == deid.DatesShift && datesMoved == 0 {
			t.Errorf("%s: another key shifts no date differently: the shift does not depend on the key", preset)
		}
	}
	// Apply then WriteFile gives the bytes Rewrite gives.
	e := newEngine(t, presetPolicy(t, "basic"), siteKey)
	matched := 0
	for i, o := range fx.objs {
		oc := fx.runs["basic"][i]
		if oc.err != nil && oc.rej == nil {
			continue
		}
		f, err := dicom.Parse(o.in, dicom.ReadOptions{})
		if err != nil {
			t.Errorf("%s: parse: %v", o.name, err)
			continue
		}
		res, err := e.Apply(f)
		var rj *deid.Rejection
		errors.As(err, &rj)
		switch {
		case oc.rej != nil:
			if rj == nil || rj.Code != oc.rej.Code {
				t.Errorf("basic %s: Rewrite rejects it (%s), Apply says %v", o.name, oc.rej.Code, err)
			}
			continue
		case err != nil:
			t.Errorf("basic %s: Rewrite lets it through, Apply says %v", o.name, err)
			continue
		}
		var buf bytes.Buffer
		if err := dicom.WriteFile(&buf, f); err != nil {
			t.Errorf("basic %s: write: %v", o.name, err)
			continue
		}
		if !bytes.Equal(buf.Bytes(), oc.out) || noFile(res) != noFile(oc.res) {
			t.Errorf("basic %s: Apply and Rewrite give different outputs (%d vs %d bytes)", o.name, buf.Len(), len(oc.out))
			continue
		}
		matched++
	}
	t.Logf("basic: Apply and Rewrite agree on %d objects", matched)
}

func studyDate(b []byte) string {
	f, err := dicom.Parse(b, dicom.ReadOptions{StopAtPixelData: true})
	if err != nil {
		return ""
	}
	v, _ := f.Dataset.String(0x00080020)
	return v
}

func TestConformanceCohortConsistency(t *testing.T) {
	fx := getFixture(t)
	for _, preset := range deid.Presets {
		p := presetPolicy(t, preset)
		// Every mapping must be a function (one input value, one output
		// value) and injective (distinct inputs stay distinct).
		type mapping struct {
			fwd map[string]map[string]bool
			rev map[string]map[string]bool
		}
		maps := map[string]*mapping{}
		add := func(what, in, out string) {
			if in == "" {
				return
			}
			m := maps[what]
			if m == nil {
				m = &mapping{fwd: map[string]map[string]bool{}, rev: map[string]map[string]bool{}}
				maps[what] = m
			}
			if m.fwd[in] == nil {
				m.fwd[in] = map[string]bool{}
			}
			if m.rev[out] == nil {
				m.rev[out] = map[string]bool{}
			}
			m.fwd[in][out] = true
			m.rev[out][in] = true
		}
		frameBySeries := map[string]map[string]bool{}
		shifts := map[string]map[int]bool{}
		n := 0
		for _, i := range fx.okIndexes(preset) {
			o := fx.objs[i]
			if o.source == "pydicom" {
				continue
			}
			n++
			oc := fx.runs[preset][i]
			in, _ := dicom.Parse(o.in, dicom.ReadOptions{StopAtPixelData: true})
			out, err := dicom.Parse(oc.out, dicom.ReadOptions{StopAtPixelData: true})
			if err != nil || in == nil {
				t.Fatalf("%s: %v", o.name, err)
			}
			ods := &out.Dataset
			add("patient ID", o.patientID, oc.res.PatientPseudonym)
			name, _ := in.Dataset.String(0x00100010)
			oname, _ := ods.String(0x00100010)
			add("patient name", o.patientID+"\x00"+name, oname)
			add("study", o.study, ods.UID(0x0020000D))
			add("series", o.series, ods.UID(0x0020000E))
			add("SOP instance", o.sop, ods.UID(dicom.TagSOPInstanceUID))
			add("study of a patient", o.study, o.patientID+"\x00"+oc.res.PatientPseudonym)
			if o.frame != "" {
				f := ods.UID(0x00200052)
				add("frame of reference", o.frame, f)
				if frameBySeries[o.series] == nil {
					frameBySeries[o.series] = map[string]bool{}
				}
				frameBySeries[o.series][f] = true
			}
			// Dates: removed (basic), first of the month (eucaim), or
			// shifted by one offset per patient (longitudinal).
			for _, tag := range []dicom.Tag{0x00080020, 0x00080021, 0x00080022, 0x00080023} {
				iv, _ := in.Dataset.String(tag)
				ov, _ := ods.String(tag)
				if iv == "" {
					continue
				}
				id, err1 := time.Parse("20060102", iv)
				od, err2 := time.Parse("20060102", ov)
				switch p.Dates {
				case deid.DatesRemove:
					if ov != "" && ov != "19000101" {
						t.Errorf("%s %s: %s %q kept under date removal", preset, o.name, keyword(tag), ov)
					}
				case deid.DatesMonth:
					if err1 != nil || err2 != nil || od.Day() != 1 || od.Year() != id.Year() || od.Month() != id.Month() {
						t.Errorf("%s %s: %s %q became %q, want the first of its month", preset, o.name, keyword(tag), iv, ov)
					}
				case deid.DatesShift:
					if err1 != nil || err2 != nil {
						t.Errorf("%s %s: %s %q became %q, want a shifted date", preset, o.name, keyword(tag), iv, ov)
						continue
					}
					d := int(od.Sub(id).Hours() / 24)
					if d >= 0 || d < -p.MaxShiftDays {
						t.Errorf("%s %s: %s shifted by %d days, want -1 to -%d", preset, o.name, keyword(tag), d, p.MaxShiftDays)
					}
					if shifts[o.patientID] == nil {
						shifts[o.patientID] = map[int]bool{}
					}
					shifts[o.patientID][d] = true
				}
			}
		}
		whats := make([]string, 0, len(maps))
		for w := range maps {
			whats = append(whats, w)
		}
		sort.Strings(whats)
		var summary []string
		for _, what := range whats {
			m := maps[what]
			summary = append(summary, fmt.Sprintf("%d %s", len(m.fwd), what))
			for in, outs := range m.fwd {
				if len(outs) != 1 {
					t.Errorf("%s: one %s (%s) maps to %d values: %v", preset, what, in, len(outs), keys(outs))
				}
			}
			if what == "study of a patient" {
				continue // a patient has several studies
			}
			for out, ins := range m.rev {
				if len(ins) != 1 {
					t.Errorf("%s: %d distinct %s values map to one output %s: %v", preset, len(ins), what, out, keys(ins))
				}
			}
		}
		for series, frames := range frameBySeries {
			if len(frames) != 1 {
				t.Errorf("%s: series %s has %d frames of reference in the output", preset, series, len(frames))
			}
		}
		for pid, s := range shifts {
			if len(s) != 1 {
				t.Errorf("%s: patient %s has dates shifted by %v days: one shift per patient expected", preset, pid, keys(s))
			}
		}
		t.Logf("%s: %d cohort outputs: %s", preset, n, strings.Join(summary, ", "))
		if maps["patient ID"] == nil || len(maps["patient ID"].fwd) < 2 {
			t.Errorf("%s: fewer than 2 patients came out ok: nothing compared", preset)
		}
	}
}

func keys[K comparable](m map[K]bool) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// uidKinds are the attributes that identify an object or its frame: the
// targets references point at.
var uidKinds = []dicom.Tag{dicom.TagSOPInstanceUID, 0x0020000D, 0x0020000E, 0x00200052}

func TestConformanceReferencesResolve(t *testing.T) {
	fx := getFixture(t)
	// The cohort's structure sets under every preset, and the pydicom
	// corpus under basic with secondary captures allowed, since most of
	// its references are between secondary captures (and test-SR.dcm
	// references its own study and series).
	type run struct {
		name string
		objs []*object
		outs []outcome
	}
	var runs []run
	for _, preset := range deid.Presets {
		runs = append(runs, run{preset, fx.objs, fx.runs[preset]})
	}
	p := presetPolicy(t, "basic")
	p.AllowClasses = []string{"1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.7.4"}
	var pyObjs []*object
	for _, o := range fx.objs {
		if o.source == "pydicom" {
			pyObjs = append(pyObjs, o)
		}
	}
	runs = append(runs, run{"basic+secondary-capture", pyObjs, runAll(newEngine(t, p, siteKey), pyObjs)})

	for _, r := range runs {
		// What each input UID became, from the ok outputs.
		mapped := map[string]string{}
		for i, oc := range r.outs {
			if !oc.ok() {
				continue
			}
			in, err1 := dicom.Parse(r.objs[i].in, dicom.ReadOptions{StopAtPixelData: true})
			out, err2 := dicom.Parse(oc.out, dicom.ReadOptions{StopAtPixelData: true})
			if err1 != nil || err2 != nil {
				t.Fatalf("%s %s: %v %v", r.name, r.objs[i].name, err1, err2)
			}
			for _, tag := range uidKinds {
				iv, ov := in.Dataset.UID(tag), out.Dataset.UID(tag)
				if iv == "" || ov == "" {
					continue
				}
				if prev, ok := mapped[iv]; ok && prev != ov {
					t.Errorf("%s: UID %s became both %s and %s", r.name, iv, prev, ov)
				}
				mapped[iv] = ov
			}
		}
		resolved, removed := 0, 0
		for i, oc := range r.outs {
			if !oc.ok() {
				continue
			}
			o := r.objs[i]
			in, _ := dicom.Parse(o.in, dicom.ReadOptions{StopAtPixelData: true})
			out, _ := dicom.Parse(oc.out, dicom.ReadOptions{StopAtPixelData: true})
			type ref struct {
				tag dicom.Tag
				v   string
			}
			nested := func(f *dicom.File) (map[ref]bool, map[dicom.Tag]bool) {
				refs, tags := map[ref]bool{}, map[dicom.Tag]bool{}
				f.Dataset.Walk(func(path []dicom.Tag, ds *dicom.Dataset, el *dicom.Element) bool {
					if len(path) == 0 || el.VR != dicom.UI {
						return true
					}
					tags[el.Tag] = true
					for _, v := range ds.Strings(el) {
						refs[ref{el.Tag, strings.TrimRight(v, "\x00 ")}] = true
					}
					return true
				})
				return refs, tags
			}
			inRefs, _ := nested(in)
			outRefs, outTags := nested(out)
			for rf := range inRefs {
				target, ok := mapped[rf.v]
				if !ok {
					continue // not an object of the corpus that came out
				}
				if !outTags[rf.tag] {
					removed++ // the policy removed the reference
					continue
				}
				if !outRefs[ref{rf.tag, target}] {
					t.Errorf("%s %s: reference %s %s should become %s, the output has no such reference", r.name, o.name, keyword(rf.tag), rf.v, target)
					continue
				}
				resolved++
			}
		}
		t.Logf("%s: %d references to objects of the corpus resolve in the outputs; %d were removed with their attribute", r.name, resolved, removed)
	}
	// The structure sets must be let through and point at their images.
	for _, preset := range deid.Presets {
		okRefs := 0
		for i, targets := range fx.refTargets {
			oc := fx.runs[preset][i]
			if !oc.ok() {
				continue
			}
			okRefs++
			out, _ := dicom.Parse(oc.out, dicom.ReadOptions{StopAtPixelData: true})
			want := map[string]bool{}
			for _, k := range targets {
				if t := fx.runs[preset][k]; t.ok() {
					want[t.res.SOPInstanceUID] = true
				}
			}
			got := map[string]bool{}
			out.Dataset.Walk(func(_ []dicom.Tag, ds *dicom.Dataset, el *dicom.Element) bool {
				if el.Tag == 0x00081155 {
					got[ds.UID(el.Tag)] = true
				}
				return true
			})
			for u := range want {
				if !got[u] {
					t.Errorf("%s %s: does not reference the output image %s", preset, fx.objs[i].name, u)
				}
			}
		}
		if okRefs == 0 {
			t.Errorf("%s: no structure set came out ok, so no reference between objects was checked", preset)
		}
	}
}

// TestConformanceUNEncodedStandardAttributes: an explicit VR writer that
// does not know an attribute writes it as UN (PS3.5 6.2.2), and a reader
// is to take the dictionary's VR. pydicom's rtdose_rle.dcm is such a file:
// its SOP Instance UID, Study and Series Instance UID and Patient's Name
// are UN. The engine must de-identify it like the same object with the
// right VRs, not drop its UIDs and refuse it for lack of a SOP Instance
// UID it removed itself.
func TestConformanceUNEncodedStandardAttributes(t *testing.T) {
	getFixture(t) // the corpus must be there
	in, err := os.ReadFile(filepath.Join(pydicomData, "test_files", "CT_small.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := dicom.Parse(in, dicom.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if f.Syntax.Implicit || f.Syntax.BigEndian {
		t.Fatalf("CT_small.dcm is expected in explicit VR little endian, is %s", f.Syntax.UID)
	}
	uids := map[dicom.Tag]string{}
	for _, tag := range []dicom.Tag{dicom.TagSOPInstanceUID, 0x0020000D, 0x0020000E, 0x00200052, 0x00100010, 0x00100020} {
		el := f.Dataset.Get(tag)
		if el == nil {
			t.Fatalf("CT_small.dcm has no %s", keyword(tag))
		}
		if el.VR == dicom.UI {
			uids[tag] = f.Dataset.UID(tag)
		}
		un := *el
		un.VR = dicom.UN
		f.Dataset.Set(un)
	}
	var buf bytes.Buffer
	if err := dicom.WriteFile(&buf, f); err != nil {
		t.Fatal(err)
	}
	for _, preset := range deid.Presets {
		oc := rewrite(newEngine(t, presetPolicy(t, preset), siteKey), buf.Bytes())
		if !oc.ok() {
			t.Errorf("%s: CT_small.dcm with UN-encoded UIDs and patient name: %v (with its own VRs it comes out ok)", preset, oc.err)
			continue
		}
		hay := scanBytes(oc.out)
		for tag, u := range uids {
			if findUID(hay, []byte(u)) >= 0 {
				t.Errorf("%s: the input's %s %s is still in the output", preset, keyword(tag), u)
			}
		}
		out, err := dicom.Parse(oc.out, dicom.ReadOptions{})
		if err != nil {
			t.Fatalf("%s: %v", preset, err)
		}
		for tag := range uids {
			if v := out.Dataset.UID(tag); !strings.HasPrefix(v, "2.25.") {
				t.Errorf("%s: %s is %q in the output, want a replacement UID", preset, keyword(tag), v)
			}
		}
	}
}

// TestConformanceRequiredAttributesKept pins, without dciodvfy, the
// attributes whose loss TestConformanceDciodvfyNoNewErrors reports: a
// Type 1 attribute must keep a value (a dummy where the profile removes
// it), a Type 2 attribute must stay (empty if need be), and a Type 1C
// sequence must not be left present but empty.
func TestConformanceRequiredAttributesKept(t *testing.T) {
	fx := getFixture(t)
	byName := map[string]int{}
	for i, o := range fx.objs {
		byName[o.name] = i
	}
	const (
		present  = "present (Type 2)"
		nonEmpty = "present with a value (Type 1)"
		notEmpty = "absent or with items (Type 1C)"
		hasItems = "present with items (Type 1C, condition met)"
	)
	all := deid.Presets
	tests := []struct {
		object  string
		presets []string
		tag     dicom.Tag
		want    string
		why     string
	}{
		{"pydicom/test_files/rtstruct.dcm", all, 0x00081070, present, "Operators' Name, RT Series module"},
		{"ref/dicom/0001/01/01/0001.dcm.rtstruct", all, 0x00081070, present, "Operators' Name, RT Series module"},
		{"pydicom/test_files/reportsi.dcm", all, 0x00081111, present, "Referenced Performed Procedure Step Sequence, SR Document Series module"},
		{"pydicom/test_files/reportsi.dcm", all, 0x0040A730, notEmpty, "Content Sequence, Document Relationship macro"},
		{"pydicom/test_files/liver_1frame.dcm", all, 0x00080023, nonEmpty, "Content Date, Multi-frame Functional Groups module (Segmentation)"},
		{"pydicom/test_files/liver_1frame.dcm", all, 0x00080033, nonEmpty, "Content Time, Multi-frame Functional Groups module (Segmentation)"},
		{"pydicom/test_files/liver_1frame.dcm", all, 0x00181000, nonEmpty, "Device Serial Number, Enhanced General Equipment module (Segmentation)"},
		{"pydicom/test_files/waveform_ecg.dcm", all, 0x00080023, nonEmpty, "Content Date, Waveform Identification module"},
		{"pydicom/test_files/waveform_ecg.dcm", all, 0x00080033, nonEmpty, "Content Time, Waveform Identification module"},
		{"pydicom/test_files/waveform_ecg.dcm", all, 0x0008002A, nonEmpty, "Acquisition DateTime, Waveform Identification module"},
		{"pydicom/test_files/waveform_ecg.dcm", all, 0x00400555, present, "Acquisition Context Sequence, Acquisition Context module"},
		{"pydicom/test_files/CT_small.dcm", all, 0x00100030, present, "Patient's Birth Date, Patient module"},
		{"pydicom/test_files/rtdose.dcm", all, 0x300C0002, hasItems, "Referenced RT Plan Sequence, RT Dose module (Dose Summation Type PLAN)"},
		{"pydicom/test_files/rtdose_rle.dcm", all, 0x300C0002, hasItems, "Referenced RT Plan Sequence, RT Dose module (Dose Summation Type PLAN), written as UN of defined length in the input"},
		{"synth/dicom/0001/01/01/0001.dcm", all, 0x00100030, present, "Patient's Birth Date, Patient module"},
	}
	for _, tt := range tests {
		i, ok := byName[tt.object]
		if !ok {
			t.Fatalf("no object %s in the corpus", tt.object)
		}
		for _, preset := range tt.presets {
			oc := fx.runs[preset][i]
			if !oc.ok() {
				t.Errorf("%s %s: %s (want ok to check %s)", preset, tt.object, oc.key(), keyword(tt.tag))
				continue
			}
			out, err := dicom.Parse(oc.out, dicom.ReadOptions{StopAtPixelData: true})
			if err != nil {
				t.Fatalf("%s %s: %v", preset, tt.object, err)
			}
			el := out.Dataset.Get(tt.tag)
			var bad bool
			switch tt.want {
			case present:
				bad = el == nil
			case nonEmpty:
				bad = el == nil || (len(el.Value) == 0 && len(el.Items) == 0)
			case notEmpty:
				bad = el != nil && len(el.Items) == 0
			case hasItems:
				bad = el == nil || len(el.Items) == 0
			}
			if bad {
				state := "absent"
				if el != nil {
					state = "present and empty"
				}
				t.Errorf("%s %s: %s is %s, want %s: %s", preset, tt.object, keyword(tt.tag), state, tt.want, tt.why)
			}
		}
	}
	// SR Document General: a VERIFIED report has a Verifying Observer
	// Sequence with items (Type 1C); an UNVERIFIED one may lack it.
	const sr = "pydicom/test_files/test-SR.dcm"
	for _, preset := range all {
		oc := fx.runs[preset][byName[sr]]
		if !oc.ok() {
			t.Errorf("%s %s: %s (want ok to check Verifying Observer Sequence)", preset, sr, oc.key())
			continue
		}
		out, err := dicom.Parse(oc.out, dicom.ReadOptions{StopAtPixelData: true})
		if err != nil {
			t.Fatal(err)
		}
		flag, _ := out.Dataset.String(0x0040A493)
		el := out.Dataset.Get(0x0040A073)
		switch {
		case flag == "VERIFIED" && (el == nil || len(el.Items) == 0):
			t.Errorf("%s %s: Verification Flag VERIFIED but Verifying Observer Sequence %s (Type 1C: items required)", preset, sr, map[bool]string{true: "absent", false: "empty"}[el == nil])
		case el != nil && len(el.Items) == 0:
			t.Errorf("%s %s: Verifying Observer Sequence present and empty", preset, sr)
		}
	}
	// Waveform Annotation: every item of the Waveform Annotation Sequence
	// needs Unformatted Text Value or Concept Name Code Sequence (Type 1C
	// each, one required when the other is absent).
	const ecg = "pydicom/test_files/waveform_ecg.dcm"
	for _, preset := range all {
		oc := fx.runs[preset][byName[ecg]]
		if !oc.ok() {
			t.Errorf("%s %s: %s", preset, ecg, oc.key())
			continue
		}
		out, err := dicom.Parse(oc.out, dicom.ReadOptions{StopAtPixelData: true})
		if err != nil {
			t.Fatal(err)
		}
		el := out.Dataset.Get(0x0040B020)
		if el == nil {
			continue // the whole (optional) module removed is valid
		}
		bad := 0
		for _, it := range el.Items {
			if !it.Has(0x00700006) && !it.Has(0x0040A043) {
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("%s %s: %d of %d Waveform Annotation items have neither Unformatted Text Value nor Concept Name Code Sequence", preset, ecg, bad, len(el.Items))
		}
	}
}

// TestConformancePixelDataEncodedAsUN: Pixel Data written with VR UN (an
// explicit VR writer that lost the VR; PS3.5 6.2.2) is still the pixel
// data. The engine must copy it unchanged, or refuse the object with a
// Rejection: never fail with another error, and never drop it.
func TestConformancePixelDataEncodedAsUN(t *testing.T) {
	getFixture(t) // the corpus must be there
	in, err := os.ReadFile(filepath.Join(pydicomData, "test_files", "CT_small.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := dicom.Parse(in, dicom.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pix := *f.Dataset.Get(dicom.TagPixelData)
	want := append([]byte(nil), pix.Value...)
	pix.VR = dicom.UN
	f.Dataset.Set(pix)
	var buf bytes.Buffer
	if err := dicom.WriteFile(&buf, f); err != nil {
		t.Fatal(err)
	}
	for _, preset := range deid.Presets {
		e := newEngine(t, presetPolicy(t, preset), siteKey)
		oc := rewrite(e, buf.Bytes())
		switch {
		case oc.rej != nil:
		case oc.err != nil:
			t.Errorf("%s: Rewrite fails with %T %q: neither ok nor a rejection", preset, oc.err, oc.err)
		default:
			out, err := dicom.Parse(oc.out, dicom.ReadOptions{})
			if err != nil {
				t.Fatalf("%s: %v", preset, err)
			}
			if el := out.Dataset.Get(dicom.TagPixelData); el == nil || !bytes.Equal(el.Value, want) {
				t.Errorf("%s: Rewrite output lost or changed the pixel data", preset)
			}
		}
		g, err := dicom.Parse(buf.Bytes(), dicom.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.Apply(g)
		var rj *deid.Rejection
		if err == nil {
			if el := g.Dataset.Get(dicom.TagPixelData); el == nil || !bytes.Equal(el.Value, want) {
				t.Errorf("%s: Apply succeeds but removed or changed the pixel data", preset)
			}
		} else if !errors.As(err, &rj) {
			t.Errorf("%s: Apply fails with %v: neither ok nor a rejection", preset, err)
		}
	}
}

// TestConformanceLargeFirstValueStreamed: a bare dataset (no preamble or
// meta information, as some archives store them) whose first element has
// a value of 2 to 4 KiB. Rewrite streams it, and the decoder's first value
// buffer (2 KiB) must grow to hold it: the engine must give ok or a
// rejection, never panic. FuzzDeidMarkers found this (its corpus keeps the
// input under testdata/fuzz).
func TestConformanceLargeFirstValueStreamed(t *testing.T) {
	var b []byte
	add := func(tag uint32, value string) {
		if len(value)%2 == 1 {
			value += " "
		}
		b = binary.LittleEndian.AppendUint16(b, uint16(tag>>16))
		b = binary.LittleEndian.AppendUint16(b, uint16(tag))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(value)))
		b = append(b, value...)
	}
	// Implicit VR little endian, the default without meta information.
	add(0x00080008, strings.Repeat(`DERIVED\`, 375)+"PRIMARY") // 3007 bytes
	add(0x00080016, "1.2.840.10008.5.1.4.1.1.2\x00")
	add(0x00080018, "1.2.3.4.5.6.7.8.9\x00")
	add(0x00100010, "Doe^Jane")
	add(0x00100020, "ID123456")
	if _, err := dicom.Parse(b, dicom.ReadOptions{}); err != nil {
		t.Fatalf("the dataset is valid and reads from memory: %v", err)
	}
	for _, preset := range deid.Presets {
		oc := rewrite(newEngine(t, presetPolicy(t, preset), siteKey), b)
		if !oc.ok() && oc.rej == nil {
			t.Errorf("%s: %v", preset, oc.err)
		}
	}
}

// placeholders are values that de-identification tools write in place of
// identity: they identify no one, so finding one in an output is no leak.
var placeholders = map[string]bool{
	"anon": true, "anonymous": true, "anonymized": true, "anonymised": true, "anonymize": true,
	"unknown": true, "none": true, "removed": true, "deidentified": true, "de-identified": true,
}

// TestConformancePlaceholderIsNoLeak: inputs that went through another
// de-identifier often carry "ANON" as an accession number or study ID. The
// engine writes "ANONYMIZED" as the dummy of text values (here in the
// report's content tree and verifying observer), so a leak check that
// looks for "anon" in the output rejects an object that leaks nothing.
func TestConformancePlaceholderIsNoLeak(t *testing.T) {
	getFixture(t) // the corpus must be there
	in, err := os.ReadFile(filepath.Join(pydicomData, "test_files", "test-SR.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	for _, kw := range []string{"AccessionNumber", "StudyID"} {
		f, err := dicom.Parse(in, dicom.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var e error
		builder{ds: &f.Dataset, err: &e}.str(kw, "ANON")
		var buf bytes.Buffer
		if err := dicom.WriteFile(&buf, f); err != nil || e != nil {
			t.Fatal(err, e)
		}
		for _, preset := range deid.Presets {
			before := rewrite(newEngine(t, presetPolicy(t, preset), siteKey), in)
			oc := rewrite(newEngine(t, presetPolicy(t, preset), siteKey), buf.Bytes())
			if before.ok() && !oc.ok() {
				t.Errorf("%s: test-SR.dcm comes out ok, but with %s \"ANON\" it is %s: %v", preset, kw, oc.key(), oc.err)
			}
		}
	}
}

// TestConformanceBirthDateInAlternativeCalendar: Patient's Birth Date and
// Death Date in Alternative Calendar (0010,0033), (0010,0034) are the
// patient's birth and death dates written in another calendar (Patient
// module, Type 3 with Patient's Alternative Calendar). Table E.1-1 of the
// 2024b edition does not list them, and the engine keeps attributes the
// table does not list unless their VR is free text, a name or UN: they are
// LO, so they pass through unchanged while Patient's Birth Date itself is
// emptied or removed by every preset.
func TestConformanceBirthDateInAlternativeCalendar(t *testing.T) {
	getFixture(t) // the corpus must be there
	in, err := os.ReadFile(filepath.Join(pydicomData, "test_files", "CT_small.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := dicom.Parse(in, dicom.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var e error
	b := builder{ds: &f.Dataset, err: &e}
	b.str("PatientAlternativeCalendar", "I")
	b.str("PatientBirthDateInAlternativeCalendar", "1315-01-25")
	b.str("PatientDeathDateInAlternativeCalendar", "1401-09-30")
	var buf bytes.Buffer
	if err := dicom.WriteFile(&buf, f); err != nil || e != nil {
		t.Fatal(err, e)
	}
	for _, preset := range deid.Presets {
		oc := rewrite(newEngine(t, presetPolicy(t, preset), siteKey), buf.Bytes())
		if !oc.ok() {
			continue // refused: nothing leaks
		}
		hay := scanBytes(oc.out)
		for _, v := range []string{"1315-01-25", "1401-09-30"} {
			if bytes.Contains(hay, []byte(v)) {
				t.Errorf("%s: the patient's date %s in an alternative calendar survives de-identification", preset, v)
			}
		}
	}
}

// TestConformanceUnknownPublicAttributes: a public (even group) attribute
// that the data dictionary does not know, such as one added to the
// standard after this build's dictionary or written by a non-conformant
// vendor, has no known meaning, so nothing says its value is safe. The
// engine keeps it when its VR is not free text, a name or UN: a patient's
// details in such an LO element in the Patient group go through. Like
// private attributes, unknown ones should be removed.
func TestConformanceUnknownPublicAttributes(t *testing.T) {
	getFixture(t) // the corpus must be there
	in, err := os.ReadFile(filepath.Join(pydicomData, "test_files", "CT_small.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	const v = "Doe^Jane 12 Elm Street 555-0100"
	for _, tag := range []dicom.Tag{0x00101234, 0x00089999} {
		if _, known := dicom.Lookup(tag); known {
			t.Fatalf("%s is in the dictionary: pick another tag", tag)
		}
		f, err := dicom.Parse(in, dicom.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Dataset.SetStrings(tag, dicom.LO, v); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := dicom.WriteFile(&buf, f); err != nil {
			t.Fatal(err)
		}
		for _, preset := range deid.Presets {
			oc := rewrite(newEngine(t, presetPolicy(t, preset), siteKey), buf.Bytes())
			if oc.ok() && bytes.Contains(scanBytes(oc.out), lowerASCII([]byte(v))) {
				t.Errorf("%s: unknown public attribute %s (LO) kept with its value %q", preset, tag, v)
			}
		}
	}
}

// noFile drops the header pointer and the pixel data position (which
// only Rewrite reports) so results compare by value.
func noFile(r deid.Result) deid.Result {
	r.File = nil
	r.PixelOffset, r.PixelLength = 0, 0
	return r
}
