package node

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/deid"
	"github.com/mosaic-imaging/mosaic/internal/index"
)

// ClinicalIssue is one problem of the clinical table: a row (1 is the
// first data row; 0 for the table as a whole), a column and what is
// wrong. It never quotes the identifying columns.
type ClinicalIssue struct {
	Row     int    `json:"row"`
	Column  string `json:"column,omitempty"`
	Problem string `json:"problem"`
}

// ClinicalReport is the outcome of ImportClinical.
type ClinicalReport struct {
	Rows     int                  `json:"rows"`
	Imported int                  `json:"imported"`
	Skipped  int                  `json:"skipped"`
	Errors   []ClinicalIssue      `json:"errors"`
	Warnings []ClinicalIssue      `json:"warnings"`
	Join     index.ClinicalCounts `json:"join"`
	// Sealed counts the rows 'mosaic deid clinical' wrote with this
	// node's site key (their mark verified): their pseudonyms are kept
	// and their dates kept or treated on top (internal/deid/rowmark.go).
	// Unsealed counts the rows whose ID looks like a pseudonym, or that
	// carry a mark of this key, without a valid seal: they were taken as
	// original IDs, pseudonymised again and their dates treated, so they
	// will not join images de-identified before.
	Sealed   int `json:"sealed_rows"`
	Unsealed int `json:"unsealed_pseudonym_rows"`
}

// Vocabularies checked on import: the code systems EUCAIM's search keys
// use (ICD-10, ICD-O-3 topography and morphology, TNM).
var (
	reICD10      = regexp.MustCompile(`^[C-D]\d{2}(\.\d{1,2})?$`)
	reTopography = regexp.MustCompile(`^C\d{2}\.\d$`)
	reMorphology = regexp.MustCompile(`^\d{4}/[0-3679]$`)
	reStageT     = regexp.MustCompile(`^T(X|is|0|[1-4][a-d]?)$`)
	reStageN     = regexp.MustCompile(`^N(X|[0-3][a-c]?)$`)
	reStageM     = regexp.MustCompile(`^M(X|0|1[a-d]?)$`)
	stageGroups  = set("0", "I", "IA", "IB", "II", "IIA", "IIB", "IIC", "III", "IIIA", "IIIB", "IIIC", "IV", "IVA", "IVB")
	birthSexes   = set("female", "male", "other", "unknown")
	cancerTypes  = set("breast", "lung", "prostate", "colorectal", "liver", "pancreas", "kidney", "bladder", "brain", "cervix", "ovary", "stomach", "oesophagus", "melanoma", "lymphoma", "head-and-neck", "thyroid", "other")
	lateralities = set("left", "right", "bilateral", "")
	intents      = set("curative", "palliative", "adjuvant", "neoadjuvant", "")
	episodeTypes = set("Diagnosis", "Treatment", "Progression", "Relapse", "Remission", "Active Surveillance")
	treatments   = []string{"surgery", "chemotherapy", "radiotherapy", "hormone_therapy", "immunotherapy"}
)

func set(v ...string) map[string]bool {
	m := map[string]bool{}
	for _, s := range v {
		m[s] = true
	}
	return m
}

// mandatory columns of docs/clinical-csv.md for a row to be imported.
var mandatoryColumns = []string{"patient_id", "birth_sex", "age_at_diagnosis", "diagnosis_date", "cancer_type", "topography_code", "morphology_code"}

