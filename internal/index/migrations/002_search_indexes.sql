-- Covering indexes for federated search: the per-patient EXISTS tests and
-- the figures read only the index. They start with the columns of the two
-- indexes they replace.
CREATE INDEX cdm_image_series_search ON cdm_image_series (dataset_id, patient_id, modality, body_part, manufacturer);
DROP INDEX cdm_image_series_patient;
CREATE INDEX cdm_condition_search ON cdm_cancer_condition (patient_pk, age_at_diagnosis, diagnosis_year, icd10_code, cancer_type);
DROP INDEX cdm_condition_patient;
