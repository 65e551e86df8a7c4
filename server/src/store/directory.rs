//! The office console's statements over people, teams and grids: the lists (a page of users with their
//! devices, the teams with their counts, a page of grids with their village, town, team and places) and the
//! changes (a user's role, team and area; enabling; a new password that ends the sessions; a team's lead; grids
//! assigned or unassigned in bulk), each change in one transaction.
//!
//! Lists build their SQL from the filters they are given, so that each statement can use the indexes that fit
//! it (`users_team`, `assignments_team`, `areas_parent`), and page by key (`after`), never by offset.

use crate::store::db::{in_list, values_list, Db, MAX_BINDS};
use crate::store::StoreResult;
use sqlx::{Any, Transaction};
use std::collections::BTreeMap;

type Tx = Transaction<'static, Any>;

/// Which users a page holds: each filter optional; `q` is a lowercase part of the username.
#[derive(Debug, Default, Clone)]
pub struct UserFilter {
    pub team: Option<String>,
    pub role: Option<String>,
    pub q: Option<String>,
    /// Only users whose username sorts after this one (the previous page's last).
    pub after: Option<String>,
    pub limit: i64,
}

/// A user as the people list shows them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserListed {
    pub username: String,
    pub role: String,
    pub team: Option<String>,
    pub area: Option<String>,
    pub area_name: Option<String>,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
    pub active_devices: i64,
    pub last_sync_at: Option<i64>,
    pub may_publish: Option<i64>,
}

/// The WHERE clause of a user filter and its values, numbered from `$1`.
fn user_conditions(f: &UserFilter, with_cursor: bool) -> (String, Vec<String>) {
    let mut conditions = vec!["1 = 1".to_string()];
    let mut values = Vec::new();
    let mut add = |sql: &str, value: String| {
        values.push(value);
        conditions.push(sql.replace('#', &format!("${}", values.len())));
    };
    if let Some(team) = &f.team {
        add("u.team = #", team.clone());
    }
    if let Some(role) = &f.role {
        add("u.role = #", role.clone());
    }
    if let Some(q) = &f.q {
        // The part is matched as it is: LIKE's own wildcards in it are escaped.
        let escaped = q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        add("LOWER(u.username) LIKE # ESCAPE '\\'", format!("%{escaped}%"));
    }
    if with_cursor {
        if let Some(after) = &f.after {
            add("u.username > #", after.clone());
        }
    }
    (conditions.join(" AND "), values)
}

/// A page of users in username order, and how many users the filter selects in all.
pub async fn users_page(db: &Db, f: &UserFilter) -> StoreResult<(Vec<UserListed>, i64)> {
    let (conditions, values) = user_conditions(f, true);
    let sql = format!(
        "SELECT u.username, u.role, u.team, u.area, a.name AS area_name, u.created_at, u.disabled_at, u.may_publish, \
         (SELECT COUNT(*) FROM devices d WHERE d.user_id = u.id AND d.revoked_at IS NULL) AS active_devices, \
         (SELECT MAX(d.last_seen_at) FROM devices d WHERE d.user_id = u.id) AS last_sync_at \
         FROM users u LEFT JOIN areas a ON a.code = u.area WHERE {conditions} ORDER BY u.username LIMIT {}",
        f.limit
    );
    let mut query = sqlx::query_as::<_, UserListed>(sqlx::AssertSqlSafe(sql));
    for v in &values {
        query = query.bind(v);
    }
    let users = query.fetch_all(&db.pool).await?;
    let (conditions, values) = user_conditions(f, false);
    let mut count =
        sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM users u WHERE {conditions}")));
    for v in &values {
        count = count.bind(v);
    }
    let (total,) = count.fetch_one(&db.pool).await?;
    Ok((users, total))
}

/// A user's row as an edit reads it: id, role (as stored), team, area, disabled at.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserState {
    pub id: String,
    pub username: String,
    pub role: String,
    pub team: Option<String>,
    pub area: Option<String>,
    pub disabled_at: Option<i64>,
    pub may_publish: Option<i64>,
}

/// A user's row, in the caller's transaction (so that an edit checks and writes the same state).
pub async fn user_state(tx: &mut Tx, username: &str) -> StoreResult<Option<UserState>> {
    Ok(sqlx::query_as("SELECT id, username, role, team, area, disabled_at, may_publish FROM users WHERE username = $1")
        .bind(username)
        .fetch_optional(&mut **tx)
        .await?)
}

