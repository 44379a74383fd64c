-- The hub's state: users and their sessions and API tokens, registered
-- nodes and their enrolment, the public catalogue as nodes publish it,
-- and per-user query counts for limits.

CREATE TABLE users (
	id TEXT PRIMARY KEY,
	password_hash TEXT NOT NULL,
	role TEXT NOT NULL DEFAULT 'researcher',
	created_at {{int64}} NOT NULL,
	disabled_at {{int64}}
);

CREATE TABLE sessions (
	id_hash TEXT PRIMARY KEY,
	user_id TEXT NOT NULL REFERENCES users(id),
	kind TEXT NOT NULL, -- session (browser) or token (API)
	name TEXT NOT NULL DEFAULT '',
	created_at {{int64}} NOT NULL,
	expires_at {{int64}},
	last_used_at {{int64}}
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE nodes (
	id TEXT PRIMARY KEY,
	title TEXT NOT NULL DEFAULT '',
	created_at {{int64}} NOT NULL,
	enroll_hash TEXT,
	enroll_expires_at {{int64}},
	enrolled_at {{int64}},
	public_key TEXT NOT NULL DEFAULT '',
	nats_hash TEXT NOT NULL DEFAULT '',
	version TEXT NOT NULL DEFAULT '',
	last_seen_at {{int64}},
	removed_at {{int64}}
);

CREATE TABLE catalogue (
	node_id TEXT NOT NULL REFERENCES nodes(id),
	dataset_id TEXT NOT NULL,
	summary TEXT NOT NULL,
	published_at {{int64}} NOT NULL,
	PRIMARY KEY (node_id, dataset_id)
);

CREATE TABLE query_usage (
	user_id TEXT NOT NULL,
	day TEXT NOT NULL,
	queries INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (user_id, day)
);
