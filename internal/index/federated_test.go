package index

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/lens"
	"github.com/mosaic-imaging/mosaic/internal/sqldb/sqltest"
)

// fedSeries is one series of a test patient.
type fedSeries struct{ mod, body, manu string }

// fedPatient is a test patient: its DICOM sex and studies (none: known
// only clinically) and its clinical row (nil: imaged only).
type fedPatient struct {
	dataset, id, sex string
	studies          [][]fedSeries
	clin             *ClinicalPatient
}

func clin(sex string, age, year int, icd, ctype string) *ClinicalPatient {
	c := &ClinicalPatient{BirthSex: sex}
	if age > 0 || icd != "" || ctype != "" {
		c.Condition = &Condition{CancerType: ctype, ICD10: icd}
		if age > 0 {
			c.Condition.AgeAtDiagnosis = ptr(age)
			c.Condition.DiagnosisYear = ptr(year)
			c.Condition.DiagnosisDate = fmt.Sprintf("%d0301", year)
		}
	}
	return c
}

// fedCohort is the conformance cohort. The comments give each patient's
// gender as the search sees it.
var fedCohort = []fedPatient{
	{"a", "P01", "F", [][]fedSeries{{{"MR", "BREAST", "SIEMENS"}}, {{"CT", "CHEST", "GE MEDICAL SYSTEMS"}}}, clin("female", 45, 2018, "C50.9", "breast")},
	{"a", "P02", "F", [][]fedSeries{{{"CT", "CHEST", "Philips Medical Systems"}}}, clin("female", 62, 2019, "C34.1", "lung")},
	{"a", "P03", "M", [][]fedSeries{{{"MR", "PROSTATE", "Siemens Healthineers"}}, {{"CT", "PELVIS", "TOSHIBA_MEC"}}}, clin("male", 70, 2020, "C61", "prostate")},
	{"a", "P04", "M", [][]fedSeries{{{"CT", "ABDOMEN", "CANON_MEC"}, {"MR", "PELVIS", "GE HEALTHCARE"}}}, clin("male", 55, 2017, "C20", "colorectal")},
	{"a", "P05", "M", [][]fedSeries{{{"PT", "WHOLEBODY", "GE"}, {"CT", "WHOLEBODY", "GE"}}}, clin("", 80, 2021, "C22.0", "liver")}, // male (DICOM)
	{"a", "P06", "", nil, clin("female", 38, 2016, "C18.7", "colorectal")},
	{"a", "P07", "F", [][]fedSeries{{{"US", "ABDOMEN", "AGFA-GEVAERT"}}}, nil},                                     // female (DICOM)
	{"a", "P08", "", [][]fedSeries{{{"CT", "LUNG", "' OR 1=1 --"}}}, nil},                                          // unknown
	{"a", "P09", "", nil, clin("female", 66, 2019, "", "pancreas")},                                                // no ICD-10 code
	{"a", "P10", "O", [][]fedSeries{{{"MR", "", ""}}}, clin("other", 0, 0, "", "")},                                // no condition
	{"a", "P11", "F", [][]fedSeries{{{"CT", "PELVIS", "Philips"}}}, clin("unknown", 72, 2022, "C67.9", "bladder")}, // female (DICOM)
	{"b", "Q01", "F", [][]fedSeries{{{"CT", "CHEST", "SIEMENS"}}}, clin("female", 50, 2018, "C34.3", "lung")},
	{"b", "Q02", "M", [][]fedSeries{{{"MR", "PROSTATE", "GE"}}}, nil},
	// The same pseudonym as a's P01, another patient.
	{"b", "P01", "M", [][]fedSeries{{{"MR", "PROSTATE", "SIEMENS"}}}, clin("male", 90, 2015, "C61", "prostate")},
}

