-- People for access requests: a user's e-mail address and display name
-- (for notifications), where the account comes from (local, or the
-- issuer of an OpenID Connect provider), and the datasets each data
-- holder's representative speaks for ('*' for every dataset of a node).

ALTER TABLE users ADD COLUMN email TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN origin TEXT NOT NULL DEFAULT 'local';

CREATE TABLE representatives (
	user_id TEXT NOT NULL REFERENCES users(id),
	node_id TEXT NOT NULL,
	dataset_id TEXT NOT NULL, -- '*' for every dataset of the node
	created_at {{int64}} NOT NULL,
	PRIMARY KEY (user_id, node_id, dataset_id)
);
CREATE INDEX representatives_scope ON representatives (node_id, dataset_id);