// ImportClinical reads a clinical table in the documented CSV layout
// (docs/clinical-csv.md, the one `mosaic synth` writes), pseudonymises the
// patient IDs and treats the dates with the node's key and policy, and
// replaces those patients' rows in the CDM of dataset. Rows with errors
// are skipped and reported; the rest are imported in one transaction.
// A row 'mosaic deid clinical' wrote with this node's key (its
// mosaic_deid mark verifies, deid.ClinicalRow) keeps its pseudonym and
// its dates are kept or treated on top; any other row is original data,
// even when its ID looks like a pseudonym (counted in Unsealed, with a
// warning). A table marked with another site key is refused whole.
func (n *Node) ImportClinical(ctx context.Context, dataset string, r io.Reader) (ClinicalReport, error) {
	rep := ClinicalReport{Errors: []ClinicalIssue{}, Warnings: []ClinicalIssue{}}
	if _, err := n.ix.Dataset(ctx, dataset); err != nil {
		return rep, err
	}
	cr := csv.NewReader(io.LimitReader(r, 1<<30))
	cr.ReuseRecord = false
	head, err := cr.Read()
	if err != nil {
		return rep, fmt.Errorf("clinical table: cannot read the header row: %w", err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))] = i
	}
	var missing []string
	for _, c := range mandatoryColumns {
		if _, ok := col[c]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return rep, fmt.Errorf("clinical table: missing mandatory columns %s (see docs/clinical-csv.md)", strings.Join(missing, ", "))
	}
	markCol := deid.MarkColumn(head)
	var pats []index.ClinicalPatient
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		rep.Rows++
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				rep.Errors = append(rep.Errors, ClinicalIssue{Row: rep.Rows, Problem: "malformed CSV: " + pe.Err.Error()})
				rep.Skipped++
				if errors.Is(pe.Err, csv.ErrFieldCount) {
					continue
				}
				break
			}
			return rep, err
		}
		id, issuer := "", ""
		if i := col["patient_id"]; i < len(rec) {
			id = rec[i]
		}
		if i, ok := col["issuer_of_patient_id"]; ok && i < len(rec) {
			issuer = rec[i]
		}
		row, err := n.eng.ClinicalRow(head, rec, markCol, id, issuer)
		if err != nil {
			return rep, fmt.Errorf("clinical table: row %d: %w", rep.Rows, err)
		}
		switch {
		case row.Own:
			rep.Sealed++
		case row.Unsealed:
			rep.Unsealed++
		}
		p, errs, warns := n.clinicalRow(rep.Rows, rec, col, row)
		rep.Warnings = append(rep.Warnings, warns...)
		if len(errs) > 0 {
			rep.Errors = append(rep.Errors, errs...)
			rep.Skipped++
			continue
		}
		if prev, dup := seen[p.PatientID]; dup {
			rep.Errors = append(rep.Errors, ClinicalIssue{Row: rep.Rows, Column: "patient_id", Problem: fmt.Sprintf("the same patient as row %d", prev)})
			rep.Skipped++
			continue
		}
		seen[p.PatientID] = rep.Rows
		pats = append(pats, p)
	}
	for i := 0; i < len(pats); i += 500 {
		if err := n.ix.PutClinical(ctx, dataset, pats[i:min(i+500, len(pats))]); err != nil {
			return rep, err
		}
	}
	rep.Imported = len(pats)
	if rep.Unsealed > 0 {
		rep.Warnings = append(rep.Warnings, ClinicalIssue{Problem: fmt.Sprintf("%d rows have IDs that look like Mosaic pseudonyms "+
			"but no valid %s mark of this site key: they were taken as original IDs, pseudonymised and their dates treated again, "+
			"so they will not join images de-identified before; import the table as 'mosaic deid clinical' wrote it, "+
			"or the original table", rep.Unsealed, deid.ClinicalMarkColumn)})
	}
	rep.Join, err = n.ix.CompareClinical(ctx, dataset, 20)
	return rep, err
}