func loadFedCohort(t testing.TB, s *Store, cohort []fedPatient) {
	t.Helper()
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		if _, err := s.CreateDataset(ctx, Dataset{ID: id, Title: id, Tier: 3}); err != nil {
			t.Fatal(err)
		}
	}
	var insts []Instance
	clinical := map[string][]ClinicalPatient{}
	for pi, p := range cohort {
		for i, st := range p.studies {
			for j, se := range st {
				uid := fmt.Sprintf("2.25.%d.%d.%d", pi+1, i+1, j+1)
				insts = append(insts, Instance{Dataset: p.dataset, PatientID: p.id, PatientSex: p.sex,
					StudyUID: uid[:strings.LastIndexByte(uid, '.')], StudyDate: "20200315",
					SeriesUID: uid, Modality: se.mod, BodyPart: se.body, Manufacturer: se.manu,
					SOPUID: uid + ".1", SOPClassUID: "1.2.840.10008.5.1.4.1.1.2", BlobKey: fmt.Sprintf("%064s", strings.ReplaceAll(uid, ".", "")), Size: 10,
					PixelOffset: -1, PixelLength: -1})
			}
		}
		if p.clin != nil {
			c := *p.clin
			c.PatientID = p.id
			clinical[p.dataset] = append(clinical[p.dataset], c)
		}
	}
	if st, err := s.PutInstances(ctx, insts); err != nil {
		t.Fatal(err)
	} else {
		for i, x := range st {
			if x != Stored {
				t.Fatalf("instance %s: %v", insts[i].SOPUID, x)
			}
		}
	}
	for ds, pats := range clinical {
		if err := s.PutClinical(ctx, ds, pats); err != nil {
			t.Fatal(err)
		}
	}
}

// Leaves of the conformance queries.
func fl(key, typ, value string) string {
	return fmt.Sprintf(`{"key":%q,"type":%q,"system":"","value":%s}`, key, typ, value)
}
func fAnd(k ...string) string { return `{"operand":"AND","children":[` + strings.Join(k, ",") + `]}` }
func fOr(k ...string) string  { return `{"operand":"OR","children":[` + strings.Join(k, ",") + `]}` }
func fNot(k string) string    { return `{"operand":"NOT","children":[` + k + `]}` }

const (
	kGender = "SNOMEDCT263495000"
	kAge    = "SNOMEDCT423493009"
	kDiag   = "SNOMEDCT439401001"
	kYear   = "SNOMEDCT432213005"
	kMod    = "RID10311"
	kBody   = "SNOMEDCT123037004"
	kManu   = "C25392"
)

var (
	female = fl(kGender, "EQUALS", `"SNOMEDCT248152002"`)
	male   = fl(kGender, "EQUALS", `"SNOMEDCT248153007"`)
	modCT  = fl(kMod, "EQUALS", `"RID10321"`)
	modMR  = fl(kMod, "EQUALS", `"RID10312"`)
)

