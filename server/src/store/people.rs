//! Users and teams as stored (`users`, `teams`): creating them, the records logins, extractors and scopes read,
//! and disabling an account with everything it holds.

use crate::store::db::Db;
use crate::store::StoreResult;
use sqlx::{Any, Transaction};

type Tx = Transaction<'static, Any>;

/// A new user's row.
pub struct UserRow<'a> {
    pub id: &'a str,
    pub username: &'a str,
    pub password_hash: String,
    pub role: &'a str,
    pub team: Option<&'a str>,
    pub area: Option<&'a str>,
    pub created_at: i64,
}

/// Stores a new user; returns false (and stores nothing) if the username is taken.
pub async fn insert_user(db: &Db, u: UserRow<'_>) -> StoreResult<bool> {
    let result = sqlx::query(
        "INSERT INTO users (id, username, password_hash, role, team, area, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (username) DO NOTHING",
    )
    .bind(u.id)
    .bind(u.username)
    .bind(u.password_hash)
    .bind(u.role)
    .bind(u.team)
    .bind(u.area)
    .bind(u.created_at)
    .execute(&db.pool)
    .await?;
    Ok(result.rows_affected() != 0)
}

/// Whether a team of this name exists.
pub async fn team_exists(db: &Db, team: &str) -> StoreResult<bool> {
    let found: Option<(String,)> =
        sqlx::query_as("SELECT name FROM teams WHERE name = $1").bind(team).fetch_optional(&db.pool).await?;
    Ok(found.is_some())
}

/// Whether a user of this name exists.
pub async fn user_exists(db: &Db, username: &str) -> StoreResult<bool> {
    let found: Option<(String,)> =
        sqlx::query_as("SELECT id FROM users WHERE username = $1").bind(username).fetch_optional(&db.pool).await?;
    Ok(found.is_some())
}

/// Stores a new team in the caller's transaction; returns false (and stores nothing) if the name is taken.
pub async fn insert_team(tx: &mut Tx, name: &str, lead: Option<&str>, now_ms: i64) -> StoreResult<bool> {
    let inserted =
        sqlx::query("INSERT INTO teams (name, lead, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(lead)
            .bind(now_ms)
            .execute(&mut **tx)
            .await?;
    Ok(inserted.rows_affected() != 0)
}

/// Puts a user in a team unless they are in one already, in the caller's transaction.
pub async fn join_team_if_teamless(tx: &mut Tx, team: &str, username: &str) -> StoreResult<()> {
    sqlx::query("UPDATE users SET team = $1 WHERE username = $2 AND team IS NULL")
        .bind(team)
        .bind(username)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A user's stored row: id, username, password hash, role (as stored), team, when disabled.
pub type StoredUser = (String, String, String, String, Option<String>, Option<i64>);

pub async fn user_by_name(db: &Db, username: &str) -> StoreResult<Option<StoredUser>> {
    Ok(sqlx::query_as("SELECT id, username, password_hash, role, team, disabled_at FROM users WHERE username = $1")
        .bind(username)
        .fetch_optional(&db.pool)
        .await?)
}

/// A user's team as stored now. Fails if there is no such user.
pub async fn team_of(db: &Db, user_id: &str) -> StoreResult<Option<String>> {
    let (team,): (Option<String>,) =
        sqlx::query_as("SELECT team FROM users WHERE id = $1").bind(user_id).fetch_one(&db.pool).await?;
    Ok(team)
}

/// A user's role (as stored) and team. Fails if there is no such user.
pub async fn role_and_team(db: &Db, user_id: &str) -> StoreResult<(String, Option<String>)> {
    Ok(sqlx::query_as("SELECT role, team FROM users WHERE id = $1").bind(user_id).fetch_one(&db.pool).await?)
}

/// A user's area. Fails if there is no such user.
pub async fn area_of(db: &Db, user_id: &str) -> StoreResult<Option<String>> {
    let (area,): (Option<String>,) =
        sqlx::query_as("SELECT area FROM users WHERE id = $1").bind(user_id).fetch_one(&db.pool).await?;
    Ok(area)
}

/// A user's role as stored. Fails if there is no such user.
pub async fn role_of(db: &Db, user_id: &str) -> StoreResult<String> {
    let (role,): (String,) =
        sqlx::query_as("SELECT role FROM users WHERE id = $1").bind(user_id).fetch_one(&db.pool).await?;
    Ok(role)
}

/// Whether a user exists and, if so, when they were disabled (`Some(None)`: an active account).
pub async fn disabled_at(db: &Db, user_id: &str) -> StoreResult<Option<Option<i64>>> {
    let row: Option<(Option<i64>,)> =
        sqlx::query_as("SELECT disabled_at FROM users WHERE id = $1").bind(user_id).fetch_optional(&db.pool).await?;
    Ok(row.map(|(at,)| at))
}

/// Disables an account and, in the same transaction, revokes every device it enrolled and its refresh tokens.
pub async fn disable_with_devices_and_tokens(db: &Db, user_id: &str, now_ms: i64) -> StoreResult<()> {
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

/// Every member of a team who walks (volunteers and leads, not disabled): username and team.
pub async fn active_team_members(db: &Db) -> StoreResult<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT username, team FROM users WHERE team IS NOT NULL AND role IN ('volunteer', 'lead') AND disabled_at IS NULL",
    )
    .fetch_all(&db.pool)
    .await?)
}

/// Every user's team, by username.
pub async fn teams_by_username(db: &Db) -> StoreResult<Vec<(String, Option<String>)>> {
    Ok(sqlx::query_as::<_, (String, Option<String>)>("SELECT username, team FROM users").fetch_all(&db.pool).await?)
}

/// How many users there are.
pub async fn count_users(db: &Db) -> StoreResult<i64> {
    let (users,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users").fetch_one(&db.pool).await?;
    Ok(users)
}

/// What every request checks of an account, as stored now: when it was disabled, its role (as stored), its team,
/// and the time before which its session tokens no longer count (a password reset). `None`: no such user.
pub type AccountNow = (Option<i64>, String, Option<String>, Option<i64>);

pub async fn account_now(db: &Db, user_id: &str) -> StoreResult<Option<AccountNow>> {
    Ok(sqlx::query_as("SELECT disabled_at, role, team, sessions_valid_after FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(&db.pool)
        .await?)
}
