// Package cohort draws deterministic synthetic cancer patients as the rows
// a node's index holds, and loads them into an index through
// index.PutInstances and index.PutClinical, the paths ingest and
// `mosaic node import-clinical` take. It skips DICOM files and the
// de-identification door (internal/synth makes real files): benchmarks
// and the attack harness need many patients quickly, and federated search
// reads only the index.
//
// Each patient has a pseudonym as the node's policies write them ("MOS-"
// and 16 base-32 characters), the same in the CDM rows and in the imaging
// index. Cancer types are breast, lung, prostate, colorectal, liver and
// pancreas, with the ICD-10, ICD-O-3 topography and morphology codes of
// docs/clinical-csv.md, an age at diagnosis of 30 to 90 (most between 55
// and 80), a diagnosis in 2015 to 2024, TNM stages with their group,
// treatments, episodes and vital status. Imaging follows the site: 1 to 3
// studies per patient (the first within three weeks of the diagnosis), 1
// to 4 series per study, with the modality and body part combinations of
// a cancer centre (breast: MR BREAST, CT CHEST, MG BREAST; lung: CT CHEST;
// prostate: MR PROSTATE, CT PELVIS; colorectal: CT ABDOMEN, MR PELVIS;
// liver and pancreas: CT and MR ABDOMEN; any: PET/CT WHOLEBODY), on the
// scanners of the node's fleet (drawn from the seed: Siemens, GE,
// Philips, Toshiba or Canon CT, MR and PET, Hologic mammography). One
// instance per series: image files are not written, blob keys are random
// 64-hex strings. Three patients in a hundred have clinical rows but no
// images, one in a hundred images but no clinical rows, and two in a
// hundred a condition without an ICD-10 code (cancer type only), so that
// every branch of the node's search runs.
package cohort

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/index"
)

// Generator draws the patients of one node: the same seed gives the same
// fleet of scanners and the same patients in the same order.
type Generator struct {
	// LongFollowUp is the share of patients (0 to 1; default 0) given
	// a long follow-up: 10 to 15 more studies after their usual ones.
	// Whether a patient has one, and its studies, are drawn from a
	// stream of their own keyed by the pseudonym, so the other patients
	// and the first studies are those of the same seed without it. The
	// attack harness sets it; bench/search keeps the default.
	LongFollowUp float64

	r     *rand.Rand
	fleet map[string][]scanner
	seen  map[string]bool
}

// New returns the generator of seed, with the node's fleet drawn: one or
// two scanners per modality.
func New(seed uint64) *Generator {
	g := &Generator{r: rand.New(rand.NewPCG(seed, 0x73656172636821)), fleet: map[string][]scanner{}, seen: map[string]bool{}}
	mods := slices.Sorted(maps.Keys(fleets)) // in a fixed order: the same seed, the same fleet
	for _, mod := range mods {
		shuffled := slices.Clone(fleets[mod])
		g.r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		g.fleet[mod] = shuffled[:1+g.r.IntN(2)]
	}
	return g
}

// Next draws the next patient of dataset, with a pseudonym not used
// before by this generator.
func (g *Generator) Next(dataset string) Patient {
	id := Pseudonym(g.r)
	for g.seen[id] {
		id = Pseudonym(g.r)
	}
	g.seen[id] = true
	return makePatient(g.r, dataset, id, g.fleet, g.LongFollowUp)
}

// LoadStats describes what Load wrote.
type LoadStats struct {
	Patients  int
	Clinical  int // patients with clinical rows
	Imaged    int // patients with images
	Studies   int
	Instances int // one per series
	// Index is the time spent generating and writing the images;
	// Total adds the clinical rows.
	Index, Total time.Duration
}

