-- OpenID Connect and the device authorization grant: the provider's
-- tokens of a browser session logged in through the provider (the
-- refresh token sealed with a key of the hub's, kept for refresh and
-- logout), and the device codes of `mosaic login`, hashed.

CREATE TABLE oidc_sessions (
	session_hash TEXT PRIMARY KEY, -- sessions.id_hash
	user_id TEXT NOT NULL REFERENCES users(id),
	subject TEXT NOT NULL,
	refresh_sealed TEXT NOT NULL DEFAULT '',
	id_token TEXT NOT NULL DEFAULT '',
	access_expires_at {{int64}} NOT NULL
);

CREATE TABLE device_codes (
	device_hash TEXT PRIMARY KEY,
	user_code_hash TEXT NOT NULL UNIQUE,
	client_id TEXT NOT NULL,
	source TEXT NOT NULL, -- the address that asked, shown at approval
	created_at {{int64}} NOT NULL,
	expires_at {{int64}} NOT NULL,
	interval_s INTEGER NOT NULL,
	polled_at {{int64}},
	status TEXT NOT NULL DEFAULT 'pending', -- pending, approved, denied, used
	user_id TEXT
);
CREATE INDEX device_codes_source ON device_codes (source);
