-- What the node records of a permit id is bound to the permit's content
-- (internal/node/permits.go): digest is the hex SHA-256 of the canonical
-- claims first seen under the id ('' for rows from before this migration,
-- bound at the id's next check); a permit signed later under the same id
-- with other claims is refused and counted in conflicts (last_conflict_at
-- in Unix milliseconds, 0 for none). An approval names the content it
-- approves ('' for approvals from before this migration: they approve the
-- content bound to the id).
ALTER TABLE permits_seen ADD COLUMN digest TEXT NOT NULL DEFAULT '';
ALTER TABLE permits_seen ADD COLUMN conflicts {{int64}} NOT NULL DEFAULT 0;
ALTER TABLE permits_seen ADD COLUMN last_conflict_at {{int64}} NOT NULL DEFAULT 0;
ALTER TABLE permit_approvals ADD COLUMN digest TEXT NOT NULL DEFAULT '';
