-- Processing jobs at the hub: each job, its state at each node, the log
-- lines and outputs the nodes released; and the tool catalogue with its
-- reviews. Times are Unix milliseconds.
CREATE TABLE jobs (
	id TEXT PRIMARY KEY,
	researcher TEXT NOT NULL,
	name TEXT NOT NULL,
	spec TEXT NOT NULL,
	tool_id TEXT NOT NULL DEFAULT '',
	cancelled {{int64}} NOT NULL DEFAULT 0,
	created_at {{int64}} NOT NULL
);
CREATE INDEX jobs_researcher ON jobs (researcher);

CREATE TABLE job_nodes (
	job_id TEXT NOT NULL REFERENCES jobs (id),
	node_id TEXT NOT NULL,
	dataset_id TEXT NOT NULL,
	permit_id TEXT NOT NULL,
	state TEXT NOT NULL,
	progress DOUBLE PRECISION NOT NULL DEFAULT -1,
	exit_code INTEGER,
	refused TEXT NOT NULL DEFAULT '',
	message TEXT NOT NULL DEFAULT '',
	seq {{int64}} NOT NULL DEFAULT 0,
	log_lines INTEGER NOT NULL DEFAULT 0,
	log_dropped INTEGER NOT NULL DEFAULT 0,
	output_bytes {{int64}} NOT NULL DEFAULT 0,
	updated_at {{int64}} NOT NULL,
	PRIMARY KEY (job_id, node_id)
);

CREATE TABLE job_logs (
	id {{id}},
	job_id TEXT NOT NULL REFERENCES jobs (id),
	node_id TEXT NOT NULL,
	line TEXT NOT NULL,
	created_at {{int64}} NOT NULL
);
CREATE INDEX job_logs_job ON job_logs (job_id, id);

CREATE TABLE job_outputs (
	job_id TEXT NOT NULL REFERENCES jobs (id),
	node_id TEXT NOT NULL,
	name TEXT NOT NULL,
	size {{int64}} NOT NULL,
	sha256 TEXT NOT NULL,
	data {{bytes}} NOT NULL,
	created_at {{int64}} NOT NULL,
	PRIMARY KEY (job_id, node_id, name)
);

CREATE TABLE job_tools (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	kind TEXT NOT NULL,
	digest TEXT NOT NULL UNIQUE,
	description TEXT NOT NULL,
	program {{bytes}},
	submitter TEXT NOT NULL,
	created_at {{int64}} NOT NULL
);

CREATE TABLE job_tool_reviews (
	tool_id TEXT NOT NULL REFERENCES job_tools (id),
	reviewer TEXT NOT NULL,
	organisation TEXT NOT NULL,
	decision TEXT NOT NULL,
	comment TEXT NOT NULL,
	created_at {{int64}} NOT NULL,
	PRIMARY KEY (tool_id, reviewer)
);
