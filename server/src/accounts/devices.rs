//! Enrolled devices: listing them, whose team a device belongs to, and revoking one.

use crate::store::db::Db;
use crate::store::{devices, StoreResult};
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

/// Devices of everyone (`team` is `None`) or of one team's members, oldest enrolment first.
pub async fn list_devices(db: &Db, team: Option<&str>) -> StoreResult<Vec<DeviceInfo>> {
    // The empty string stands for "every team" in the statement.
    let rows = devices::list(db, team.unwrap_or("")).await?;
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
    devices::owner_team(db, device_id).await
}

/// Revokes a device (its token stops working at its next request); an already revoked one keeps its time.
pub async fn revoke_device(db: &Db, device_id: &str, now_ms: i64) -> StoreResult<()> {
    devices::revoke(db, device_id, now_ms).await
}
