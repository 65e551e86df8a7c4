-- Doorstep schema (SQLite). Grid documents are the source of truth; the other tables are projections of
-- them (places, visits, indicators) or server-side records (users, teams, devices, audit).
CREATE TABLE areas (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    parent_code TEXT
);
CREATE INDEX areas_parent ON areas (parent_code);

CREATE TABLE grid_docs (
    grid_code TEXT PRIMARY KEY,
    snapshot BLOB NOT NULL,
    version BIGINT NOT NULL,
    log_count BIGINT NOT NULL,
    heads TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE grid_changes (
    grid_code TEXT NOT NULL,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (grid_code, seq)
);

CREATE TABLE places (
    place_id TEXT PRIMARY KEY,
    grid_code TEXT NOT NULL,
    village_code TEXT NOT NULL,
    town_code TEXT NOT NULL,
    kind TEXT NOT NULL,
    label TEXT NOT NULL,
    address TEXT,
    rural BIGINT NOT NULL,
    last_visit_at BIGINT,
    last_visit_id TEXT,
    last_outcome TEXT,
    excluded BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX places_grid ON places (grid_code);
CREATE INDEX places_village ON places (village_code);
CREATE INDEX places_town ON places (town_code);

CREATE TABLE place_contacts (
    place_id TEXT PRIMARY KEY,
    contact_name TEXT,
    contact_phone TEXT
);

CREATE TABLE place_indicators (
    place_id TEXT NOT NULL,
    indicator TEXT NOT NULL,
    reached_at BIGINT,
    PRIMARY KEY (place_id, indicator)
);

CREATE TABLE visits (
    visit_id TEXT PRIMARY KEY,
    place_id TEXT NOT NULL,
    grid_code TEXT NOT NULL,
    volunteer TEXT NOT NULL,
    device_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    handbook BIGINT NOT NULL,
    briefed BIGINT NOT NULL,
    poster BIGINT NOT NULL,
    banner BIGINT NOT NULL,
    led_playing BIGINT NOT NULL,
    note TEXT,
    lat DOUBLE PRECISION,
    lon DOUBLE PRECISION,
    received_at BIGINT NOT NULL
);
CREATE INDEX visits_place ON visits (place_id);
CREATE INDEX visits_volunteer ON visits (volunteer);

CREATE TABLE visit_indicators (
    visit_id TEXT NOT NULL,
    indicator TEXT NOT NULL,
    place_id TEXT NOT NULL,
    volunteer TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (visit_id, indicator)
);
CREATE INDEX visit_indicators_volunteer ON visit_indicators (volunteer, indicator);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    team TEXT,
    area TEXT,
    created_at BIGINT NOT NULL,
    disabled_at BIGINT
);

CREATE TABLE teams (
    name TEXT PRIMARY KEY,
    lead TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE assignments (
    grid_code TEXT PRIMARY KEY,
    team TEXT NOT NULL,
    assigned_at BIGINT NOT NULL
);
CREATE INDEX assignments_team ON assignments (team);

CREATE TABLE devices (
    device_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    actor TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    last_seen_at BIGINT
);

CREATE TABLE device_grids (
    device_id TEXT NOT NULL,
    grid_code TEXT NOT NULL,
    heads TEXT NOT NULL,
    last_sync_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, grid_code)
);

CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    username TEXT,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
