-- A grid's snapshot in a table of its own, written only when the grid is created or compacted. The row of
-- grid_docs changes at every sync that writes the grid (version, heads), and SQLite writes a changed row whole:
-- with the snapshot in it, every sync rewrote each written grid's snapshot (tens of KB a grid) whenever the
-- length of its heads changed.
CREATE TABLE grid_snapshots (
    grid_code TEXT PRIMARY KEY,
    snapshot BYTEA NOT NULL
);
INSERT INTO grid_snapshots (grid_code, snapshot) SELECT grid_code, snapshot FROM grid_docs;
ALTER TABLE grid_docs DROP COLUMN snapshot;
