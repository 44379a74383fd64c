-- Permits at the node (internal/node/permits.go): the permits it has
-- checked, with their use; the revocations it heard from the hub or made
-- itself; the permits its operator approved; the datasets whose permits
-- need that approval; and when the hub's revocation list was last heard
-- (name 'hub_heard'). Times are Unix milliseconds; an expires_at of 0 is
-- not known (a local revocation or approval of a permit not seen yet).
CREATE TABLE permits_seen (
	id TEXT PRIMARY KEY,
	researcher TEXT NOT NULL,
	node TEXT NOT NULL,
	dataset_id TEXT NOT NULL,
	snapshot TEXT NOT NULL,
	ops TEXT NOT NULL,
	expires_at {{int64}} NOT NULL,
	first_at {{int64}} NOT NULL,
	last_at {{int64}} NOT NULL,
	uses {{int64}} NOT NULL DEFAULT 0,
	refusals {{int64}} NOT NULL DEFAULT 0
);
CREATE TABLE permit_revocations (
	permit_id TEXT PRIMARY KEY,
	revoked_at {{int64}} NOT NULL,
	expires_at {{int64}} NOT NULL,
	by_whom TEXT NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	source TEXT NOT NULL
);
CREATE TABLE permit_approvals (
	permit_id TEXT PRIMARY KEY,
	approved_at {{int64}} NOT NULL
);
CREATE TABLE permit_datasets (
	dataset_id TEXT PRIMARY KEY,
	require_approval INTEGER NOT NULL,
	changed_at {{int64}} NOT NULL
);
CREATE TABLE permit_state (
	name TEXT PRIMARY KEY,
	value {{int64}} NOT NULL
);