/// Lets the user publish bulletins (from `since`, ms) or no longer (`None`).
pub async fn set_may_publish(tx: &mut Tx, user_id: &str, since: Option<i64>) -> StoreResult<()> {
    sqlx::query("UPDATE users SET may_publish = $1 WHERE id = $2").bind(since).bind(user_id).execute(&mut **tx).await?;
    Ok(())
}

/// Writes a user's role, team and area.
pub async fn set_role_team_area(
    tx: &mut Tx,
    user_id: &str,
    role: &str,
    team: Option<&str>,
    area: Option<&str>,
) -> StoreResult<()> {
    sqlx::query("UPDATE users SET role = $1, team = $2, area = $3 WHERE id = $4")
        .bind(role)
        .bind(team)
        .bind(area)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The team a user is the named lead of (`teams.lead`), if any.
pub async fn team_led_by(tx: &mut Tx, username: &str) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT name FROM teams WHERE lead = $1").bind(username).fetch_all(&mut **tx).await?;
    Ok(rows.into_iter().map(|(t,)| t).collect())
}

/// A team's named lead (`teams.lead`): `None` if there is no such team.
pub async fn lead_of_team(tx: &mut Tx, team: &str) -> StoreResult<Option<Option<String>>> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT lead FROM teams WHERE name = $1").bind(team).fetch_optional(&mut **tx).await?;
    Ok(row.map(|(lead,)| lead))
}

/// Names a team's lead (or none).
pub async fn set_team_lead(tx: &mut Tx, team: &str, lead: Option<&str>) -> StoreResult<()> {
    sqlx::query("UPDATE teams SET lead = $1 WHERE name = $2").bind(lead).bind(team).execute(&mut **tx).await?;
    Ok(())
}

/// The members of a team with the lead role, other than `except`.
pub async fn other_leads_of_team(tx: &mut Tx, team: &str, except: Option<&str>) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT username FROM users WHERE team = $1 AND role = 'lead' AND username <> $2 ORDER BY username",
    )
    .bind(team)
    .bind(except.unwrap_or(""))
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|(u,)| u).collect())
}

/// Makes these members of a team volunteers (a team's former leads).
pub async fn make_volunteers(tx: &mut Tx, usernames: &[String]) -> StoreResult<()> {
    for username in usernames {
        sqlx::query("UPDATE users SET role = 'volunteer' WHERE username = $1")
            .bind(username)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Whether a team of this name exists, in the caller's transaction.
pub async fn team_exists(tx: &mut Tx, team: &str) -> StoreResult<bool> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT name FROM teams WHERE name = $1").bind(team).fetch_optional(&mut **tx).await?;
    Ok(row.is_some())
}

/// The kind of an area (town, village, community, grid), in the caller's transaction.
pub async fn area_kind(tx: &mut Tx, code: &str) -> StoreResult<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT kind FROM areas WHERE code = $1").bind(code).fetch_optional(&mut **tx).await?;
    Ok(row.map(|(k,)| k))
}

/// Lifts a disabled account's disabling; returns false if it was not disabled. Its devices stay revoked.
pub async fn enable(tx: &mut Tx, user_id: &str) -> StoreResult<bool> {
    let done = sqlx::query("UPDATE users SET disabled_at = NULL WHERE id = $1 AND disabled_at IS NOT NULL")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() != 0)
}

