//! Enrolled devices: listing them, whose team a device belongs to, and revoking one.

use crate::store::db::Db;
use crate::store::StoreResult;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug)]
pub struct DeviceInfo {
    pub device_id: String,
    pub username: String,
    pub team: Option<String>,
    pub name: String,
    pub created_at: i64,
    pub last_seen_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

type DeviceRow = (String, String, Option<String>, String, i64, Option<i64>, Option<i64>);

/// Devices of everyone (`team` is `None`) or of one team's members, oldest enrolment first.
pub async fn list_devices(db: &Db, team: Option<&str>) -> StoreResult<Vec<DeviceInfo>> {
    // The empty string stands for "every team" in the statement.
    let rows: Vec<DeviceRow> = sqlx::query_as(
        "SELECT d.device_id, u.username, u.team, d.name, d.created_at, d.last_seen_at, d.revoked_at \
         FROM devices d JOIN users u ON u.id = d.user_id WHERE ($1 = '' OR u.team = $1) ORDER BY d.created_at",
    )
    .bind(team.unwrap_or(""))
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(device_id, username, team, name, created_at, last_seen_at, revoked_at)| DeviceInfo {
            device_id,
            username,
            team,
            name,
            created_at,
            last_seen_at,
            revoked_at,
        })
        .collect())
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

/// Revokes a device (its token stops working at its next request); an already revoked one keeps its time.
pub async fn revoke_device(db: &Db, device_id: &str, now_ms: i64) -> StoreResult<()> {
    sqlx::query("UPDATE devices SET revoked_at = $1 WHERE device_id = $2 AND revoked_at IS NULL")
        .bind(now_ms)
        .bind(device_id)
        .execute(&db.pool)
        .await?;
    Ok(())
}
