-- Campaign definitions as the office applied them, one row per version (the file's text, as applied). No row:
-- the default campaign (version 0) is in force. The newest version is in force from `applied_at` (milliseconds
-- since the epoch) on. `recounted` is set once every place whose eligibility it changed was recounted (an apply
-- interrupted before that is finished when the server starts).
CREATE TABLE campaigns (
    version BIGINT PRIMARY KEY,
    definition TEXT NOT NULL,
    applied_at BIGINT NOT NULL,
    applied_by TEXT NOT NULL,
    recounted BIGINT NOT NULL DEFAULT 0
);

-- A visit's deliveries beyond the five every visit records (their ids, comma-separated): those of later
-- campaigns (see client_core::grid::model::ALWAYS_RECORDED).
ALTER TABLE visits ADD COLUMN further_deliveries TEXT NOT NULL DEFAULT '';
