-- Urgent dissuasion tasks (预警劝阻). Each task is one small automerge document (task_docs) carried to the devices
-- of one team; the other tables are what the office and the reports read without loading documents.
CREATE TABLE tasks (
    task_id TEXT PRIMARY KEY,
    team TEXT NOT NULL,
    grid_code TEXT,
    village_code TEXT,
    town_code TEXT,
    place_id TEXT,
    target_label TEXT NOT NULL,
    target_address TEXT,
    target_phone TEXT,
    fraud_type TEXT NOT NULL,
    priority TEXT NOT NULL,
    instructions TEXT NOT NULL,
    deadline BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- first times reported by the devices: received on a device (签收), opened by a volunteer, first action,
    -- first time the person was reached
    received_at BIGINT,
    opened_at BIGINT,
    first_action_at BIGINT,
    reached_at BIGINT,
    -- open | done | follow_up | closed
    status TEXT NOT NULL,
    evaluation TEXT,
    evaluation_comment TEXT,
    evaluated_by TEXT,
    evaluated_at BIGINT,
    closed_at BIGINT
);
CREATE INDEX tasks_team ON tasks (team, status);
CREATE INDEX tasks_created ON tasks (created_at);

CREATE TABLE task_docs (
    task_id TEXT PRIMARY KEY,
    doc BYTEA NOT NULL,
    version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE task_signs (
    sign_id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    volunteer TEXT NOT NULL,
    device_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX task_signs_task ON task_signs (task_id);

CREATE TABLE task_outcomes (
    outcome_id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    volunteer TEXT NOT NULL,
    device_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    method TEXT NOT NULL,
    reached BIGINT NOT NULL,
    dissuaded BIGINT NOT NULL,
    money_lost BIGINT NOT NULL,
    amount_fen BIGINT,
    feedback TEXT,
    lat DOUBLE PRECISION,
    lon DOUBLE PRECISION,
    received_at BIGINT NOT NULL
);
CREATE INDEX task_outcomes_task ON task_outcomes (task_id);

CREATE TABLE task_evaluations (
    task_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    result TEXT NOT NULL,
    comment TEXT NOT NULL,
    evaluated_by TEXT NOT NULL,
    PRIMARY KEY (task_id, at)
);

-- Which devices received which task, and when each confirmed it had deleted it after closing.
CREATE TABLE device_tasks (
    device_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    heads TEXT NOT NULL,
    delivered_at BIGINT NOT NULL,
    last_sync_at BIGINT NOT NULL,
    purged_at BIGINT,
    PRIMARY KEY (device_id, task_id)
);
CREATE INDEX device_tasks_task ON device_tasks (task_id);
