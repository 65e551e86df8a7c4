-- Server-wide settings chosen by the office (e.g. whether contact details go to devices).
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