// fedCases are queries with the patients of dataset a, b and c they
// must match (c is empty: always none).
var fedCases = []struct {
	name, query string
	a, b        []string
}{
	{"everyone", `{"ast":{"operand":"OR","children":[]},"id":"x"}`, ids("P01..P11"), []string{"P01", "Q01", "Q02"}},
	{"gender female", female, []string{"P01", "P02", "P06", "P07", "P09", "P11"}, []string{"Q01"}},
	{"gender male", male, []string{"P03", "P04", "P05"}, []string{"P01", "Q02"}},
	{"gender other", fl(kGender, "EQUALS", `"SNOMEDCT74964007"`), []string{"P10"}, nil},
	{"gender unknown", fl(kGender, "EQUALS", `"SNOMEDCT261665006"`), []string{"P08"}, nil},
	{"gender not female", fl(kGender, "NOT_EQUALS", `"SNOMEDCT248152002"`), []string{"P03", "P04", "P05", "P08", "P10"}, []string{"P01", "Q02"}},
	{"gender in", fl(kGender, "IN", `["SNOMEDCT248153007","SNOMEDCT74964007"]`), []string{"P03", "P04", "P05", "P10"}, []string{"P01", "Q02"}},
	{"age between", fl(kAge, "BETWEEN", `{"min":50,"max":70}`), []string{"P02", "P03", "P04", "P09"}, []string{"Q01"}},
	{"age greater", fl(kAge, "GREATER_THAN", `70`), []string{"P05", "P11"}, []string{"P01"}},
	{"age lower", fl(kAge, "LOWER_THAN", `45`), []string{"P06"}, nil},
	{"age open above", fl(kAge, "BETWEEN", `{"min":72,"max":0}`), []string{"P05", "P11"}, []string{"P01"}},
	{"age equals", fl(kAge, "EQUALS", `45`), []string{"P01"}, nil},
	{"age not equals", fl(kAge, "NOT_EQUALS", `45`), []string{"P02", "P03", "P04", "P05", "P06", "P09", "P11"}, []string{"P01", "Q01"}},
	{"not age equals", fNot(fl(kAge, "EQUALS", `45`)), []string{"P02", "P03", "P04", "P05", "P06", "P07", "P08", "P09", "P10", "P11"}, []string{"P01", "Q01", "Q02"}},
	{"year between", fl(kYear, "BETWEEN", `{"min":2018,"max":2019}`), []string{"P01", "P02", "P09"}, []string{"Q01"}},
	{"year greater", fl(kYear, "GREATER_THAN", `2020`), []string{"P05", "P11"}, nil},
	{"year lower", fl(kYear, "LOWER_THAN", `2017`), []string{"P06"}, []string{"P01"}},
	{"lung cancer", fl(kDiag, "EQUALS", `"SNOMEDCT363358000"`), []string{"P02"}, []string{"Q01"}},
	{"breast cancer", fl(kDiag, "EQUALS", `"SNOMEDCT254837009"`), []string{"P01"}, nil},
	{"colon cancer", fl(kDiag, "EQUALS", `"SNOMEDCT363406005"`), []string{"P04", "P06"}, nil},
	{"pelvis cancer", fl(kDiag, "EQUALS", `"SNOMEDCT363484005"`), []string{"P03", "P04", "P11"}, []string{"P01"}},
	{"prostate cancer", fl(kDiag, "EQUALS", `"SNOMEDCT399068003"`), []string{"P03"}, []string{"P01"}},
	{"liver cancer", fl(kDiag, "EQUALS", `"SNOMEDCT93870000"`), []string{"P05"}, nil},
	{"pancreas cancer without ICD-10", fl(kDiag, "EQUALS", `"SNOMEDCT363418001"`), []string{"P09"}, nil},
	{"ICD-10 category", fl(kDiag, "EQUALS", `"C34"`), []string{"P02"}, []string{"Q01"}},
	{"ICD-10 code", fl(kDiag, "EQUALS", `"C34.1"`), []string{"P02"}, nil},
	{"ICD-10 system", `{"key":"SNOMEDCT439401001","type":"IN","system":"ICD-10","value":["C18","C22"]}`, []string{"P05", "P06"}, nil},
	{"diagnosis not lung", fl(kDiag, "NOT_EQUALS", `"SNOMEDCT363358000"`), []string{"P01", "P03", "P04", "P05", "P06", "P09", "P11"}, []string{"P01"}},
	{"diagnosis not C61", fl(kDiag, "NOT_EQUALS", `"C61"`), []string{"P01", "P02", "P04", "P05", "P06", "P11"}, []string{"Q01"}},
	{"modality MR", modMR, []string{"P01", "P03", "P04", "P10"}, []string{"P01", "Q02"}},
	{"modality CT", modCT, []string{"P01", "P02", "P03", "P04", "P05", "P08", "P11"}, []string{"Q01"}},
	{"modality PET", fl(kMod, "EQUALS", `"RID10337"`), []string{"P05"}, nil},
	{"modality SPECT", fl(kMod, "EQUALS", `"RID10334"`), nil, nil},
	{"modality plain", fl(kMod, "IN", `["US","PT"]`), []string{"P05", "P07"}, nil},
	{"modality not CT", fl(kMod, "NOT_EQUALS", `"CT"`), []string{"P01", "P03", "P04", "P05", "P07", "P10"}, []string{"P01", "Q02"}},
	{"no CT", fNot(modCT), []string{"P06", "P07", "P09", "P10"}, []string{"P01", "Q02"}},
	{"body part lung", fl(kBody, "EQUALS", `"SNOMEDCT39607008"`), []string{"P01", "P02", "P08"}, []string{"Q01"}},
	{"body part chest", fl(kBody, "EQUALS", `"SNOMEDCT51185008"`), []string{"P01", "P02", "P08"}, []string{"Q01"}},
	{"body part LUNG plain", fl(kBody, "EQUALS", `"LUNG"`), []string{"P08"}, nil},
	{"body part breast", fl(kBody, "EQUALS", `"SNOMEDCT76752008"`), []string{"P01"}, nil},
	{"body part pelvis", fl(kBody, "EQUALS", `"SNOMEDCT12921003"`), []string{"P03", "P04", "P11"}, nil},
	{"body part prostate", fl(kBody, "EQUALS", `"SNOMEDCT41216001"`), []string{"P03"}, []string{"P01", "Q02"}},
	{"body part abdomen", fl(kBody, "IN", `["SNOMEDCT818981001"]`), []string{"P04", "P07"}, nil},
	{"body part abdomen old code", fl(kBody, "EQUALS", `"SNOMEDCT113345001"`), []string{"P04", "P07"}, nil},
	{"body part whole body", fl(kBody, "EQUALS", `"SNOMEDCT38266002"`), []string{"P05"}, nil},
	{"body part colon", fl(kBody, "EQUALS", `"SNOMEDCT71854001"`), nil, nil},
	{"body part not lung", fl(kBody, "NOT_EQUALS", `"SNOMEDCT39607008"`), []string{"P01", "P03", "P04", "P05", "P07", "P11"}, []string{"P01", "Q02"}},
	{"Siemens", fl(kManu, "EQUALS", `"C200140"`), []string{"P01", "P03"}, []string{"P01", "Q01"}},
	{"Siemens Medical Solutions", fl(kManu, "EQUALS", `"birnlex_3066"`), []string{"P01", "P03"}, []string{"P01", "Q01"}},
	{"GE", fl(kManu, "EQUALS", `"birnlex_12833"`), []string{"P01", "P04", "P05"}, []string{"Q02"}},
	{"Philips", fl(kManu, "EQUALS", `"birnlex_3065"`), []string{"P02", "P11"}, nil},
	{"Toshiba", fl(kManu, "EQUALS", `"birnlex_3067"`), []string{"P03", "P04"}, nil},
	{"manufacturer free text", fl(kManu, "EQUALS", `"agfa-gevaert"`), []string{"P07"}, nil},
	{"manufacturer contains", fl(kManu, "CONTAINS", `"gevaert"`), []string{"P07"}, nil},
	{"manufacturer contains underscore", fl(kManu, "CONTAINS", `"_"`), []string{"P03", "P04"}, nil},
	{"manufacturer contains percent", fl(kManu, "CONTAINS", `"%"`), nil, nil},
	{"manufacturer not GE", fl(kManu, "NOT_EQUALS", `"birnlex_12833"`), []string{"P01", "P02", "P03", "P04", "P07", "P08", "P11"}, []string{"P01", "Q01"}},
	{"SQL-looking stored value", fl(kManu, "EQUALS", `"' OR 1=1 --"`), []string{"P08"}, nil},
	{"SQL-looking contains", fl(kManu, "CONTAINS", `"1=1"`), []string{"P08"}, nil},
	{"SQL-looking value", fl(kManu, "IN", `["x' OR '1'='1", "'); DROP TABLE patients; --", "\\"]`), nil, nil},
	{"female aged 50-70 with CT", fAnd(female, fl(kAge, "BETWEEN", `{"min":50,"max":70}`), modCT), []string{"P02"}, []string{"Q01"}},
	{"lung in diagnosis or images", fOr(fl(kDiag, "EQUALS", `"SNOMEDCT363358000"`), fl(kBody, "EQUALS", `"SNOMEDCT39607008"`)), []string{"P01", "P02", "P08"}, []string{"Q01"}},
	{"not female with MR", fAnd(fNot(female), modMR), []string{"P03", "P04", "P10"}, []string{"P01", "Q02"}},
	{"female and MR", fAnd(female, modMR), []string{"P01"}, nil},
	{"sex-specific sites", fOr(fAnd(female, fl(kDiag, "EQUALS", `"SNOMEDCT254837009"`)), fAnd(male, fl(kDiag, "EQUALS", `"SNOMEDCT399068003"`))), []string{"P01", "P03"}, []string{"P01"}},
	{"neither CT nor MR", fNot(fOr(modCT, modMR)), []string{"P06", "P07", "P09"}, nil},
	{"both CT and MR", fAnd(modCT, modMR), []string{"P01", "P03", "P04"}, nil},
	{"contradiction", fAnd(female, male), nil, nil},
	{"nothing", fNot(fOr()), nil, nil},
}