/// Stores a new password hash and ends the user's sessions: their refresh tokens are revoked, and session tokens
/// issued before `now_ms` stop working (`sessions_valid_after`).
pub async fn set_password_ending_sessions(tx: &mut Tx, user_id: &str, hash: &str, now_ms: i64) -> StoreResult<()> {
    sqlx::query("UPDATE users SET password_hash = $1, sessions_valid_after = $2 WHERE id = $3")
        .bind(hash)
        .bind(now_ms)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
        .bind(now_ms)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A team as the teams list shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TeamListed {
    pub name: String,
    pub lead: Option<String>,
    pub created_at: i64,
    pub members: i64,
    pub volunteers: i64,
    pub grids: i64,
}

/// Every team (or one), by name, with its lead (the named one, else its first member with the lead role), its
/// active members and volunteers, and how many grids it holds.
pub async fn teams(db: &Db, only: Option<&str>) -> StoreResult<Vec<TeamListed>> {
    Ok(sqlx::query_as(
        "SELECT t.name, COALESCE(t.lead, (SELECT MIN(u.username) FROM users u WHERE u.team = t.name \
           AND u.role = 'lead' AND u.disabled_at IS NULL)) AS lead, t.created_at, \
         (SELECT COUNT(*) FROM users u WHERE u.team = t.name AND u.disabled_at IS NULL) AS members, \
         (SELECT COUNT(*) FROM users u WHERE u.team = t.name AND u.disabled_at IS NULL AND u.role = 'volunteer') \
           AS volunteers, \
         (SELECT COUNT(*) FROM assignments a WHERE a.team = t.name) AS grids \
         FROM teams t WHERE ($1 = '' OR t.name = $1) ORDER BY t.name",
    )
    .bind(only.unwrap_or(""))
    .fetch_all(&db.pool)
    .await?)
}

/// Which grids a page holds.
#[derive(Debug, Default, Clone)]
pub struct GridFilter {
    pub village: Option<String>,
    pub team: Option<String>,
    pub unassigned: bool,
    pub after: Option<String>,
    pub limit: i64,
}

/// A grid as the grids list shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GridListed {
    pub code: String,
    pub name: String,
    pub village: Option<String>,
    pub village_name: Option<String>,
    pub town: Option<String>,
    pub town_name: Option<String>,
    pub team: Option<String>,
    pub places: i64,
}

/// The FROM and WHERE of a grid filter and its values, numbered from `$1`.
fn grid_conditions(f: &GridFilter, with_cursor: bool, unassigned: bool) -> (String, Vec<String>) {
    let mut conditions = vec!["g.kind = 'grid'".to_string()];
    let mut values = Vec::new();
    let mut add = |sql: &str, value: String| {
        values.push(value);
        conditions.push(sql.replace('#', &format!("${}", values.len())));
    };
    if let Some(village) = &f.village {
        add("g.parent_code = #", village.clone());
    }
    if let Some(team) = &f.team {
        add("a.team = #", team.clone());
    }
    if with_cursor {
        if let Some(after) = &f.after {
            add("g.code > #", after.clone());
        }
    }
    if unassigned {
        conditions.push("a.team IS NULL".into());
    }
    let from = "FROM areas g LEFT JOIN assignments a ON a.grid_code = g.code";
    (format!("{from} WHERE {}", conditions.join(" AND ")), values)
}

async fn count_grids(db: &Db, from_where: String, values: &[String]) -> StoreResult<i64> {
    let mut count = sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) {from_where}")));
    for v in values {
        count = count.bind(v);
    }
    Ok(count.fetch_one(&db.pool).await?.0)
}

/// A page of grids in code order, how many the filter selects in all, and how many of the grids it selects
/// without its team and unassigned conditions have no team. The places of the page's grids only are counted
/// (`places_grid`), so a page costs its grids' places, not the territory's.
pub async fn grids_page(db: &Db, f: &GridFilter) -> StoreResult<(Vec<GridListed>, i64, i64)> {
    let (from_where, values) = grid_conditions(f, true, f.unassigned);
    let sql = format!(
        "SELECT g.code, g.name, g.parent_code AS village, v.name AS village_name, v.parent_code AS town, \
         tw.name AS town_name, a.team, \
         (SELECT COUNT(*) FROM places p WHERE p.grid_code = g.code AND p.status NOT IN ('rejected', 'merged')) \
           AS places \
         {} ORDER BY g.code LIMIT {}",
        from_where.replacen(
            "FROM areas g",
            "FROM areas g LEFT JOIN areas v ON v.code = g.parent_code LEFT JOIN areas tw ON tw.code = v.parent_code",
            1
        ),
        f.limit
    );
    let mut query = sqlx::query_as::<_, GridListed>(sqlx::AssertSqlSafe(sql));
    for v in &values {
        query = query.bind(v);
    }
    let grids = query.fetch_all(&db.pool).await?;
    let (from_where, values) = grid_conditions(f, false, f.unassigned);
    let total = count_grids(db, from_where, &values).await?;
    let village_only = GridFilter { village: f.village.clone(), ..GridFilter::default() };
    let (from_where, values) = grid_conditions(&village_only, false, true);
    let unassigned = count_grids(db, from_where, &values).await?;
    Ok((grids, total, unassigned))
}

