//! Enrolled devices: listing them, whose team a device belongs to, and revoking one.

use crate::refusal::Refusal;
use crate::store::db::{now_ms, Db};
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
    /// The app and version the device last reported (e.g. `web 0.1.0`, `cli 0.1.0`).
    #[serde(default)]
    pub app_version: Option<String>,
    /// How many of its records the device held unconfirmed by the server when it last reported (after a
    /// sync: normally 0; more means visits still on the phone).
    #[serde(default)]
    pub unsent_hint: Option<i64>,
    /// When it last reported.
    #[serde(default)]
    pub status_at: Option<i64>,
}

/// Devices of everyone (`team` is `None`) or of one team's members, oldest enrolment first.
pub async fn list_devices(db: &Db, team: Option<&str>) -> StoreResult<Vec<DeviceInfo>> {
    // The empty string stands for "every team" in the statement.
    let rows = devices::list(db, team.unwrap_or("")).await?;
    Ok(rows
        .into_iter()
        .map(
            |(
                device_id,
                username,
                team,
                name,
                created_at,
                last_seen_at,
                revoked_at,
                app_version,
                unsent_hint,
                status_at,
            )| DeviceInfo {
                device_id,
                username,
                team,
                name,
                created_at,
                last_seen_at,
                revoked_at,
                app_version,
                unsent_hint,
                status_at,
            },
        )
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

/// The longest app version a device may report, and its characters: letters, digits, space and `._+-/`.
pub const MAX_APP_VERSION: usize = 40;

/// Records what a device says of itself, after checking it: an app version of at most [`MAX_APP_VERSION`]
/// plain characters and a count of unsent records between 0 and 10,000,000.
pub async fn note_status(db: &Db, device_id: &str, app_version: &str, unsent: i64) -> Result<(), Refusal> {
    let plain = |c: char| c.is_ascii_alphanumeric() || " ._+-/".contains(c);
    if app_version.is_empty() || app_version.len() > MAX_APP_VERSION || !app_version.chars().all(plain) {
        return Err(Refusal::invalid(format!(
            "app_version must be 1 to {MAX_APP_VERSION} letters, digits, spaces or ._+-/ (like \"web 0.1.0\")"
        )));
    }
    if !(0..=10_000_000).contains(&unsent) {
        return Err(Refusal::invalid("unsent must be a count between 0 and 10,000,000"));
    }
    devices::note_status(db, device_id, app_version, unsent, now_ms()).await?;
    Ok(())
}