// ids expands "P01..P11".
func ids(r string) []string {
	var a, b int
	fmt.Sscanf(r, "P%d..P%d", &a, &b)
	var out []string
	for i := a; i <= b; i++ {
		out = append(out, fmt.Sprintf("P%02d", i))
	}
	return out
}

func fedRun(t *testing.T, s *Store, query string) map[string]DatasetStats {
	t.Helper()
	q, err := lens.Parse([]byte(query))
	if err != nil {
		t.Fatalf("parse %s: %v", query, err)
	}
	st, err := s.FederatedCounts(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q.Describe(), err)
	}
	// The in-memory evaluation and the SQL reference agree figure for
	// figure.
	ref, err := s.federatedCountsSQL(context.Background(), q)
	if err != nil {
		t.Fatalf("%s (SQL): %v", q.Describe(), err)
	}
	if len(ref) != len(st) {
		t.Fatalf("%s: %d datasets in memory, %d in SQL", q.Describe(), len(st), len(ref))
	}
	for i := range st {
		if !fedEqual(st[i], ref[i]) {
			t.Errorf("%s: memory and SQL differ:\n mem %s\n sql %s", q.Describe(), fedString(st[i]), fedString(ref[i]))
		}
	}
	out := map[string]DatasetStats{}
	for _, d := range st {
		out[d.Dataset] = d
	}
	if len(st) != 3 || out["a"].Dataset != "a" || out["b"].Dataset != "b" || out["c"].Dataset != "c" {
		t.Fatalf("datasets: %+v", st)
	}
	return out
}