// Load writes n patients of g into dataset of st: the images first, in
// transactions of about batch instances (cut at patient boundaries), then
// the clinical rows, as import-clinical does on a node that ingested
// first (PutClinical sets the studies' offsets from the diagnosis). The
// dataset must exist.
func Load(ctx context.Context, st *index.Store, dataset string, g *Generator, n, batch int) (LoadStats, error) {
	t0 := time.Now()
	ls := LoadStats{Patients: n}
	var insts []index.Instance
	var clin []index.ClinicalPatient
	studies := map[string]bool{}
	flush := func() error {
		if len(insts) == 0 {
			return nil
		}
		res, err := st.PutInstances(ctx, insts)
		if err != nil {
			return err
		}
		for i, s := range res {
			if s != index.Stored {
				return fmt.Errorf("cohort: instance %s: %s", insts[i].SOPUID, s)
			}
		}
		ls.Instances += len(insts)
		insts = insts[:0]
		return nil
	}
	for range n {
		p := g.Next(dataset)
		if len(insts) > 0 && len(insts)+len(p.Instances) > batch {
			if err := flush(); err != nil {
				return ls, err
			}
		}
		insts = append(insts, p.Instances...)
		if len(p.Instances) > 0 {
			ls.Imaged++
		}
		for _, in := range p.Instances {
			if !studies[in.StudyUID] {
				studies[in.StudyUID] = true
				ls.Studies++
			}
		}
		if p.Clinical != nil {
			clin = append(clin, *p.Clinical)
		}
	}
	if err := flush(); err != nil {
		return ls, err
	}
	ls.Index = time.Since(t0)
	for i := 0; i < len(clin); i += 2500 {
		if err := st.PutClinical(ctx, dataset, clin[i:min(i+2500, len(clin))]); err != nil {
			return ls, err
		}
		ls.Clinical += min(i+2500, len(clin)) - i
	}
	ls.Total = time.Since(t0)
	return ls, nil
}

// pseudoAlphabet is the one of the node's pseudonyms (no I, O, 0, 1).
const pseudoAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// Pseudonym draws a patient pseudonym as the node's policies write them
// ("MOS-" and 16 base-32 characters).
func Pseudonym(r *rand.Rand) string {
	b := make([]byte, 4, 20)
	copy(b, "MOS-")
	for range 16 {
		b = append(b, pseudoAlphabet[r.IntN(len(pseudoAlphabet))])
	}
	return string(b)
}

// UID draws a UUID-derived UID, 2.25 and a 128-bit decimal, as the
// node's de-identification writes.
func UID(r *rand.Rand) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], r.Uint64())
	binary.BigEndian.PutUint64(b[8:], r.Uint64())
	return "2.25." + new(big.Int).SetBytes(b[:]).String()
}

func pick[T any](r *rand.Rand, v []T) T { return v[r.IntN(len(v))] }

// weighted picks an index with probability proportional to w.
func weighted(r *rand.Rand, w ...float64) int {
	var sum float64
	for _, x := range w {
		sum += x
	}
	x := r.Float64() * sum
	for i, v := range w {
		if x < v {
			return i
		}
		x -= v
	}
	return len(w) - 1
}

// site is what a cancer type brings: its codes (ICD-10 with the matching
// ICD-O-3 topography), morphologies, whether the organ is paired, and
// the imaging studies done for it.
type site struct {
	name        string
	weight      float64
	icd, topo   []string
	morphology  []string
	paired      bool
	studies     []studyKind
	femaleShare float64
}

// studyKind is one kind of imaging study: the modality and body part of
// its series (PET/CT: one CT then PT series).
type studyKind struct {
	modality, bodyPart, description string
}

var (
	ctChest   = studyKind{"CT", "CHEST", "CT CHEST WITH CONTRAST"}
	ctAbdomen = studyKind{"CT", "ABDOMEN", "CT ABDOMEN PORTAL VENOUS"}
	ctPelvis  = studyKind{"CT", "PELVIS", "CT PELVIS"}
	mrBreast  = studyKind{"MR", "BREAST", "MR BREAST DCE"}
	mrProst   = studyKind{"MR", "PROSTATE", "MR PROSTATE MULTIPARAMETRIC"}
	mrPelvis  = studyKind{"MR", "PELVIS", "MR PELVIS RECTUM"}
	mrAbdomen = studyKind{"MR", "ABDOMEN", "MR LIVER WO/W CONTRAST"}
	mgBreast  = studyKind{"MG", "BREAST", "MAMMOGRAPHY BILATERAL"}
	petCT     = studyKind{"PET", "WHOLEBODY", "PET-CT FDG WHOLE BODY"}
)

