package index

import (
	"context"
	"time"
)

// ClinicalPatient is one patient's clinical data in the CDM, keyed by
// the same pseudonym as the patient's images. Dates are already treated
// by the node's policy (shifted, coarsened or removed); offsets are in
// days from the diagnosis.
type ClinicalPatient struct {
	PatientID             string
	BirthSex              string // female, male, other, unknown
	Deceased              *bool
	CauseOfDeath          string
	LastContactOffsetDays *int
	Condition             *Condition
	Stages                []Stage
	Episodes              []Episode
	Treatments            []Treatment
}

// Condition is a cancer_condition row with its tumour.
type Condition struct {
	CancerType     string
	AgeAtDiagnosis *int
	DiagnosisDate  string // YYYYMMDD after the policy, or empty
	DiagnosisYear  *int
	ICD10          string
	Topography     string
	Morphology     string
	Laterality     string
	TumorSizeMM    *int
}

// Stage is a cancer_stage row: a TNM category or the stage group.
type Stage struct {
	Code   string // T, N, M or group
	Value  string
	System string
}

// Episode is an episode row.
type Episode struct {
	Type       string
	OffsetDays *int
}

// Treatment is a treatment row.
type Treatment struct {
	Type       string
	Intent     string
	OffsetDays *int
}

// PutClinical replaces the clinical data of the given patients of a
// dataset in one transaction, then recomputes the offsets of their
// imaging studies from the diagnosis.
func (s *Store) PutClinical(ctx context.Context, dataset string, patients []ClinicalPatient) error {
	now := s.now().UnixMilli()
	return s.db.InTx(ctx, func(tx *sqldbTx) error {
		for _, p := range patients {
			if _, err := tx.Exec(ctx, `DELETE FROM cdm_patient WHERE dataset_id = ? AND patient_id = ?`, dataset, p.PatientID); err != nil {
				return err
			}
			var pk int64
			if err := tx.QueryRow(ctx, `INSERT INTO cdm_patient (dataset_id, patient_id, birth_sex, deceased, cause_of_death, last_contact_offset_days)
				VALUES (?, ?, ?, ?, ?, ?) RETURNING pk`, dataset, p.PatientID, p.BirthSex, boolOrNil(p.Deceased), p.CauseOfDeath, intOrNil(p.LastContactOffsetDays)).Scan(&pk); err != nil {
				return err
			}
			if c := p.Condition; c != nil {
				var cpk int64
				if err := tx.QueryRow(ctx, `INSERT INTO cdm_cancer_condition (patient_pk, cancer_type, age_at_diagnosis, diagnosis_date, diagnosis_year,
					icd10_code, topography_code, morphology_code, laterality, tumor_size_mm) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING pk`,
					pk, c.CancerType, intOrNil(c.AgeAtDiagnosis), c.DiagnosisDate, intOrNil(c.DiagnosisYear), c.ICD10, c.Topography, c.Morphology,
					c.Laterality, intOrNil(c.TumorSizeMM)).Scan(&cpk); err != nil {
					return err
				}
				for _, st := range p.Stages {
					if _, err := tx.Exec(ctx, `INSERT INTO cdm_cancer_stage (condition_pk, stage_code, stage_value, scoring_system) VALUES (?, ?, ?, ?)`,
						cpk, st.Code, st.Value, st.System); err != nil {
						return err
					}
				}
			}
			for _, e := range p.Episodes {
				if _, err := tx.Exec(ctx, `INSERT INTO cdm_episode (patient_pk, episode_type, offset_days) VALUES (?, ?, ?)`, pk, e.Type, intOrNil(e.OffsetDays)); err != nil {
					return err
				}
			}
			for _, t := range p.Treatments {
				if _, err := tx.Exec(ctx, `INSERT INTO cdm_treatment (patient_pk, treatment_type, intent, offset_days) VALUES (?, ?, ?, ?)`,
					pk, t.Type, t.Intent, intOrNil(t.OffsetDays)); err != nil {
					return err
				}
			}
			if err := studyOffsets(ctx, tx, dataset, p); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, bumpChanged, now, now, dataset)
		return err
	})
}

// studyOffsets sets offset_from_diagnosis_days of a patient's imaging
// studies; dates on both sides went through the same policy, so a shift
// cancels out.
func studyOffsets(ctx context.Context, tx *sqldbTx, dataset string, p ClinicalPatient) error {
	var diag time.Time
	if p.Condition != nil {
		diag, _ = time.Parse("20060102", p.Condition.DiagnosisDate)
	}
	rows, err := tx.Query(ctx, `SELECT study_pk, study_date FROM cdm_image_study WHERE dataset_id = ? AND patient_id = ?`, dataset, p.PatientID)
	if err != nil {
		return err
	}
	type upd struct {
		pk  int64
		off any
	}
	var ups []upd
	for rows.Next() {
		var pk int64
		var d string
		if err := rows.Scan(&pk, &d); err != nil {
			rows.Close()
			return err
		}
		var off any
		if st, err := time.Parse("20060102", d); err == nil && !diag.IsZero() {
			off = int(st.Sub(diag).Hours() / 24)
		}
		ups = append(ups, upd{pk, off})
	}
	rows.Close()
	for _, u := range ups {
		if _, err := tx.Exec(ctx, `UPDATE cdm_image_study SET offset_from_diagnosis_days = ? WHERE study_pk = ?`, u.off, u.pk); err != nil {
			return err
		}
	}
	return nil
}

