-- Cohort snapshots (docs/access.md): what an access request's query
-- selected in one dataset when the dataset was made available. A snapshot
-- is named by the hub's id, shared by every dataset of one request, so the
-- key is (id, dataset_id). Members are the studies of the matching
-- patients at that moment; last_instance_pk is the highest instance row
-- then, so that objects stored later in a member study stay outside.
-- Members are found by study row (study_pk) when searches are scoped.
-- Nothing here changes after the snapshot is made.
CREATE TABLE snapshots (
	id TEXT NOT NULL,
	dataset_id TEXT NOT NULL,
	request TEXT NOT NULL DEFAULT '',
	query TEXT NOT NULL,
	created_at {{int64}} NOT NULL,
	digest TEXT NOT NULL DEFAULT '',
	subjects INTEGER NOT NULL DEFAULT 0,
	studies INTEGER NOT NULL DEFAULT 0,
	last_instance_pk {{int64}} NOT NULL DEFAULT 0,
	PRIMARY KEY (id, dataset_id)
);
CREATE TABLE snapshot_members (
	snapshot_id TEXT NOT NULL,
	dataset_id TEXT NOT NULL,
	study_pk {{int64}} NOT NULL,
	patient_id TEXT NOT NULL,
	study_uid TEXT NOT NULL,
	PRIMARY KEY (snapshot_id, dataset_id, study_pk),
	UNIQUE (snapshot_id, dataset_id, study_uid)
);