var sites = []site{
	{"breast", 25, []string{"C50.2", "C50.4", "C50.9"}, []string{"C50.2", "C50.4", "C50.9"}, []string{"8500/3", "8520/3"}, true,
		[]studyKind{mrBreast, mrBreast, ctChest, mgBreast}, 1},
	{"lung", 25, []string{"C34.1", "C34.3", "C34.9"}, []string{"C34.1", "C34.3", "C34.9"}, []string{"8140/3", "8070/3", "8041/3"}, true,
		[]studyKind{ctChest}, 0.45},
	{"prostate", 20, []string{"C61"}, []string{"C61.9"}, []string{"8140/3"}, false,
		[]studyKind{mrProst, mrProst, ctPelvis}, 0},
	{"colorectal", 15, []string{"C18.7", "C20"}, []string{"C18.7", "C20.9"}, []string{"8140/3", "8480/3"}, false,
		[]studyKind{ctAbdomen, mrPelvis}, 0.45},
	{"liver", 8, []string{"C22.0"}, []string{"C22.0"}, []string{"8170/3", "8160/3"}, false,
		[]studyKind{ctAbdomen, mrAbdomen}, 0.3},
	{"pancreas", 7, []string{"C25.0", "C25.9"}, []string{"C25.0", "C25.9"}, []string{"8500/3", "8140/3"}, false,
		[]studyKind{ctAbdomen, mrAbdomen}, 0.48},
}

// scanner is one device of a node's fleet.
type scanner struct{ manufacturer, model string }

// fleets are the scanners a node may have per modality; each node keeps
// one or two of each, drawn from its seed.
var fleets = map[string][]scanner{
	"CT":  {{"SIEMENS", "SOMATOM Force"}, {"GE MEDICAL SYSTEMS", "Revolution CT"}, {"Philips", "IQon Spectral CT"}, {"TOSHIBA", "Aquilion ONE"}, {"CANON_MEC", "Aquilion ONE PRISM"}},
	"MR":  {{"SIEMENS", "MAGNETOM Vida"}, {"GE MEDICAL SYSTEMS", "SIGNA Premier"}, {"Philips Medical Systems", "Ingenia Elition X"}, {"Canon Medical Systems", "Vantage Orian"}},
	"PET": {{"SIEMENS", "Biograph Vision 600"}, {"GE MEDICAL SYSTEMS", "Discovery MI"}, {"Philips", "Vereos"}},
	"MG":  {{"HOLOGIC, Inc.", "Selenia Dimensions"}, {"GE MEDICAL SYSTEMS", "Senographe Pristina"}, {"SIEMENS", "MAMMOMAT Revelation"}},
}

var seriesDescriptions = map[string][]string{
	"CT": {"Axial 1.25mm", "Axial 5mm", "Coronal MPR 3mm", "Sagittal MPR 3mm", "Lung 1mm", "Soft tissue 2mm"},
	"MR": {"T1 SAG", "T2 AX", "DWI b1000", "ADC", "T1 POST GD AX", "DCE", "T2 FS COR"},
	"PT": {"PET WB AC", "PET WB NAC", "PET MIP"},
	"MG": {"L CC", "R CC", "L MLO", "R MLO"},
}

var sopClasses = map[string]string{
	"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4", "PT": "1.2.840.10008.5.1.4.1.1.128",
	"MG": "1.2.840.10008.5.1.4.1.1.1.2",
}

// matrix is rows, columns and bits allocated per modality.
var matrix = map[string][3]int{"CT": {512, 512, 16}, "MR": {320, 320, 16}, "PT": {200, 200, 16}, "MG": {3328, 2560, 16}}

// Patient is one synthetic patient: its clinical rows (nil for the one
// in a hundred imaged elsewhere) and its images (none for three in a
// hundred).
type Patient struct {
	Clinical  *index.ClinicalPatient
	Instances []index.Instance
}

func intp(v int) *int { return &v }

