-- Access requests, per-dataset negotiation, messages, notifications,
-- cohort snapshots and permits. Times are Unix milliseconds.
CREATE TABLE access_requests (
	id TEXT PRIMARY KEY,
	researcher TEXT NOT NULL,
	title TEXT NOT NULL,
	description TEXT NOT NULL,
	duo TEXT NOT NULL,
	query TEXT NOT NULL,
	operations TEXT NOT NULL,
	days INTEGER NOT NULL,
	state TEXT NOT NULL,
	review_message TEXT NOT NULL DEFAULT '',
	snapshot TEXT NOT NULL DEFAULT '',
	created_at {{int64}} NOT NULL,
	updated_at {{int64}} NOT NULL
);
CREATE INDEX access_requests_researcher ON access_requests (researcher);

CREATE TABLE access_datasets (
	request_id TEXT NOT NULL REFERENCES access_requests (id),
	node_id TEXT NOT NULL,
	dataset_id TEXT NOT NULL,
	state TEXT NOT NULL,
	message TEXT NOT NULL DEFAULT '',
	error TEXT NOT NULL DEFAULT '',
	since {{int64}} NOT NULL,
	reminded_at {{int64}} NOT NULL DEFAULT 0,
	escalated_at {{int64}} NOT NULL DEFAULT 0,
	PRIMARY KEY (request_id, node_id, dataset_id)
);
CREATE INDEX access_datasets_state ON access_datasets (state);

CREATE TABLE access_snapshots (
	id TEXT PRIMARY KEY,
	request_id TEXT NOT NULL REFERENCES access_requests (id),
	query TEXT NOT NULL,
	description TEXT NOT NULL,
	created_at {{int64}} NOT NULL
);

CREATE TABLE access_snapshot_parts (
	snapshot_id TEXT NOT NULL REFERENCES access_snapshots (id),
	node_id TEXT NOT NULL,
	dataset_id TEXT NOT NULL,
	digest TEXT NOT NULL,
	subjects INTEGER NOT NULL,
	studies INTEGER NOT NULL,
	floor INTEGER NOT NULL,
	created_at {{int64}} NOT NULL,
	PRIMARY KEY (snapshot_id, node_id, dataset_id)
);

CREATE TABLE access_permits (
	id TEXT PRIMARY KEY,
	request_id TEXT NOT NULL REFERENCES access_requests (id),
	researcher TEXT NOT NULL,
	node_id TEXT NOT NULL,
	dataset_id TEXT NOT NULL,
	snapshot_id TEXT NOT NULL,
	operations TEXT NOT NULL,
	expires_at {{int64}} NOT NULL,
	token TEXT NOT NULL,
	revoked_at {{int64}},
	revoked_by TEXT NOT NULL DEFAULT ''
);
CREATE INDEX access_permits_node ON access_permits (node_id);

CREATE TABLE access_messages (
	id {{id}},
	request_id TEXT NOT NULL REFERENCES access_requests (id),
	thread TEXT NOT NULL,
	author TEXT NOT NULL,
	body TEXT NOT NULL,
	created_at {{int64}} NOT NULL
);
CREATE INDEX access_messages_request ON access_messages (request_id, thread);

CREATE TABLE access_notifications (
	id {{id}},
	user_id TEXT NOT NULL,
	request_id TEXT NOT NULL,
	subject TEXT NOT NULL,
	body TEXT NOT NULL,
	created_at {{int64}} NOT NULL,
	read_at {{int64}}
);
CREATE INDEX access_notifications_user ON access_notifications (user_id);
