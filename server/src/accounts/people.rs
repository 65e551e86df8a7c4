//! Users, teams, grid assignments and device enrolment: the organisation behind the field work.

use crate::accounts::tokens::{check_password_rules, hash_password, Role};
use crate::http::error::ApiError;
use crate::store::db::{now_ms, Db};
use crate::store::StoreResult;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub role: Role,
    #[serde(default)]
    pub team: Option<String>,
    /// For viewers: the area (and its subtree) they may read.
    #[serde(default)]
    pub area: Option<String>,
}

/// Usernames are short identifiers: they appear in reports, files and URLs.
pub fn check_name(what: &str, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!("{what} {name:?} is not valid: use 1-64 letters, digits, '-', '_' or '.'")))
    }
}

pub async fn create_user(db: &Db, u: NewUser) -> Result<String, ApiError> {
    check_name("username", &u.username)?;
    check_password_rules(&u.password).map_err(ApiError::bad_request)?;
    if let Some(team) = &u.team {
        team_must_exist(db, team).await?;
    }
    if let Some(area) = &u.area {
        let found: Option<(String,)> =
            sqlx::query_as("SELECT code FROM areas WHERE code = $1").bind(area).fetch_optional(&db.pool).await?;
        if found.is_none() {
            return Err(ApiError::not_found(format!("no area with code {area:?}; import the territory first")));
        }
    }
    let hash = hash_password(u.password).await.map_err(ApiError::internal)?;
    let id = uuid::Uuid::now_v7().to_string();
    let result = sqlx::query(
        "INSERT INTO users (id, username, password_hash, role, team, area, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (username) DO NOTHING",
    )
    .bind(&id)
    .bind(&u.username)
    .bind(hash)
    .bind(u.role.as_str())
    .bind(&u.team)
    .bind(&u.area)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    if result.rows_affected() == 0 {
        return Err(ApiError::conflict(format!("user {:?} already exists", u.username)));
    }
    Ok(id)
}

pub async fn team_must_exist(db: &Db, team: &str) -> Result<(), ApiError> {
    let found: Option<(String,)> =
        sqlx::query_as("SELECT name FROM teams WHERE name = $1").bind(team).fetch_optional(&db.pool).await?;
    found
        .map(|_| ())
        .ok_or_else(|| ApiError::not_found(format!("no team named {team:?}; create it with `doorstep team create`")))
}

