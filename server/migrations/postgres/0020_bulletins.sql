-- Bulletins: what the office publishes to every volunteer's phone (the document itself is in `documents`, kind
-- 'bulletin'; these rows are what the dashboard and the reports read without loading documents). Times in ms.
CREATE TABLE bulletins (
    id TEXT PRIMARY KEY,
    edition BIGINT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    kind TEXT NOT NULL,
    fraud_type TEXT NOT NULL,
    priority TEXT NOT NULL,
    -- As the publisher chose it (JSON); the teams it resolved to are the document's audience.
    audience TEXT NOT NULL,
    expires_at BIGINT,
    published_at BIGINT NOT NULL,
    published_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    withdrawn_at BIGINT
);
CREATE INDEX bulletins_published ON bulletins (published_at);

-- A bulletin's attachments, in order (its current edition's).
CREATE TABLE bulletin_attachments (
    bulletin_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    PRIMARY KEY (bulletin_id, position)
);
CREATE INDEX bulletin_attachments_blob ON bulletin_attachments (sha256);

-- The content-addressed store's index: each file once, named by the SHA-256 of its bytes (the bytes are files in
-- the data directory's `blobs/`).
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    stored_at BIGINT NOT NULL,
    stored_by TEXT NOT NULL
);

-- What devices wrote into documents of further kinds, as the server accepted it (a bulletin's read receipts):
-- one row per entry, never rewritten.
CREATE TABLE document_entries (
    kind TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    entry TEXT NOT NULL,
    device_id TEXT NOT NULL,
    username TEXT NOT NULL,
    team TEXT,
    at BIGINT NOT NULL,
    detail TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (kind, doc_id, entry)
);
CREATE INDEX document_entries_user ON document_entries (kind, doc_id, username);

-- Set (when) the office lets this account publish bulletins (the police station's, say); the office always may.
ALTER TABLE users ADD COLUMN may_publish BIGINT;

-- Each document's heads (hex, sorted, comma-separated) beside it, so that a sync whose device holds every document
-- at the server's heads is told so without loading any (NULL: written before; the document is loaded instead).
ALTER TABLE documents ADD COLUMN heads TEXT;
