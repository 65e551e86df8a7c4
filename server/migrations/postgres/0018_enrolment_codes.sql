-- One-time enrolment codes: the office or a lead issues one per volunteer, or one a whole team shares for a
-- number of phones (printed as QR codes); the phone enrols with it instead of a username and password. Only the
-- code's SHA-256 is kept: the code itself is shown once, on the sheet printed when it is issued.
CREATE TABLE enrolment_codes (
    id TEXT PRIMARY KEY,
    code_hash TEXT NOT NULL UNIQUE,
    -- A person's code: that person. A team's shared code: NULL, and the team below.
    user_id TEXT,
    team TEXT,
    -- How many phones it may enrol (1 for a person's code), and how many it has.
    uses BIGINT NOT NULL,
    used BIGINT NOT NULL,
    issued_by TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- The last phone enrolled with it, and when.
    used_at BIGINT,
    device_id TEXT,
    revoked_at BIGINT
);
CREATE INDEX enrolment_codes_user ON enrolment_codes (user_id);
CREATE INDEX enrolment_codes_team ON enrolment_codes (team);

-- What a device last said of itself (`POST /api/v1/devices/status`, after its syncs): its app and version, and
-- how many of its records the server had not yet confirmed. Shown to the office and its lead beside the last sync.
ALTER TABLE devices ADD COLUMN app_version TEXT;
ALTER TABLE devices ADD COLUMN unsent_hint BIGINT;
ALTER TABLE devices ADD COLUMN status_at BIGINT;
