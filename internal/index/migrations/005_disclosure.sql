-- Disclosure control's memory (internal/disclosure): the register that
-- numbers each dataset's patients for the sets below, the sets answered
-- (as bitmaps over that numbering, with the figures given for them), and
-- what each researcher spent of their privacy budget per dataset and day.
CREATE TABLE disclosure_members (
	dataset_id TEXT NOT NULL,
	ordinal {{int64}} NOT NULL,
	member {{bytes}} NOT NULL,
	PRIMARY KEY (dataset_id, ordinal)
);
CREATE TABLE disclosure_sets (
	pk {{id}},
	dataset_id TEXT NOT NULL,
	members {{bytes}} NOT NULL,
	figures TEXT NOT NULL,
	researcher TEXT NOT NULL,
	query TEXT NOT NULL,
	population INTEGER NOT NULL,
	created_at {{int64}} NOT NULL
);
CREATE INDEX disclosure_sets_dataset ON disclosure_sets (dataset_id, pk);
CREATE TABLE disclosure_budget (
	dataset_id TEXT NOT NULL,
	researcher TEXT NOT NULL,
	day TEXT NOT NULL,
	spent DOUBLE PRECISION NOT NULL,
	PRIMARY KEY (dataset_id, researcher, day)
);