pub async fn create_team(db: &Db, name: &str, lead: Option<&str>) -> Result<(), ApiError> {
    check_name("team name", name)?;
    if let Some(lead) = lead {
        let found: Option<(String,)> =
            sqlx::query_as("SELECT id FROM users WHERE username = $1").bind(lead).fetch_optional(&db.pool).await?;
        if found.is_none() {
            return Err(ApiError::not_found(format!("no user named {lead:?}")));
        }
    }
    let (_gate, mut tx) = db.begin_write().await?;
    let inserted =
        sqlx::query("INSERT INTO teams (name, lead, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(lead)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
    if inserted.rows_affected() == 0 {
        return Err(ApiError::conflict(format!("team {name:?} already exists")));
    }
    if let Some(lead) = lead {
        // The lead joins the team unless already in another one.
        sqlx::query("UPDATE users SET team = $1 WHERE username = $2 AND team IS NULL")
            .bind(name)
            .bind(lead)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn assign_grid(db: &Db, grid: &str, team: &str) -> Result<(), ApiError> {
    team_must_exist(db, team).await?;
    let found: Option<(String,)> = sqlx::query_as("SELECT code FROM areas WHERE code = $1 AND kind = 'grid'")
        .bind(grid)
        .fetch_optional(&db.pool)
        .await?;
    if found.is_none() {
        return Err(ApiError::not_found(format!("no grid with code {grid:?}; import the territory first")));
    }
    sqlx::query(
        "INSERT INTO assignments (grid_code, team, assigned_at) VALUES ($1, $2, $3) \
         ON CONFLICT (grid_code) DO UPDATE SET team = excluded.team, assigned_at = excluded.assigned_at",
    )
    .bind(grid)
    .bind(team)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// A user's stored record, for logins.
pub struct UserRecord {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub role: Role,
    pub team: Option<String>,
    pub disabled: bool,
}

pub async fn find_user(db: &Db, username: &str) -> Result<Option<UserRecord>, ApiError> {
    type Row = (String, String, String, String, Option<String>, Option<i64>);
    let row: Option<Row> =
        sqlx::query_as("SELECT id, username, password_hash, role, team, disabled_at FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&db.pool)
            .await?;
    row.map(|(id, username, password_hash, role, team, disabled)| {
        Ok(UserRecord {
            id,
            username,
            password_hash,
            role: role.parse().map_err(ApiError::internal)?,
            team,
            disabled: disabled.is_some(),
        })
    })
    .transpose()
}

/// Registers a device and gives it a fresh automerge actor id, returned as hex. `public_key` verifies the
/// signatures of the changes it writes (devices enrolled without one cannot sync through a hub).
pub async fn enrol_device(
    db: &Db,
    user_id: &str,
    name: &str,
    public_key: Option<&client_core::sign::PublicKey>,
) -> Result<(String, String), ApiError> {
    let device_id = uuid::Uuid::now_v7().to_string();
    let actor = automerge::ActorId::from(uuid::Uuid::new_v4().as_bytes().as_slice()).to_hex_string();
    sqlx::query(
        "INSERT INTO devices (device_id, user_id, actor, name, created_at, public_key) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&device_id)
    .bind(user_id)
    .bind(&actor)
    .bind(name)
    .bind(now_ms())
    .bind(public_key.map(|k| k.to_hex()))
    .execute(&db.pool)
    .await?;
    Ok((device_id, actor))
}

/// A user's team as stored now (it may have changed since their token was issued). Fails if there is no such user.
pub async fn team_of(db: &Db, user_id: &str) -> Result<Option<String>, sqlx::Error> {
    let (team,): (Option<String>,) =
        sqlx::query_as("SELECT team FROM users WHERE id = $1").bind(user_id).fetch_one(&db.pool).await?;
    Ok(team)
}

/// A user's role (as stored) and team, as they are now. Fails if there is no such user.
pub async fn role_and_team(db: &Db, user_id: &str) -> Result<(String, Option<String>), sqlx::Error> {
    sqlx::query_as("SELECT role, team FROM users WHERE id = $1").bind(user_id).fetch_one(&db.pool).await
}

/// A user's area (viewers read only it and what lies below it). Fails if there is no such user.
pub async fn area_of(db: &Db, user_id: &str) -> Result<Option<String>, sqlx::Error> {
    let (area,): (Option<String>,) =
        sqlx::query_as("SELECT area FROM users WHERE id = $1").bind(user_id).fetch_one(&db.pool).await?;
    Ok(area)
}

/// The area an area lies in, if any (none for a town, or an unknown code).
pub async fn parent_area(db: &Db, code: &str) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT parent_code FROM areas WHERE code = $1").bind(code).fetch_optional(&db.pool).await?;
    Ok(row.and_then(|(p,)| p))
}

/// A user's role as stored now. Fails if there is no such user.
pub async fn role_of(db: &Db, user_id: &str) -> Result<String, sqlx::Error> {
    let (role,): (String,) =
        sqlx::query_as("SELECT role FROM users WHERE id = $1").bind(user_id).fetch_one(&db.pool).await?;
    Ok(role)
}

/// Whether a user exists and, if so, when they were disabled (`Some(None)`: an active account).
pub async fn disabled_at(db: &Db, user_id: &str) -> Result<Option<Option<i64>>, sqlx::Error> {
    let row: Option<(Option<i64>,)> =
        sqlx::query_as("SELECT disabled_at FROM users WHERE id = $1").bind(user_id).fetch_optional(&db.pool).await?;
    Ok(row.map(|(at,)| at))
}

/// A user's enrolled device: its actor (hex) and when it was revoked, if it was.
pub async fn device_of(db: &Db, device_id: &str, user_id: &str) -> Result<Option<(String, Option<i64>)>, sqlx::Error> {
    sqlx::query_as("SELECT actor, revoked_at FROM devices WHERE device_id = $1 AND user_id = $2")
        .bind(device_id)
        .bind(user_id)
        .fetch_optional(&db.pool)
        .await
}

/// A team's devices that can sign changes, oldest enrolment first: device id, username, actor (hex), public
/// key (hex), when the device was revoked and when its user was disabled.
pub type TeamDevice = (String, String, String, String, Option<i64>, Option<i64>);

pub async fn team_devices(db: &Db, team: &str) -> Result<Vec<TeamDevice>, sqlx::Error> {
    sqlx::query_as(
        "SELECT d.device_id, u.username, d.actor, d.public_key, d.revoked_at, u.disabled_at \
         FROM devices d JOIN users u ON u.id = d.user_id \
         WHERE u.team = $1 AND d.public_key IS NOT NULL ORDER BY d.created_at",
    )
    .bind(team)
    .fetch_all(&db.pool)
    .await
}

/// Disables an account and, in the same transaction, revokes every device it enrolled and its refresh tokens,
/// so that no part of its access outlives the others.
pub async fn disable_user(db: &Db, user_id: &str, now_ms: i64) -> StoreResult<()> {
    let (_gate, mut tx) = db.begin_write().await?;
    for sql in [
        "UPDATE users SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL",
        "UPDATE devices SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
    ] {
        sqlx::query(sql).bind(now_ms).bind(user_id).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}
