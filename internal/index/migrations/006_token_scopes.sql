-- Scopes of the node's API tokens: a level (read: QIDO-RS, WADO-RS and
-- listing; write: also STOW-RS; admin: also datasets and tokens) and the
-- dataset the token is for ('' for every dataset). Tokens made before
-- scopes existed could do everything and keep doing so: admin on every
-- dataset.
ALTER TABLE tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE tokens ADD COLUMN dataset_id TEXT NOT NULL DEFAULT '';
