-- The node's own record of the jobs it was sent: who asked under which
-- permit, what ran and how it ended, and what became of each output
-- (released, held for a person, refused by the airlock). Times are Unix
-- milliseconds.
CREATE TABLE node_jobs (
	id TEXT PRIMARY KEY,
	researcher TEXT NOT NULL,
	permit_id TEXT NOT NULL,
	dataset_id TEXT NOT NULL,
	snapshot_id TEXT NOT NULL,
	kind TEXT NOT NULL,
	image TEXT NOT NULL,
	state TEXT NOT NULL,
	message TEXT NOT NULL DEFAULT '',
	exit_code INTEGER,
	created_at {{int64}} NOT NULL,
	updated_at {{int64}} NOT NULL
);

CREATE TABLE node_job_outputs (
	job_id TEXT NOT NULL REFERENCES node_jobs (id),
	name TEXT NOT NULL,
	state TEXT NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	size {{int64}} NOT NULL,
	sha256 TEXT NOT NULL,
	updated_at {{int64}} NOT NULL,
	PRIMARY KEY (job_id, name)
);
