-- The office console's people, teams and grids. A password reset ends the sessions opened before it: session
-- tokens issued in an earlier second than `sessions_valid_after` (ms) are refused. The people list reads a team's
-- members in username order, and each person's devices (active ones, last sync) by user.
ALTER TABLE users ADD COLUMN sessions_valid_after BIGINT;
CREATE INDEX users_team ON users (team, username);
CREATE INDEX devices_user ON devices (user_id);
