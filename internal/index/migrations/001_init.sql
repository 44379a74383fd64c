-- The node's index: datasets, admin tokens, the DICOM
-- patient/study/series/instance hierarchy that QIDO-RS searches and WADO-RS
-- retrieves from, and the common data model (CDM) tables modelled on
-- EUCAIM's. Every value here has passed the de-identification door.

CREATE TABLE datasets (
	id TEXT PRIMARY KEY,
	title TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	licence TEXT NOT NULL DEFAULT '',
	contact TEXT NOT NULL DEFAULT '',
	access_rights TEXT NOT NULL DEFAULT 'RESTRICTED',
	tier INTEGER NOT NULL DEFAULT 1,
	created_at {{int64}} NOT NULL,
	updated_at {{int64}} NOT NULL,
	changed_at {{int64}} NOT NULL
);

CREATE TABLE tokens (
	id TEXT PRIMARY KEY,
	hash TEXT NOT NULL UNIQUE,
	name TEXT NOT NULL DEFAULT '',
	created_at {{int64}} NOT NULL,
	last_used_at {{int64}},
	revoked_at {{int64}}
);

CREATE TABLE patients (
	pk {{id}},
	dataset_id TEXT NOT NULL REFERENCES datasets(id),
	patient_id TEXT NOT NULL,
	patient_name TEXT NOT NULL DEFAULT '',
	birth_date TEXT NOT NULL DEFAULT '',
	sex TEXT NOT NULL DEFAULT '',
	UNIQUE (dataset_id, patient_id)
);

CREATE TABLE studies (
	pk {{id}},
	dataset_id TEXT NOT NULL REFERENCES datasets(id),
	patient_pk {{int64}} NOT NULL REFERENCES patients(pk),
	study_uid TEXT NOT NULL,
	study_date TEXT NOT NULL DEFAULT '',
	study_time TEXT NOT NULL DEFAULT '',
	accession_number TEXT NOT NULL DEFAULT '',
	study_id TEXT NOT NULL DEFAULT '',
	study_description TEXT NOT NULL DEFAULT '',
	referring_physician TEXT NOT NULL DEFAULT '',
	patient_age TEXT NOT NULL DEFAULT '',
	modalities TEXT NOT NULL DEFAULT '',
	num_series INTEGER NOT NULL DEFAULT 0,
	num_instances INTEGER NOT NULL DEFAULT 0,
	first_instance_pk {{int64}},
	UNIQUE (dataset_id, study_uid)
);
CREATE INDEX studies_date ON studies (dataset_id, study_date);
CREATE INDEX studies_patient ON studies (patient_pk);

CREATE TABLE series (
	pk {{id}},
	dataset_id TEXT NOT NULL REFERENCES datasets(id),
	study_pk {{int64}} NOT NULL REFERENCES studies(pk),
	series_uid TEXT NOT NULL,
	modality TEXT NOT NULL DEFAULT '',
	series_number INTEGER,
	series_description TEXT NOT NULL DEFAULT '',
	body_part TEXT NOT NULL DEFAULT '',
	manufacturer TEXT NOT NULL DEFAULT '',
	model_name TEXT NOT NULL DEFAULT '',
	series_date TEXT NOT NULL DEFAULT '',
	pps_start_date TEXT NOT NULL DEFAULT '',
	pps_start_time TEXT NOT NULL DEFAULT '',
	num_instances INTEGER NOT NULL DEFAULT 0,
	first_instance_pk {{int64}},
	UNIQUE (dataset_id, series_uid)
);
CREATE INDEX series_study ON series (study_pk);
CREATE INDEX series_modality ON series (dataset_id, modality);

CREATE TABLE instances (
	pk {{id}},
	dataset_id TEXT NOT NULL REFERENCES datasets(id),
	series_pk {{int64}} NOT NULL REFERENCES series(pk),
	sop_uid TEXT NOT NULL,
	sop_class_uid TEXT NOT NULL DEFAULT '',
	instance_number INTEGER,
	transfer_syntax TEXT NOT NULL DEFAULT '',
	rows_ INTEGER NOT NULL DEFAULT 0,
	columns_ INTEGER NOT NULL DEFAULT 0,
	frames INTEGER NOT NULL DEFAULT 0,
	bits_allocated INTEGER NOT NULL DEFAULT 0,
	samples_per_pixel INTEGER NOT NULL DEFAULT 0,
	blob_key TEXT NOT NULL,
	size {{int64}} NOT NULL,
	pixel_offset {{int64}} NOT NULL DEFAULT -1,
	pixel_length {{int64}} NOT NULL DEFAULT -1,
	patient_id TEXT NOT NULL DEFAULT '',
	study_uid TEXT NOT NULL DEFAULT '',
	meta {{bytes}},
	ingested_at {{int64}} NOT NULL,
	UNIQUE (dataset_id, sop_uid)
);
CREATE INDEX instances_series ON instances (series_pk, instance_number);
CREATE INDEX instances_blob ON instances (blob_key);

