-- Hub certificates the Doorstep CA issued (times in milliseconds since the epoch). Devices refuse a hub whose
-- certificate's device the server lists as withdrawn (revoked, its account disabled, no longer a lead of the team).
CREATE TABLE hub_certificates (
    serial TEXT PRIMARY KEY,
    team TEXT NOT NULL,
    device_id TEXT NOT NULL,
    names TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    not_after BIGINT NOT NULL
);
CREATE INDEX hub_certificates_team ON hub_certificates (team, not_after);

-- The addresses and names a team's hubs hold: certified to no other team until `held_until`, so that a lead of
-- one team cannot get a certificate for the address another team's phones reach their hub at.
CREATE TABLE hub_names (
    name TEXT PRIMARY KEY,
    team TEXT NOT NULL,
    held_until BIGINT NOT NULL
);