func TestFederatedCounts(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		loadFedCohort(t, s, fedCohort)
		for _, tc := range fedCases {
			t.Run(tc.name, func(t *testing.T) {
				got := fedRun(t, s, tc.query)
				for ds, want := range map[string][]string{"a": tc.a, "b": tc.b, "c": nil} {
					exp := fedExpect(fedCohort, ds, want)
					if g := got[ds]; !fedEqual(g, exp) {
						t.Errorf("dataset %s:\n got %s\nwant %s", ds, fedString(g), fedString(exp))
					}
				}
			})
		}
	})
}

// TestFederatedStats spells out every figure of one query, so that the
// expectation helper is checked by hand too.
func TestFederatedStats(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		loadFedCohort(t, s, fedCohort)
		got := fedRun(t, s, female)["a"]
		want := DatasetStats{Dataset: "a", Subjects: 6, Studies: 5, Genders: map[string]int{"female": 6},
			Modalities: map[string]int{"MR": 1, "CT": 3, "US": 1},
			BodyParts:  map[string]int{"BREAST": 1, "CHEST": 2, "ABDOMEN": 1, "PELVIS": 1},
			AgeMin:     ptr(38), AgeMax: ptr(72)}
		if !fedEqual(got, want) {
			t.Errorf("got %s\nwant %s", fedString(got), fedString(want))
		}
		all := fedRun(t, s, `{"operand":"OR","children":[]}`)
		want = DatasetStats{Dataset: "a", Subjects: 11, Studies: 11, Genders: map[string]int{"female": 6, "male": 3, "other": 1, "unknown": 1},
			Modalities: map[string]int{"MR": 4, "CT": 7, "PT": 1, "US": 1},
			BodyParts:  map[string]int{"BREAST": 1, "CHEST": 2, "PROSTATE": 1, "PELVIS": 3, "ABDOMEN": 2, "WHOLEBODY": 1, "LUNG": 1},
			AgeMin:     ptr(38), AgeMax: ptr(80)}
		if !fedEqual(all["a"], want) {
			t.Errorf("everyone: got %s\nwant %s", fedString(all["a"]), fedString(want))
		}
		if c := all["c"]; c.Subjects != 0 || c.Studies != 0 || len(c.Genders) != 0 || c.AgeMin != nil || c.Genders == nil || c.Modalities == nil || c.BodyParts == nil {
			t.Errorf("empty dataset: %s", fedString(c))
		}
		// A patient known only from clinical data, and one without a
		// condition, leave the age range alone.
		if got := fedRun(t, s, fl(kGender, "EQUALS", `"SNOMEDCT74964007"`))["a"]; got.AgeMin != nil || got.Studies != 1 {
			t.Errorf("other: %s", fedString(got))
		}
		// The tables are still there after the SQL-looking values.
		if _, err := s.DatasetCounts(context.Background(), "a"); err != nil {
			t.Fatal(err)
		}
	})
}