-- CDM, modelled on EUCAIM's eucaim_cdm_output schema. patient_id is the
-- pseudonym the node's key gives, the same the images carry.
CREATE TABLE cdm_patient (
	pk {{id}},
	dataset_id TEXT NOT NULL REFERENCES datasets(id),
	patient_id TEXT NOT NULL,
	birth_sex TEXT NOT NULL DEFAULT '',
	deceased INTEGER,
	cause_of_death TEXT NOT NULL DEFAULT '',
	last_contact_offset_days INTEGER,
	UNIQUE (dataset_id, patient_id)
);

CREATE TABLE cdm_cancer_condition (
	pk {{id}},
	patient_pk {{int64}} NOT NULL REFERENCES cdm_patient(pk) ON DELETE CASCADE,
	cancer_type TEXT NOT NULL DEFAULT '',
	age_at_diagnosis INTEGER,
	diagnosis_date TEXT NOT NULL DEFAULT '',
	diagnosis_year INTEGER,
	icd10_code TEXT NOT NULL DEFAULT '',
	topography_code TEXT NOT NULL DEFAULT '',
	morphology_code TEXT NOT NULL DEFAULT '',
	laterality TEXT NOT NULL DEFAULT '',
	tumor_size_mm INTEGER
);
CREATE INDEX cdm_condition_patient ON cdm_cancer_condition (patient_pk);

CREATE TABLE cdm_cancer_stage (
	pk {{id}},
	condition_pk {{int64}} NOT NULL REFERENCES cdm_cancer_condition(pk) ON DELETE CASCADE,
	stage_code TEXT NOT NULL,
	stage_value TEXT NOT NULL,
	scoring_system TEXT NOT NULL DEFAULT ''
);
CREATE INDEX cdm_stage_condition ON cdm_cancer_stage (condition_pk);

CREATE TABLE cdm_episode (
	pk {{id}},
	patient_pk {{int64}} NOT NULL REFERENCES cdm_patient(pk) ON DELETE CASCADE,
	episode_type TEXT NOT NULL,
	offset_days INTEGER
);
CREATE INDEX cdm_episode_patient ON cdm_episode (patient_pk);

CREATE TABLE cdm_treatment (
	pk {{id}},
	patient_pk {{int64}} NOT NULL REFERENCES cdm_patient(pk) ON DELETE CASCADE,
	treatment_type TEXT NOT NULL,
	intent TEXT NOT NULL DEFAULT '',
	offset_days INTEGER
);
CREATE INDEX cdm_treatment_patient ON cdm_treatment (patient_pk);

-- image_study and image_series are the CDM's imaging tables, one row per
-- indexed study and series; offsets from diagnosis are filled in when the
-- patient's clinical data is known.
CREATE TABLE cdm_image_study (
	study_pk {{int64}} PRIMARY KEY REFERENCES studies(pk),
	dataset_id TEXT NOT NULL,
	patient_id TEXT NOT NULL,
	study_uid TEXT NOT NULL,
	study_date TEXT NOT NULL DEFAULT '',
	offset_from_diagnosis_days INTEGER
);
CREATE INDEX cdm_image_study_patient ON cdm_image_study (dataset_id, patient_id);

CREATE TABLE cdm_image_series (
	series_pk {{int64}} PRIMARY KEY REFERENCES series(pk),
	study_pk {{int64}} NOT NULL,
	dataset_id TEXT NOT NULL,
	patient_id TEXT NOT NULL,
	series_uid TEXT NOT NULL,
	modality TEXT NOT NULL DEFAULT '',
	body_part TEXT NOT NULL DEFAULT '',
	manufacturer TEXT NOT NULL DEFAULT '',
	series_description TEXT NOT NULL DEFAULT '',
	acquisition_date TEXT NOT NULL DEFAULT ''
);
CREATE INDEX cdm_image_series_patient ON cdm_image_series (dataset_id, patient_id);
