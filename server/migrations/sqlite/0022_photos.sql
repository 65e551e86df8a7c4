-- Photo evidence. A visit references its photos by hash (in its grid document); `visit_photos` is that reference
-- as a row, so that galleries, reach and the upload's checks never load documents. `photos` is what arrived: the
-- checked file and its thumbnail in the content-addressed store (`blobs`). Times in ms.

-- How many of a visit's photos still stand (not rejected by the office): an indicator that asks for a photo is
-- reached only by a visit with one.
ALTER TABLE visits ADD COLUMN photos BIGINT NOT NULL DEFAULT 0;

CREATE TABLE visit_photos (
    visit_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    place_id TEXT NOT NULL,
    grid_code TEXT NOT NULL,
    volunteer TEXT NOT NULL,
    device_id TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    taken_at BIGINT NOT NULL,
    visited_at BIGINT NOT NULL,
    rejected_at BIGINT,
    rejected_by TEXT,
    reason TEXT,
    PRIMARY KEY (visit_id, sha256)
);
CREATE INDEX visit_photos_sha256 ON visit_photos (sha256);
CREATE INDEX visit_photos_place ON visit_photos (place_id);
-- The gallery of a grid, the newest first, a page at a time.
CREATE INDEX visit_photos_grid ON visit_photos (grid_code, visited_at, visit_id);
CREATE INDEX visit_photos_visited ON visit_photos (visited_at, visit_id);

CREATE TABLE photos (
    sha256 TEXT PRIMARY KEY,
    -- The file kept (metadata stripped: another hash when something was stripped) and its thumbnail.
    stored_sha256 TEXT NOT NULL,
    thumbnail_sha256 TEXT NOT NULL,
    media_type TEXT NOT NULL,
    width BIGINT NOT NULL,
    height BIGINT NOT NULL,
    size BIGINT NOT NULL,
    stripped TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    uploaded_by TEXT NOT NULL,
    device_id TEXT,
    -- Its files deleted (the place it shows was rejected): the row stays, so that no phone sends it again.
    deleted_at BIGINT
);
CREATE INDEX photos_device ON photos (device_id, received_at);