// makePatient draws one patient. fleet holds the node's scanners.
// followUp is Generator.LongFollowUp.
func makePatient(r *rand.Rand, dataset, id string, fleet map[string][]scanner, followUp float64) Patient {
	s := sites[weighted(r, 25, 25, 20, 15, 8, 7)]
	sex := "male"
	if r.Float64() < s.femaleShare {
		sex = "female"
	}
	// Ages 30 to 90, most between 55 and 80.
	age := 30 + int(math.Round(60*(r.Float64()+r.Float64()+r.Float64())/3))
	year := 2015 + r.IntN(10)
	diag := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, r.IntN(365))
	birth := diag.AddDate(-age, 0, -r.IntN(360)-1)
	k := r.IntN(len(s.icd))
	cond := &index.Condition{CancerType: s.name, AgeAtDiagnosis: intp(age), DiagnosisDate: diag.Format("20060102"), DiagnosisYear: intp(year),
		ICD10: s.icd[k], Topography: s.topo[k], Morphology: pick(r, s.morphology), TumorSizeMM: intp(10 + r.IntN(55))}
	if s.paired {
		cond.Laterality = pick(r, []string{"left", "right"})
	}
	if r.IntN(100) < 2 {
		cond.ICD10 = "" // a registry that coded the cancer type only
	}
	// Stage: TNM categories and the group they give (as clinical.csv).
	t := pick(r, []string{"T1", "T1a", "T1b", "T2", "T2a", "T2b", "T3", "T4"})
	n := pick(r, []string{"N0", "N0", "N1", "N2", "N3"})
	if s.name == "prostate" {
		n = pick(r, []string{"N0", "N0", "N1"})
	}
	m := "M0"
	if r.IntN(100) < 15 {
		m = "M1"
	}
	group := "I"
	switch {
	case m == "M1":
		group = "IV"
	case n == "N2" || n == "N3" || t == "T4":
		group = "III"
	case n == "N1" && t[:2] == "T3":
		group = "III"
	case n == "N1":
		group = "II"
	case t[:2] != "T1":
		group = "II"
	}
	const system = "TNM8 clinical"
	cp := &index.ClinicalPatient{PatientID: id, BirthSex: sex, Condition: cond,
		Stages: []index.Stage{{Code: "T", Value: t, System: system}, {Code: "N", Value: n, System: system},
			{Code: "M", Value: m, System: system}, {Code: "group", Value: group, System: system}},
		Episodes: []index.Episode{{Type: "Diagnosis", OffsetDays: intp(0)}}}
	intent := "curative"
	if m == "M1" {
		intent = "palliative"
	}
	if s.name == "prostate" && group == "I" && r.IntN(2) == 0 {
		cp.Episodes = append(cp.Episodes, index.Episode{Type: "Active Surveillance", OffsetDays: intp(7 + r.IntN(30))})
	} else {
		start := 14 + r.IntN(50)
		cp.Episodes = append(cp.Episodes, index.Episode{Type: "Treatment", OffsetDays: intp(start)})
		for _, tr := range []struct {
			name string
			p    float64
		}{{"surgery", 0.6}, {"chemotherapy", 0.5}, {"radiotherapy", 0.4}, {"hormone therapy", 0.2}, {"immunotherapy", 0.15}} {
			p := tr.p
			if tr.name == "hormone therapy" && (s.name == "breast" || s.name == "prostate") {
				p = 0.6
			}
			if r.Float64() < p {
				cp.Treatments = append(cp.Treatments, index.Treatment{Type: tr.name, Intent: intent, OffsetDays: intp(start + r.IntN(90))})
			}
		}
		if len(cp.Treatments) == 0 {
			cp.Treatments = append(cp.Treatments, index.Treatment{Type: "surgery", Intent: intent, OffsetDays: intp(start)})
		}
		if r.IntN(3) > 0 {
			cp.Episodes = append(cp.Episodes, index.Episode{Type: pick(r, []string{"Remission", "Remission", "Relapse", "Progression"}), OffsetDays: intp(200 + r.IntN(900))})
		}
	}
	dead := m == "M1" && r.IntN(2) == 0 || r.IntN(10) == 0
	cp.Deceased = &dead
	if dead {
		cp.CauseOfDeath = pick(r, []string{"cancer", "cancer", "other"})
	}
	cp.LastContactOffsetDays = intp(300 + r.IntN(2500))

	p := Patient{Clinical: cp}
	// Three in a hundred patients have no images yet; one in a hundred
	// has images only (its clinical record is elsewhere).
	switch x := r.IntN(100); {
	case x < 3:
		return p
	case x < 4:
		p.Clinical = nil
	}
	dicomSex := "F"
	if sex == "male" {
		dicomSex = "M"
	}
	nStudies := 1 + weighted(r, 50, 35, 15)
	extra, fr := 0, r
	if followUp > 0 {
		h := fnv.New64a()
		h.Write([]byte(id))
		fr = rand.New(rand.NewPCG(h.Sum64(), 0x666f6c6c6f77))
		if fr.Float64() < followUp {
			extra = 10 + fr.IntN(6)
		}
	}
	day := diag.AddDate(0, 0, r.IntN(21))
	for i := range nStudies + extra {
		r := r
		if i >= nStudies {
			r = fr // the long follow-up's own stream
		}
		if i > 0 {
			day = day.AddDate(0, 0, 60+r.IntN(300))
		}
		kind := pick(r, s.studies)
		if r.IntN(10) == 0 {
			kind = petCT
		}
		sc := pick(r, fleet[kind.modality])
		studyUID := UID(r)
		date := day.Format("20060102")
		tm := fmt.Sprintf("%02d%02d%02d", 7+r.IntN(12), r.IntN(60), r.IntN(60))
		studyAge := fmt.Sprintf("%03dY", int(day.Sub(birth).Hours()/24/365.25))
		accession := Pseudonym(r)[4:]
		nSeries := 1 + r.IntN(4)
		for j := range nSeries {
			mod := kind.modality
			if mod == "PET" {
				mod = "PT"
				if j == 0 {
					mod = "CT"
				}
			}
			mx := matrix[mod]
			pixels := int64(mx[0]) * int64(mx[1]) * int64(mx[2]/8)
			var key [32]byte
			for b := 0; b < len(key); b += 8 {
				binary.LittleEndian.PutUint64(key[b:], r.Uint64())
			}
			in := index.Instance{
				Dataset: dataset, PatientID: id, PatientName: id, PatientBirthDate: birth.Format("20060102"), PatientSex: dicomSex,
				StudyUID: studyUID, StudyDate: date, StudyTime: tm, AccessionNumber: accession, StudyID: "1",
				StudyDescription: kind.description, PatientAge: studyAge,
				SeriesUID: UID(r), Modality: mod, SeriesNumber: intp(j + 1), SeriesDescription: pick(r, seriesDescriptions[mod]),
				BodyPart: kind.bodyPart, Manufacturer: sc.manufacturer, ModelName: sc.model, SeriesDate: date,
				SOPUID: UID(r), SOPClassUID: sopClasses[mod], InstanceNumber: intp(1), TransferSyntax: "1.2.840.10008.1.2.1",
				Rows: mx[0], Columns: mx[1], Frames: 1, BitsAllocated: mx[2], SamplesPerPixel: 1,
				BlobKey: hex.EncodeToString(key[:]), PixelOffset: 1400 + int64(r.IntN(400)), PixelLength: pixels,
			}
			in.Size = in.PixelOffset + pixels
			in.Meta = metaJSON(&in)
			p.Instances = append(p.Instances, in)
		}
	}
	return p
}

