-- Synced documents of every further kind (campaign definitions, bulletins, ...): one row per document, kept by
-- the generic sync path (times in milliseconds since the epoch). `withdrawn_at` set: devices are told the document
-- is gone and delete it.
CREATE TABLE documents (
    kind TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    doc BYTEA NOT NULL,
    version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    withdrawn_at BIGINT,
    PRIMARY KEY (kind, doc_id)
);

-- Whom a document is meant for: a team, or '*' for every device.
CREATE TABLE document_audience (
    kind TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    team TEXT NOT NULL,
    PRIMARY KEY (kind, doc_id, team)
);
CREATE INDEX document_audience_team ON document_audience (team, kind);

-- Which device holds which document: delivered, and deleted by the device once it was gone (`purged_at`).
CREATE TABLE document_holders (
    kind TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    delivered_at BIGINT NOT NULL,
    purged_at BIGINT,
    PRIMARY KEY (device_id, kind, doc_id)
);