// TestFederatedRandom compares random queries over the cohort with an
// evaluation in Go of the documented semantics.
func TestFederatedRandom(t *testing.T) {
	leaves := []string{
		female, male, fl(kGender, "IN", `["SNOMEDCT74964007","SNOMEDCT261665006"]`), fl(kGender, "NOT_EQUALS", `"SNOMEDCT248153007"`),
		fl(kAge, "BETWEEN", `{"min":50,"max":70}`), fl(kAge, "GREATER_THAN", `60`), fl(kAge, "NOT_EQUALS", `62`), fl(kYear, "LOWER_THAN", `2019`),
		fl(kDiag, "EQUALS", `"SNOMEDCT363484005"`), fl(kDiag, "IN", `["C34","SNOMEDCT363418001"]`), fl(kDiag, "NOT_EQUALS", `"SNOMEDCT363406005"`),
		modCT, modMR, fl(kMod, "NOT_EQUALS", `"MR"`), fl(kBody, "EQUALS", `"SNOMEDCT39607008"`), fl(kBody, "NOT_EQUALS", `"PELVIS"`),
		fl(kManu, "EQUALS", `"birnlex_12833"`), fl(kManu, "IN", `["C200140","birnlex_3065"]`), fl(kManu, "CONTAINS", `"me"`), fl(kManu, "NOT_EQUALS", `"C200140"`),
	}
	r := rand.New(rand.NewPCG(7, 11))
	var gen func(depth int) string
	gen = func(depth int) string {
		if depth == 0 || r.IntN(3) == 0 {
			return leaves[r.IntN(len(leaves))]
		}
		switch r.IntN(3) {
		case 0:
			return fNot(gen(depth - 1))
		case 1:
			kids := make([]string, r.IntN(4))
			for i := range kids {
				kids[i] = gen(depth - 1)
			}
			return fAnd(kids...)
		default:
			kids := make([]string, r.IntN(4))
			for i := range kids {
				kids[i] = gen(depth - 1)
			}
			return fOr(kids...)
		}
	}
	queries := make([]string, 300)
	for i := range queries {
		queries[i] = gen(4)
	}
	engines(t, func(t *testing.T, s *Store) {
		loadFedCohort(t, s, fedCohort)
		for _, query := range queries {
			q, err := lens.Parse([]byte(query))
			if err != nil {
				t.Fatal(err)
			}
			got := fedRun(t, s, query)
			for _, ds := range []string{"a", "b", "c"} {
				var want []string
				for _, p := range fedCohort {
					if p.dataset == ds && q.Root.Eval(func(c *lens.Condition) bool { return refCond(p, c) }) {
						want = append(want, p.id)
					}
				}
				if exp := fedExpect(fedCohort, ds, want); !fedEqual(got[ds], exp) {
					t.Fatalf("%s\ndataset %s:\n got %s\nwant %s", q.Describe(), ds, fedString(got[ds]), fedString(exp))
				}
			}
		}
	})
}

// refGender is the search's gender of a test patient.
func refGender(p fedPatient) string {
	if p.clin != nil && (p.clin.BirthSex == "female" || p.clin.BirthSex == "male" || p.clin.BirthSex == "other") {
		return p.clin.BirthSex
	}
	return map[string]string{"F": "female", "M": "male", "O": "other"}[p.sex] + map[bool]string{true: "unknown"}[p.sex != "F" && p.sex != "M" && p.sex != "O"]
}

// refCond evaluates one condition for a test patient in Go, following
// the semantics the lens package documents.
func refCond(p fedPatient, c *lens.Condition) bool {
	want := func(kind lens.MatchKind) []string {
		var out []string
		for _, m := range c.Matches {
			if m.Kind == kind {
				out = append(out, m.Value)
			}
		}
		return out
	}
	switch c.Attr {
	case lens.Gender:
		return slices.Contains(want(lens.Exact), refGender(p)) != c.Negated
	case lens.AgeAtDiagnosis, lens.YearOfDiagnosis:
		if p.clin == nil || p.clin.Condition == nil {
			return false
		}
		v := p.clin.Condition.AgeAtDiagnosis
		if c.Attr == lens.YearOfDiagnosis {
			v = p.clin.Condition.DiagnosisYear
		}
		if v == nil {
			return false
		}
		in := (c.Min == nil || *v >= *c.Min) && (c.Max == nil || *v <= *c.Max)
		return in != c.Negated
	case lens.Diagnosis:
		if p.clin == nil || p.clin.Condition == nil {
			return false
		}
		code := strings.ReplaceAll(strings.ToUpper(p.clin.Condition.ICD10), ".", "")
		if code != "" {
			hit := slices.ContainsFunc(want(lens.Prefix), func(pre string) bool { return strings.HasPrefix(code, pre) })
			return hit != c.Negated
		}
		types, ct := want(lens.CancerType), p.clin.Condition.CancerType
		if c.Negated {
			return len(types) > 0 && ct != "" && !slices.Contains(types, ct)
		}
		return slices.Contains(types, ct)
	}
	for _, st := range p.studies {
		for _, se := range st {
			var v string
			var hit bool
			switch c.Attr {
			case lens.Modality:
				v = se.mod
				hit = slices.Contains(want(lens.Exact), v)
			case lens.BodyPart:
				v = se.body
				hit = slices.Contains(want(lens.Exact), v)
			case lens.Manufacturer:
				v = se.manu
				words := " " + strings.NewReplacer("_", " ", "-", " ", ".", " ", ",", " ", "/", " ").Replace(strings.ToUpper(v)) + " "
				for _, m := range c.Matches {
					switch m.Kind {
					case lens.Word:
						hit = hit || strings.Contains(words, " "+m.Value+" ")
					case lens.Exact:
						hit = hit || strings.ToUpper(strings.TrimSpace(v)) == m.Value
					case lens.Substring:
						hit = hit || strings.Contains(strings.ToUpper(v), m.Value)
					}
				}
			}
			if c.Negated {
				hit = v != "" && !hit
			}
			if hit {
				return true
			}
		}
	}
	return false
}