func boolOrNil(b *bool) any {
	if b == nil {
		return nil
	}
	if *b {
		return 1
	}
	return 0
}

// ClinicalCounts compares a dataset's clinical patients with its imaged
// patients. The lists hold at most the limit asked for; the counts are
// always complete.
type ClinicalCounts struct {
	ClinicalPatients      int64    `json:"clinical_patients"`
	ImagedPatients        int64    `json:"imaged_patients"`
	ClinicalNoImagesCount int64    `json:"clinical_without_images_count"`
	ImagesNoClinicalCount int64    `json:"images_without_clinical_count"`
	ClinicalNoImages      []string `json:"clinical_without_images"`
	ImagesNoClinical      []string `json:"images_without_clinical"`
}

// CompareClinical counts patients with clinical rows but no images and the
// reverse, and lists them (pseudonyms, at most limit of each).
func (s *Store) CompareClinical(ctx context.Context, dataset string, limit int) (ClinicalCounts, error) {
	var c ClinicalCounts
	if err := s.db.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM cdm_patient WHERE dataset_id = ?), (SELECT COUNT(*) FROM patients WHERE dataset_id = ?)`,
		dataset, dataset).Scan(&c.ClinicalPatients, &c.ImagedPatients); err != nil {
		return c, err
	}
	if err := s.db.QueryRow(ctx, `SELECT
		(SELECT COUNT(*) FROM cdm_patient c WHERE c.dataset_id = ? AND NOT EXISTS
			(SELECT 1 FROM patients p WHERE p.dataset_id = ? AND p.patient_id = c.patient_id)),
		(SELECT COUNT(*) FROM patients p WHERE p.dataset_id = ? AND NOT EXISTS
			(SELECT 1 FROM cdm_patient c WHERE c.dataset_id = ? AND c.patient_id = p.patient_id))`,
		dataset, dataset, dataset, dataset).Scan(&c.ClinicalNoImagesCount, &c.ImagesNoClinicalCount); err != nil {
		return c, err
	}
	list := func(q string) ([]string, error) {
		rows, err := s.db.Query(ctx, q, dataset, dataset, limit)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		out := []string{}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return nil, err
			}
			out = append(out, id)
		}
		return out, rows.Err()
	}
	var err error
	if c.ClinicalNoImages, err = list(`SELECT c.patient_id FROM cdm_patient c WHERE c.dataset_id = ? AND NOT EXISTS
		(SELECT 1 FROM patients p WHERE p.dataset_id = ? AND p.patient_id = c.patient_id) ORDER BY c.patient_id LIMIT ?`); err != nil {
		return c, err
	}
	c.ImagesNoClinical, err = list(`SELECT p.patient_id FROM patients p WHERE p.dataset_id = ? AND NOT EXISTS
		(SELECT 1 FROM cdm_patient c WHERE c.dataset_id = ? AND c.patient_id = p.patient_id) ORDER BY p.patient_id LIMIT ?`)
	return c, err
}

// Facets are per-dataset counts of patients by cancer type and by scanner
// manufacturer, for the catalogue.
type Facets struct {
	CancerTypes   map[string]int
	Manufacturers map[string]int
}

// DatasetFacets counts a dataset's patients by cancer type and by the
// manufacturers of their series.
func (s *Store) DatasetFacets(ctx context.Context, dataset string) (Facets, error) {
	f := Facets{CancerTypes: map[string]int{}, Manufacturers: map[string]int{}}
	for _, q := range []struct {
		sql string
		dst map[string]int
	}{
		{`SELECT k.cancer_type, COUNT(DISTINCT p.pk) FROM cdm_patient p JOIN cdm_cancer_condition k ON k.patient_pk = p.pk
			WHERE p.dataset_id = ? AND k.cancer_type <> '' GROUP BY k.cancer_type`, f.CancerTypes},
		{`SELECT manufacturer, COUNT(DISTINCT patient_id) FROM cdm_image_series WHERE dataset_id = ? AND manufacturer <> '' GROUP BY manufacturer`, f.Manufacturers},
	} {
		rows, err := s.db.Query(ctx, q.sql, dataset)
		if err != nil {
			return f, err
		}
		for rows.Next() {
			var k string
			var n int
			if err := rows.Scan(&k, &n); err != nil {
				rows.Close()
				return f, err
			}
			q.dst[k] = n
		}
		rows.Close()
	}
	return f, nil
}