// metaJSON is a short DICOM JSON object (PS3.18 F.2) for an instance: the
// attributes DICOMweb metadata would show, pixel data as a bulk data URI.
func metaJSON(in *index.Instance) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	attr := func(tag, vr string, v any) {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		val, _ := json.Marshal([]any{v})
		if vr == "PN" {
			val, _ = json.Marshal([]any{map[string]any{"Alphabetic": v}})
		}
		fmt.Fprintf(&b, `"%s":{"vr":"%s","Value":%s}`, tag, vr, val)
	}
	attr("00080016", "UI", in.SOPClassUID)
	attr("00080018", "UI", in.SOPUID)
	attr("00080020", "DA", in.StudyDate)
	attr("00080060", "CS", in.Modality)
	attr("00080070", "LO", in.Manufacturer)
	attr("0008103E", "LO", in.SeriesDescription)
	attr("00100010", "PN", in.PatientName)
	attr("00100020", "LO", in.PatientID)
	attr("00100040", "CS", in.PatientSex)
	attr("00180015", "CS", in.BodyPart)
	attr("0020000D", "UI", in.StudyUID)
	attr("0020000E", "UI", in.SeriesUID)
	attr("00200011", "IS", *in.SeriesNumber)
	attr("00200013", "IS", *in.InstanceNumber)
	attr("00280010", "US", in.Rows)
	attr("00280011", "US", in.Columns)
	fmt.Fprintf(&b, `,"7FE00010":{"vr":"OW","BulkDataURI":"mosaic-root:studies/%s/series/%s/instances/%s/bulk/7FE00010"}}`,
		in.StudyUID, in.SeriesUID, in.SOPUID)
	return b.Bytes()
}
