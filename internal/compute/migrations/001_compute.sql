-- Federated computations at the hub: analyses, learning runs and
-- validations, their requests and results (aggregates only), and a
-- learning run's latest global weights. Times are Unix milliseconds.
CREATE TABLE compute_runs (
	id TEXT PRIMARY KEY,
	kind TEXT NOT NULL,
	researcher TEXT NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	state TEXT NOT NULL,
	request TEXT NOT NULL,
	result TEXT NOT NULL DEFAULT '',
	error TEXT NOT NULL DEFAULT '',
	weights {{bytes}},
	created_at {{int64}} NOT NULL,
	updated_at {{int64}} NOT NULL
);
CREATE INDEX compute_runs_researcher ON compute_runs (researcher, created_at);