// fedExpect computes the figures of dataset ds for the given matching
// patients from the cohort itself.
func fedExpect(cohort []fedPatient, ds string, match []string) DatasetStats {
	d := DatasetStats{Dataset: ds, Genders: map[string]int{}, Modalities: map[string]int{}, BodyParts: map[string]int{}}
	for _, p := range cohort {
		if p.dataset != ds || !slices.Contains(match, p.id) {
			continue
		}
		d.Subjects++
		d.Studies += len(p.studies)
		d.Genders[refGender(p)]++
		mods, bodies := map[string]bool{}, map[string]bool{}
		for _, st := range p.studies {
			for _, se := range st {
				if se.mod != "" {
					mods[se.mod] = true
				}
				if se.body != "" {
					bodies[se.body] = true
				}
			}
		}
		for m := range mods {
			d.Modalities[m]++
		}
		for b := range bodies {
			d.BodyParts[b]++
		}
		if p.clin != nil && p.clin.Condition != nil && p.clin.Condition.AgeAtDiagnosis != nil {
			a := *p.clin.Condition.AgeAtDiagnosis
			if d.AgeMin == nil || a < *d.AgeMin {
				d.AgeMin = ptr(a)
			}
			if d.AgeMax == nil || a > *d.AgeMax {
				d.AgeMax = ptr(a)
			}
		}
	}
	return d
}

func fedEqual(a, b DatasetStats) bool {
	eqp := func(x, y *int) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.Dataset == b.Dataset && a.Subjects == b.Subjects && a.Studies == b.Studies && maps.Equal(a.Genders, b.Genders) &&
		maps.Equal(a.Modalities, b.Modalities) && maps.Equal(a.BodyParts, b.BodyParts) && eqp(a.AgeMin, b.AgeMin) && eqp(a.AgeMax, b.AgeMax)
}

func fedString(d DatasetStats) string {
	age := "-"
	if d.AgeMin != nil && d.AgeMax != nil {
		age = fmt.Sprintf("%d..%d", *d.AgeMin, *d.AgeMax)
	}
	return fmt.Sprintf("subjects %d studies %d genders %v modalities %v body parts %v age %s", d.Subjects, d.Studies, d.Genders, d.Modalities, d.BodyParts, age)
}

// benchCohort makes n synthetic patients for dataset ds, clinical and
// imaging: 1 to 3 studies of 1 or 2 series each, one instance per series.
func benchCohort(ds string, n int, seed uint64) ([]Instance, []ClinicalPatient) {
	r := rand.New(rand.NewPCG(seed, 1))
	type site struct {
		ctype, icd string
		series     [][2]string
	}
	sites := []site{
		{"breast", "C50.9", [][2]string{{"MR", "BREAST"}, {"CT", "CHEST"}}},
		{"lung", "C34.1", [][2]string{{"CT", "CHEST"}, {"PT", "WHOLEBODY"}}},
		{"prostate", "C61", [][2]string{{"MR", "PROSTATE"}, {"CT", "PELVIS"}}},
		{"colorectal", "C18.7", [][2]string{{"CT", "ABDOMEN"}, {"MR", "PELVIS"}}},
		{"liver", "C22.0", [][2]string{{"CT", "ABDOMEN"}, {"MR", "ABDOMEN"}}},
		{"pancreas", "C25.0", [][2]string{{"CT", "ABDOMEN"}, {"MR", "ABDOMEN"}}},
	}
	manus := []string{"SIEMENS", "GE MEDICAL SYSTEMS", "Philips Medical Systems", "TOSHIBA_MEC", "CANON_MEC"}
	var insts []Instance
	var clin []ClinicalPatient
	for p := 0; p < n; p++ {
		id := fmt.Sprintf("%s-%06d", ds, p)
		st := sites[r.IntN(len(sites))]
		sex := []string{"female", "male"}[r.IntN(2)]
		age, year := 35+r.IntN(51), 2016+r.IntN(7)
		clin = append(clin, ClinicalPatient{PatientID: id, BirthSex: sex,
			Condition: &Condition{CancerType: st.ctype, ICD10: st.icd, AgeAtDiagnosis: ptr(age), DiagnosisYear: ptr(year), DiagnosisDate: fmt.Sprintf("%d0301", year)}})
		for k := 0; k < 1+r.IntN(3); k++ {
			for j := 0; j < 1+r.IntN(2); j++ {
				uid := fmt.Sprintf("2.25.%d.%d.%d.%d", seed, p, k, j)
				insts = append(insts, Instance{Dataset: ds, PatientID: id, PatientSex: strings.ToUpper(sex[:1]),
					StudyUID: fmt.Sprintf("2.25.%d.%d.%d", seed, p, k), StudyDate: fmt.Sprintf("%d0315", year),
					SeriesUID: uid, Modality: st.series[j][0], BodyPart: st.series[j][1], Manufacturer: manus[r.IntN(len(manus))],
					SOPUID: uid + ".1", BlobKey: fmt.Sprintf("%064x", uint64(seed)<<40|uint64(p)<<8|uint64(k)<<4|uint64(j)), Size: 1,
					PixelOffset: -1, PixelLength: -1})
			}
		}
	}
	return insts, clin
}

