-- Datasets each node holds back from the catalogue until their checks
-- pass, with the reasons (JSON list of strings), as the node last said.
-- Only administrators see them; the public catalogue never does.

CREATE TABLE held_back (
	node_id TEXT NOT NULL REFERENCES nodes(id),
	dataset_id TEXT NOT NULL,
	title TEXT NOT NULL,
	tier INTEGER NOT NULL,
	reasons TEXT NOT NULL,
	reported_at {{int64}} NOT NULL,
	PRIMARY KEY (node_id, dataset_id)
);
