package synth

import (
	"encoding/csv"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ClinicalColumns are the columns of clinical.csv, in order. They are
// documented in docs/clinical-csv.md.
var ClinicalColumns = []string{
	"patient_id",
	"issuer_of_patient_id",
	"birth_sex",
	"age_at_diagnosis",
	"diagnosis_date",
	"cancer_type",
	"icd10_code",
	"topography_code",
	"topography_label",
	"morphology_code",
	"morphology_label",
	"laterality",
	"tumor_size_mm",
	"stage_t",
	"stage_n",
	"stage_m",
	"stage_group",
	"stage_system",
	"surgery",
	"chemotherapy",
	"radiotherapy",
	"hormone_therapy",
	"immunotherapy",
	"treatment_intent",
	"treatment_start_days",
	"vital_status",
	"cause_of_death",
	"last_contact_date",
	"follow_up_days",
	"last_episode",
	"imaging_studies",
	"modalities",
	"body_parts",
}

func writeClinical(w writer, c *cohort) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(ClinicalColumns); err != nil {
		return err
	}
	for _, p := range c.patients {
		if err := cw.Write(clinicalRow(p)); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func clinicalRow(p *patient) []string {
	sex := map[byte]string{'F': "female", 'M': "male"}[p.sex]
	lat := map[string]string{"L": "left", "R": "right"}[p.laterality]
	tb := strconv.FormatBool
	treat := ""
	if p.intent != "" {
		treat = strconv.Itoa(p.treatStart)
	}
	vital := "alive"
	if p.deceased {
		vital = "deceased"
	}
	var mods, parts []string
	for _, st := range p.studies {
		for _, se := range st.series {
			mods = append(mods, se.modality)
			parts = append(parts, se.bodyPart)
		}
	}
	slices.Sort(mods)
	slices.Sort(parts)
	mods = slices.Compact(mods)
	parts = slices.Compact(parts)
	d := func(t interface{ Format(string) string }) string { return t.Format("2006-01-02") }
	return []string{
		p.id,
		p.issuer,
		sex,
		strconv.Itoa(p.ageAtDx),
		d(p.diagnosis),
		p.site.cancerType,
		p.topo.icd10,
		p.topo.code,
		p.topo.label,
		p.morph.code,
		p.morph.label,
		lat,
		strconv.Itoa(int(math.Round(2 * p.ph.lesion.rx))),
		p.stage.T(),
		p.stage.N(),
		p.stage.M(),
		p.stage.group,
		"TNM8 clinical",
		tb(p.surgery),
		tb(p.chemo),
		tb(p.radio),
		tb(p.hormone),
		tb(p.immuno),
		p.intent,
		treat,
		vital,
		p.causeOfDeath,
		d(p.lastContact),
		strconv.Itoa(int(p.lastContact.Sub(p.diagnosis).Hours() / 24)),
		p.lastEpisode,
		strconv.Itoa(len(p.studies)),
		strings.Join(mods, ";"),
		strings.Join(parts, ";"),
	}
}