// benchQueries are the shapes the benchmark times.
var benchQueries = map[string]string{
	"typical": fAnd(female, fl(kAge, "BETWEEN", `{"min":50,"max":70}`), modMR),
	"empty":   `{"operand":"OR","children":[]}`,
	"or-not":  fOr(fAnd(fl(kDiag, "EQUALS", `"SNOMEDCT363358000"`), fNot(fl(kMod, "EQUALS", `"PT"`))), fl(kManu, "EQUALS", `"birnlex_12833"`)),
	"none":    fAnd(female, male),
}

// BenchmarkFederatedCounts times FederatedCounts over 10,000 patients with
// clinical and imaging rows (the hub benchmark's node size) on SQLite
// and, when MOSAIC_TEST_POSTGRES is set, PostgreSQL.
func BenchmarkFederatedCounts(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			ctx := context.Background()
			dsn := filepath.Join(b.TempDir(), "index.db")
			if engine == "postgres" {
				dsn = sqltest.PostgresURL(b)
			}
			s, err := Open(ctx, dsn)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if _, err := s.CreateDataset(ctx, Dataset{ID: "bench", Title: "bench", Tier: 3}); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			insts, clin := benchCohort("bench", 10000, 1)
			for i := 0; i < len(insts); i += 2000 {
				if _, err := s.PutInstances(ctx, insts[i:min(i+2000, len(insts))]); err != nil {
					b.Fatal(err)
				}
			}
			for i := 0; i < len(clin); i += 1000 {
				if err := s.PutClinical(ctx, "bench", clin[i:min(i+1000, len(clin))]); err != nil {
					b.Fatal(err)
				}
			}
			if engine == "postgres" {
				if _, err := s.db.Exec(ctx, "ANALYZE"); err != nil {
					b.Fatal(err)
				}
			}
			b.Logf("%s: loaded 10000 patients, %d instances in %v", engine, len(insts), time.Since(start).Round(time.Millisecond))
			for _, name := range []string{"typical", "empty", "or-not", "none"} {
				q, err := lens.Parse([]byte(benchQueries[name]))
				if err != nil {
					b.Fatal(err)
				}
				b.Run(name, func(b *testing.B) {
					var subjects int
					cpu := processCPU()
					for b.Loop() {
						st, err := s.FederatedCounts(ctx, q)
						if err != nil {
							b.Fatal(err)
						}
						subjects = st[0].Subjects
					}
					if cpu >= 0 {
						// The test process's own CPU time per query: on a
						// busy machine a steadier figure than wall time
						// (for PostgreSQL the server's share is not in it).
						b.ReportMetric(float64(processCPU()-cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
					}
					b.ReportMetric(float64(subjects), "subjects")
				})
			}
		})
	}
}

// processCPU returns the user and system CPU time of this process from
// /proc/self/stat (Linux), or -1 where that is not available.
func processCPU() time.Duration {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return -1
	}
	// Fields after the command name (which may contain spaces): state is
	// field 3, utime and stime are fields 14 and 15, in clock ticks of
	// 1/100 s on every Linux configuration that matters.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return -1
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return time.Duration(ut+st) * 10 * time.Millisecond
}
