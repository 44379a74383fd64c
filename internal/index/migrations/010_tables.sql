-- Research tables (internal/node/tables.go): any CSV table a data holder
-- imports for a dataset beside the fixed clinical layout. The table is
-- kept encoded (internal/table) as a blob of the node's content-addressed
-- store; this row names it: its schema as JSON (columns, types, levels and
-- the patient column), its rows, the hex SHA-256 of the encoded table, and
-- the blob's key and location. A new table of the same name replaces the
-- row in one transaction once its blob is stored. updated_at is Unix
-- milliseconds.
CREATE TABLE research_tables (
	dataset_id TEXT NOT NULL REFERENCES datasets(id),
	name TEXT NOT NULL,
	schema_json TEXT NOT NULL,
	rows_ {{int64}} NOT NULL,
	digest TEXT NOT NULL,
	blob_key TEXT NOT NULL,
	blob_loc TEXT NOT NULL DEFAULT '',
	size {{int64}} NOT NULL,
	updated_at {{int64}} NOT NULL,
	PRIMARY KEY (dataset_id, name)
);
CREATE INDEX research_tables_blob ON research_tables (blob_key);
