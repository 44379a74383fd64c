-- The privacy ledger of federated learning: (ε, δ) spent per researcher
-- and computation. fl_privacy_totals holds one row per researcher, the
-- row that concurrent spends lock; fl_privacy_spends the total per
-- computation; fl_privacy_events every spend. Times are Unix
-- milliseconds.
CREATE TABLE fl_privacy_totals (
	researcher TEXT PRIMARY KEY,
	epsilon DOUBLE PRECISION NOT NULL,
	updated_at {{int64}} NOT NULL
);

CREATE TABLE fl_privacy_spends (
	researcher TEXT NOT NULL,
	computation TEXT NOT NULL,
	epsilon DOUBLE PRECISION NOT NULL,
	delta DOUBLE PRECISION NOT NULL,
	updated_at {{int64}} NOT NULL,
	PRIMARY KEY (researcher, computation)
);

CREATE TABLE fl_privacy_events (
	id {{id}},
	researcher TEXT NOT NULL,
	computation TEXT NOT NULL,
	epsilon DOUBLE PRECISION NOT NULL,
	delta DOUBLE PRECISION NOT NULL,
	total_after DOUBLE PRECISION NOT NULL,
	at {{int64}} NOT NULL
);
CREATE INDEX fl_privacy_events_researcher ON fl_privacy_events (researcher, id);