func (n *Node) clinicalRow(row int, rec []string, col map[string]int, dr deid.Row) (index.ClinicalPatient, []ClinicalIssue, []ClinicalIssue) {
	var errs, warns []ClinicalIssue
	get := func(c string) string {
		if i, ok := col[c]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	bad := func(c, problem string) { errs = append(errs, ClinicalIssue{Row: row, Column: c, Problem: problem}) }
	warn := func(c, problem string) { warns = append(warns, ClinicalIssue{Row: row, Column: c, Problem: problem}) }
	for _, c := range mandatoryColumns {
		if get(c) == "" {
			bad(c, "mandatory value missing")
		}
	}
	p := index.ClinicalPatient{PatientID: dr.Pseudonym(), BirthSex: get("birth_sex")}
	if p.BirthSex != "" && !birthSexes[p.BirthSex] {
		bad("birth_sex", "unknown code (use female, male, other or unknown)")
	}
	optInt := func(c string, lo, hi int) *int {
		v := get(c)
		if v == "" {
			return nil
		}
		x, err := strconv.Atoi(v)
		if err != nil || x < lo || x > hi {
			bad(c, fmt.Sprintf("not a whole number from %d to %d", lo, hi))
			return nil
		}
		return &x
	}
	date := func(c string) (time.Time, bool) {
		v := get(c)
		if v == "" {
			return time.Time{}, false
		}
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			bad(c, "not a date YYYY-MM-DD")
			return t, false
		}
		return t, true
	}
	diag, hasDiag := date("diagnosis_date")
	cond := &index.Condition{
		CancerType: get("cancer_type"), AgeAtDiagnosis: optInt("age_at_diagnosis", 0, 130),
		ICD10: get("icd10_code"), Topography: get("topography_code"), Morphology: get("morphology_code"),
		Laterality: get("laterality"), TumorSizeMM: optInt("tumor_size_mm", 0, 2000),
	}
	if cond.CancerType != "" && !cancerTypes[cond.CancerType] {
		warn("cancer_type", "unknown cancer type")
	}
	if cond.ICD10 != "" && !reICD10.MatchString(cond.ICD10) {
		bad("icd10_code", "not an ICD-10 neoplasm code (C00 to D49)")
	}
	if cond.Topography != "" && !reTopography.MatchString(cond.Topography) {
		bad("topography_code", "not an ICD-O-3 topography code (Cnn.n)")
	}
	if cond.Morphology != "" && !reMorphology.MatchString(cond.Morphology) {
		bad("morphology_code", "not an ICD-O-3 morphology code (nnnn/b)")
	}
	if !lateralities[cond.Laterality] {
		bad("laterality", "unknown code (use left, right or bilateral)")
	}
	if hasDiag {
		// The year of diagnosis, a search key of the federation, is kept
		// before the date goes through the policy (which may shift it
		// across a new year), unless the policy removes dates.
		if n.pol.Dates != deid.DatesRemove {
			y := diag.Year()
			cond.DiagnosisYear = &y
		}
		d, err := dr.ChangeDate(diag.Format("20060102"))
		if err == nil {
			cond.DiagnosisDate = d
		}
	}
	p.Condition = cond
	system := get("stage_system")
	for _, st := range []struct {
		col, code string
		ok        func(string) bool
	}{
		{"stage_t", "T", reStageT.MatchString}, {"stage_n", "N", reStageN.MatchString}, {"stage_m", "M", reStageM.MatchString},
		{"stage_group", "group", func(s string) bool { return stageGroups[s] }},
	} {
		v := get(st.col)
		if v == "" {
			continue
		}
		if !st.ok(v) {
			bad(st.col, "unknown TNM value")
			continue
		}
		p.Stages = append(p.Stages, index.Stage{Code: st.code, Value: v, System: system})
	}
	switch v := get("vital_status"); v {
	case "alive":
		f := false
		p.Deceased = &f
	case "deceased":
		t := true
		p.Deceased = &t
		p.CauseOfDeath = get("cause_of_death")
	case "":
	default:
		bad("vital_status", "unknown code (use alive or deceased)")
	}
	if last, ok := date("last_contact_date"); ok && hasDiag {
		d := int(last.Sub(diag).Hours() / 24)
		if d < 0 {
			warn("last_contact_date", "before the diagnosis")
		}
		p.LastContactOffsetDays = &d
	}
	start := optInt("treatment_start_days", 0, 36500)
	intent := get("treatment_intent")
	if !intents[intent] {
		bad("treatment_intent", "unknown code (use curative or palliative)")
	}
	for _, t := range treatments {
		switch v := get(t); v {
		case "true":
			p.Treatments = append(p.Treatments, index.Treatment{Type: strings.ReplaceAll(t, "_", " "), Intent: intent, OffsetDays: start})
		case "false", "":
		default:
			bad(t, "not true or false")
		}
	}
	zero := 0
	p.Episodes = append(p.Episodes, index.Episode{Type: "Diagnosis", OffsetDays: &zero})
	if len(p.Treatments) > 0 {
		p.Episodes = append(p.Episodes, index.Episode{Type: "Treatment", OffsetDays: start})
	}
	if last := get("last_episode"); last != "" {
		if !episodeTypes[last] {
			bad("last_episode", "unknown episode type")
		} else if last != "Treatment" || len(p.Treatments) == 0 {
			p.Episodes = append(p.Episodes, index.Episode{Type: last, OffsetDays: p.LastContactOffsetDays})
		}
	}
	if p.PatientID == "" {
		bad("patient_id", "mandatory value missing")
	}
	return p, errs, warns
}
