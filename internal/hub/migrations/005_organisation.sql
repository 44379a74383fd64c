-- The organisation a user belongs to: a tool of the catalogue needs
-- approvals by people of different organisations.
ALTER TABLE users ADD COLUMN organisation TEXT NOT NULL DEFAULT '';