/// A village or community as the grids page offers it: its town, its grids and how many have no team.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VillageListed {
    pub code: String,
    pub name: String,
    pub kind: String,
    pub town: Option<String>,
    pub town_name: Option<String>,
    pub grids: i64,
    pub unassigned: i64,
}

/// Every village and community with grids (of `team` only, if given), by code.
pub async fn villages(db: &Db, team: Option<&str>) -> StoreResult<Vec<VillageListed>> {
    Ok(sqlx::query_as(
        "SELECT v.code, v.name, v.kind, v.parent_code AS town, tw.name AS town_name, \
         COUNT(g.code) AS grids, SUM(CASE WHEN a.team IS NULL THEN 1 ELSE 0 END) AS unassigned \
         FROM areas v JOIN areas g ON g.parent_code = v.code AND g.kind = 'grid' \
         LEFT JOIN assignments a ON a.grid_code = g.code LEFT JOIN areas tw ON tw.code = v.parent_code \
         WHERE ($1 = '' OR a.team = $1) \
         GROUP BY v.code, v.name, v.kind, v.parent_code, tw.name ORDER BY v.code",
    )
    .bind(team.unwrap_or(""))
    .fetch_all(&db.pool)
    .await?)
}

/// The grids of a village or community, in the caller's transaction.
pub async fn grids_of_village(tx: &mut Tx, village: &str) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT code FROM areas WHERE parent_code = $1 AND kind = 'grid' ORDER BY code")
            .bind(village)
            .fetch_all(&mut **tx)
            .await?;
    Ok(rows.into_iter().map(|(g,)| g).collect())
}

/// Of these codes, those that are grids, each with its team now (if any), in the caller's transaction.
pub async fn grids_and_teams(tx: &mut Tx, codes: &[String]) -> StoreResult<BTreeMap<String, Option<String>>> {
    let mut found = BTreeMap::new();
    for chunk in codes.chunks(MAX_BINDS) {
        let sql = format!(
            "SELECT g.code, a.team FROM areas g LEFT JOIN assignments a ON a.grid_code = g.code \
             WHERE g.kind = 'grid' AND g.code IN ({})",
            in_list(tx, chunk.len())
        );
        let mut query = sqlx::query_as::<_, (String, Option<String>)>(sqlx::AssertSqlSafe(sql));
        for code in chunk {
            query = query.bind(code);
        }
        found.extend(query.fetch_all(&mut **tx).await?);
    }
    Ok(found)
}

/// Assigns grids to a team, replacing earlier assignments, in multi-row statements; a grid already the team's
/// keeps its time.
pub async fn assign_grids(tx: &mut Tx, grids: &[String], team: &str, now_ms: i64) -> StoreResult<()> {
    const COLS: usize = 3;
    for chunk in grids.chunks(MAX_BINDS / COLS) {
        let sql = format!(
            "INSERT INTO assignments (grid_code, team, assigned_at) VALUES {} \
             ON CONFLICT (grid_code) DO UPDATE SET team = excluded.team, assigned_at = excluded.assigned_at \
             WHERE assignments.team <> excluded.team",
            values_list(tx, chunk.len(), COLS)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for grid in chunk {
            query = query.bind(grid).bind(team).bind(now_ms);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Takes a grid from its team; returns the team it had, if any.
pub async fn unassign_grid(tx: &mut Tx, grid: &str) -> StoreResult<Option<String>> {
    let team: Option<(String,)> = sqlx::query_as("SELECT team FROM assignments WHERE grid_code = $1")
        .bind(grid)
        .fetch_optional(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM assignments WHERE grid_code = $1").bind(grid).execute(&mut **tx).await?;
    Ok(team.map(|(t,)| t))
}

/// Whether there is a grid with this code, in the caller's transaction.
pub async fn grid_exists(tx: &mut Tx, code: &str) -> StoreResult<bool> {
    Ok(area_kind(tx, code).await?.as_deref() == Some("grid"))
}
