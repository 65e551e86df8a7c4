-- Device signing keys (a hub relays changes signed by them), places found in the field with the office's
-- review, and corrections of places proposed from the field.
ALTER TABLE devices ADD COLUMN public_key TEXT;

-- 'registry' (from the territory file), 'provisional' (found in the field, awaiting review), 'confirmed',
-- 'rejected' or 'merged' (into `merged_into`). Rejected and merged places have no indicator rows.
ALTER TABLE places ADD COLUMN status TEXT NOT NULL DEFAULT 'registry';
ALTER TABLE places ADD COLUMN merged_into TEXT;
ALTER TABLE places ADD COLUMN added_by TEXT;
ALTER TABLE places ADD COLUMN added_device TEXT;
ALTER TABLE places ADD COLUMN added_at BIGINT;
ALTER TABLE places ADD COLUMN lat DOUBLE PRECISION;
ALTER TABLE places ADD COLUMN lon DOUBLE PRECISION;
ALTER TABLE places ADD COLUMN reviewed_by TEXT;
ALTER TABLE places ADD COLUMN reviewed_at BIGINT;
CREATE INDEX places_status ON places (status);

-- The place a visit was recorded for, kept when a merge moves the visit to the place it duplicated.
ALTER TABLE visits ADD COLUMN recorded_place_id TEXT;

CREATE TABLE place_corrections (
    correction_id TEXT PRIMARY KEY,
    grid_code TEXT NOT NULL,
    place_id TEXT NOT NULL,
    label TEXT,
    address TEXT,
    volunteer TEXT NOT NULL,
    device_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    reviewed_by TEXT,
    reviewed_at BIGINT
);
CREATE INDEX place_corrections_status ON place_corrections (status, grid_code);
