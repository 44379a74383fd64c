package index

import "context"

// Problem is one kind of problem found by Check, with how many objects
// have it and a few examples (de-identified UIDs or pseudonyms).
type Problem struct {
	Kind     string   `json:"kind"`
	Severity string   `json:"severity"` // error: must fix; warning: should fix for the tier
	Tier     int      `json:"tier,omitempty"`
	Count    int64    `json:"count"`
	Message  string   `json:"message"`
	Examples []string `json:"examples,omitempty"`
}

type checkQuery struct {
	kind, severity string
	tier           int
	message        string
	count, list    string // SQL with one ? for the dataset (list: also ? for a limit)
}

// checks are the index queries behind Check. EUCAIM's minimum metadata
// asks, per series, Modality, Body Part Examined, Manufacturer and an
// acquisition date, per study the patient's age, and clinically sex, age
// at diagnosis, topography and morphology (ICD-O-3); treatments and dates
// or offsets complete Tier 3.
var checks = []checkQuery{
	{"duplicate-object", "warning", 0, "the same object content is stored under more than one SOP Instance UID",
		`SELECT COUNT(*) FROM (SELECT blob_key FROM instances WHERE dataset_id = ? GROUP BY blob_key HAVING COUNT(*) > 1) x`,
		`SELECT MIN(sop_uid) FROM instances WHERE dataset_id = ? GROUP BY blob_key HAVING COUNT(*) > 1 ORDER BY 1 LIMIT ?`},
	{"series-mixed-patients", "error", 0, "a series whose instances name different patients",
		`SELECT COUNT(*) FROM (SELECT series_pk FROM instances WHERE dataset_id = ? GROUP BY series_pk HAVING COUNT(DISTINCT patient_id) > 1) x`,
		`SELECT se.series_uid FROM series se WHERE se.pk IN (SELECT series_pk FROM instances WHERE dataset_id = ? GROUP BY series_pk HAVING COUNT(DISTINCT patient_id) > 1) ORDER BY 1 LIMIT ?`},
	{"series-mixed-studies", "error", 0, "a series whose instances name a study other than the series' own",
		`SELECT COUNT(DISTINCT i.series_pk) FROM instances i JOIN series se ON se.pk = i.series_pk JOIN studies st ON st.pk = se.study_pk WHERE i.dataset_id = ? AND i.study_uid <> st.study_uid`,
		`SELECT DISTINCT se.series_uid FROM instances i JOIN series se ON se.pk = i.series_pk JOIN studies st ON st.pk = se.study_pk WHERE i.dataset_id = ? AND i.study_uid <> st.study_uid ORDER BY 1 LIMIT ?`},
	{"study-mixed-patients", "error", 0, "a study whose instances name different patients",
		`SELECT COUNT(*) FROM (SELECT study_uid FROM instances WHERE dataset_id = ? GROUP BY study_uid HAVING COUNT(DISTINCT patient_id) > 1) x`,
		`SELECT study_uid FROM instances WHERE dataset_id = ? GROUP BY study_uid HAVING COUNT(DISTINCT patient_id) > 1 ORDER BY 1 LIMIT ?`},
	{"series-no-modality", "error", 1, "series without Modality",
		`SELECT COUNT(*) FROM series WHERE dataset_id = ? AND modality = ''`,
		`SELECT series_uid FROM series WHERE dataset_id = ? AND modality = '' ORDER BY 1 LIMIT ?`},
	{"series-no-body-part", "warning", 2, "series without Body Part Examined",
		`SELECT COUNT(*) FROM series WHERE dataset_id = ? AND body_part = ''`,
		`SELECT series_uid FROM series WHERE dataset_id = ? AND body_part = '' ORDER BY 1 LIMIT ?`},
	{"series-no-manufacturer", "warning", 2, "series without Manufacturer",
		`SELECT COUNT(*) FROM series WHERE dataset_id = ? AND manufacturer = ''`,
		`SELECT series_uid FROM series WHERE dataset_id = ? AND manufacturer = '' ORDER BY 1 LIMIT ?`},
	{"study-no-date", "warning", 2, "studies without a Study Date (removed by the policy, or absent)",
		`SELECT COUNT(*) FROM studies WHERE dataset_id = ? AND study_date = ''`,
		`SELECT study_uid FROM studies WHERE dataset_id = ? AND study_date = '' ORDER BY 1 LIMIT ?`},
	{"study-no-patient-age", "warning", 2, "studies without Patient's Age",
		`SELECT COUNT(*) FROM studies WHERE dataset_id = ? AND patient_age = ''`,
		`SELECT study_uid FROM studies WHERE dataset_id = ? AND patient_age = '' ORDER BY 1 LIMIT ?`},
	{"patient-no-clinical", "warning", 2, "imaged patients without clinical data (import-clinical)",
		`SELECT COUNT(*) FROM patients p WHERE p.dataset_id = ? AND NOT EXISTS (SELECT 1 FROM cdm_patient c WHERE c.dataset_id = p.dataset_id AND c.patient_id = p.patient_id)`,
		`SELECT p.patient_id FROM patients p WHERE p.dataset_id = ? AND NOT EXISTS (SELECT 1 FROM cdm_patient c WHERE c.dataset_id = p.dataset_id AND c.patient_id = p.patient_id) ORDER BY 1 LIMIT ?`},
	{"clinical-no-images", "warning", 0, "patients with clinical data but no images",
		`SELECT COUNT(*) FROM cdm_patient c WHERE c.dataset_id = ? AND NOT EXISTS (SELECT 1 FROM patients p WHERE p.dataset_id = c.dataset_id AND p.patient_id = c.patient_id)`,
		`SELECT c.patient_id FROM cdm_patient c WHERE c.dataset_id = ? AND NOT EXISTS (SELECT 1 FROM patients p WHERE p.dataset_id = c.dataset_id AND p.patient_id = c.patient_id) ORDER BY 1 LIMIT ?`},
	{"clinical-no-sex", "warning", 2, "clinical patients without birth sex",
		`SELECT COUNT(*) FROM cdm_patient WHERE dataset_id = ? AND birth_sex IN ('', 'unknown')`,
		`SELECT patient_id FROM cdm_patient WHERE dataset_id = ? AND birth_sex IN ('', 'unknown') ORDER BY 1 LIMIT ?`},
	{"clinical-no-condition", "warning", 2, "clinical patients without a cancer condition (age at diagnosis, topography, morphology)",
		`SELECT COUNT(*) FROM cdm_patient c WHERE c.dataset_id = ? AND NOT EXISTS (SELECT 1 FROM cdm_cancer_condition k WHERE k.patient_pk = c.pk AND k.age_at_diagnosis IS NOT NULL AND k.topography_code <> '' AND k.morphology_code <> '')`,
		`SELECT c.patient_id FROM cdm_patient c WHERE c.dataset_id = ? AND NOT EXISTS (SELECT 1 FROM cdm_cancer_condition k WHERE k.patient_pk = c.pk AND k.age_at_diagnosis IS NOT NULL AND k.topography_code <> '' AND k.morphology_code <> '') ORDER BY 1 LIMIT ?`},
	{"clinical-no-treatment", "warning", 3, "clinical patients without any treatment or episode record",
		`SELECT COUNT(*) FROM cdm_patient c WHERE c.dataset_id = ? AND NOT EXISTS (SELECT 1 FROM cdm_treatment t WHERE t.patient_pk = c.pk) AND NOT EXISTS (SELECT 1 FROM cdm_episode e WHERE e.patient_pk = c.pk)`,
		`SELECT c.patient_id FROM cdm_patient c WHERE c.dataset_id = ? AND NOT EXISTS (SELECT 1 FROM cdm_treatment t WHERE t.patient_pk = c.pk) AND NOT EXISTS (SELECT 1 FROM cdm_episode e WHERE e.patient_pk = c.pk) ORDER BY 1 LIMIT ?`},
	{"study-no-offset", "warning", 3, "imaging studies without an offset from diagnosis (no clinical diagnosis date, or dates removed)",
		`SELECT COUNT(*) FROM cdm_image_study WHERE dataset_id = ? AND offset_from_diagnosis_days IS NULL`,
		`SELECT study_uid FROM cdm_image_study WHERE dataset_id = ? AND offset_from_diagnosis_days IS NULL ORDER BY 1 LIMIT ?`},
}

// Check runs the data-quality checks on a dataset and returns the
// problems found (kinds with a zero count are left out), with up to
// examples UIDs or pseudonyms each. Checks tied to a tier above the
// dataset's are left out too.
func (s *Store) Check(ctx context.Context, dataset string, tier, examples int) ([]Problem, error) {
	out := []Problem{}
	for _, c := range checks {
		if c.tier > tier {
			continue
		}
		p := Problem{Kind: c.kind, Severity: c.severity, Tier: c.tier, Message: c.message}
		if err := s.db.QueryRow(ctx, c.count, dataset).Scan(&p.Count); err != nil {
			return nil, err
		}
		if p.Count == 0 {
			continue
		}
		rows, err := s.db.Query(ctx, c.list, dataset, examples)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return nil, err
			}
			p.Examples = append(p.Examples, v)
		}
		rows.Close()
		out = append(out, p)
	}
	return out, nil
}
