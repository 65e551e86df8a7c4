//! Enrolled devices as stored (`devices`): enrolment, the records the extractors and the roster read, listing
//! and revocation.

use crate::store::db::Db;
use crate::store::StoreResult;
use sqlx::{Any, AnyConnection, Transaction};

type Tx = Transaction<'static, Any>;

/// A device as listed: device id, username, the user's team, name, enrolled, last seen and revoked (ms), and
/// what it last said of itself: app version, records unsent, when.
pub type DeviceRow =
    (String, String, Option<String>, String, i64, Option<i64>, Option<i64>, Option<String>, Option<i64>, Option<i64>);

/// Devices of everyone (`team` is empty) or of one team's members, oldest enrolment first.
pub async fn list(db: &Db, team: &str) -> StoreResult<Vec<DeviceRow>> {
    Ok(sqlx::query_as(
        "SELECT d.device_id, u.username, u.team, d.name, d.created_at, d.last_seen_at, d.revoked_at, \
         d.app_version, d.unsent_hint, d.status_at \
         FROM devices d JOIN users u ON u.id = d.user_id WHERE ($1 = '' OR u.team = $1) ORDER BY d.created_at",
    )
    .bind(team)
    .fetch_all(&db.pool)
    .await?)
}

/// The current team of a device's owner: `None` if there is no such device, `Some(None)` if its owner is in no
/// team.
pub async fn owner_team(db: &Db, device_id: &str) -> StoreResult<Option<Option<String>>> {
    let owner: Option<(Option<String>,)> =
        sqlx::query_as("SELECT u.team FROM devices d JOIN users u ON u.id = d.user_id WHERE d.device_id = $1")
            .bind(device_id)
            .fetch_optional(&db.pool)
            .await?;
    Ok(owner.map(|(team,)| team))
}

/// Revokes a device; an already revoked one keeps its time.
pub async fn revoke(db: &Db, device_id: &str, now_ms: i64) -> StoreResult<()> {
    sqlx::query("UPDATE devices SET revoked_at = $1 WHERE device_id = $2 AND revoked_at IS NULL")
        .bind(now_ms)
        .bind(device_id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Stores a newly enrolled device with its actor (hex) and public key (hex), if any, in the caller's transaction.
pub async fn insert(
    tx: &mut Tx,
    device_id: &str,
    user_id: &str,
    actor: &str,
    name: &str,
    now_ms: i64,
    public_key: Option<String>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO devices (device_id, user_id, actor, name, created_at, public_key) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(device_id)
    .bind(user_id)
    .bind(actor)
    .bind(name)
    .bind(now_ms)
    .bind(public_key)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A user's enrolled device: its actor (hex) and when it was revoked, if it was.
pub async fn actor_and_revocation(
    db: &Db,
    device_id: &str,
    user_id: &str,
) -> StoreResult<Option<(String, Option<i64>)>> {
    Ok(sqlx::query_as("SELECT actor, revoked_at FROM devices WHERE device_id = $1 AND user_id = $2")
        .bind(device_id)
        .bind(user_id)
        .fetch_optional(&db.pool)
        .await?)
}

/// A team's devices that can sign changes, oldest enrolment first: device id, username, actor (hex), public
/// key (hex), when the device was revoked and when its user was disabled.
pub type TeamDevice = (String, String, String, String, Option<i64>, Option<i64>);

pub async fn signing_devices_of_team(db: &Db, team: &str) -> StoreResult<Vec<TeamDevice>> {
    Ok(sqlx::query_as(
        "SELECT d.device_id, u.username, d.actor, d.public_key, d.revoked_at, u.disabled_at \
         FROM devices d JOIN users u ON u.id = d.user_id \
         WHERE u.team = $1 AND d.public_key IS NOT NULL ORDER BY d.created_at",
    )
    .bind(team)
    .fetch_all(&db.pool)
    .await?)
}

/// A team's device that can sign the changes a team-mate relays: device id, actor (hex), public key (hex),
/// username, when the device was revoked and when its user was disabled.
pub type RelaySigner = (String, String, String, String, Option<i64>, Option<i64>);

/// Every device of `team` that registered a signing key.
pub async fn relay_signers_of_team(conn: &mut AnyConnection, team: &str) -> StoreResult<Vec<RelaySigner>> {
    Ok(sqlx::query_as(
        "SELECT d.device_id, d.actor, d.public_key, u.username, d.revoked_at, u.disabled_at \
         FROM devices d JOIN users u ON u.id = d.user_id WHERE u.team = $1 AND d.public_key IS NOT NULL",
    )
    .bind(team)
    .fetch_all(&mut *conn)
    .await?)
}

/// The team of a device's user and when the device last synced (ms).
pub async fn team_and_last_seen(
    conn: &mut AnyConnection,
    user_id: &str,
    device_id: &str,
) -> StoreResult<(Option<String>, Option<i64>)> {
    Ok(sqlx::query_as(
        "SELECT u.team, d.last_seen_at FROM users u JOIN devices d ON d.user_id = u.id \
         WHERE u.id = $1 AND d.device_id = $2",
    )
    .bind(user_id)
    .bind(device_id)
    .fetch_one(&mut *conn)
    .await?)
}

/// Records when the device last synced.
pub async fn note_seen(tx: &mut Tx, device_id: &str, now: i64) -> StoreResult<()> {
    sqlx::query("UPDATE devices SET last_seen_at = $1 WHERE device_id = $2")
        .bind(now)
        .bind(device_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Stores what a device said of itself: its app and version, and how many records it holds unconfirmed.
pub async fn note_status(db: &Db, device_id: &str, app_version: &str, unsent: i64, now_ms: i64) -> StoreResult<()> {
    sqlx::query("UPDATE devices SET app_version = $1, unsent_hint = $2, status_at = $3 WHERE device_id = $4")
        .bind(app_version)
        .bind(unsent)
        .bind(now_ms)
        .bind(device_id)
        .execute(&db.pool)
        .await?;
    Ok(())
}
