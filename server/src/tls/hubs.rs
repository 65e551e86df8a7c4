//! The records of hub certificates: which certificates the CA signed for which team's hub device, and the
//! addresses each team's hubs hold. They decide which names a certificate may carry and which hub devices of a
//! team no longer count.

use crate::store::db::Db;
use crate::store::hubs::{self, CertificateRow};
use crate::store::{StoreError, StoreResult};
use crate::tls::ca::{HubIdentity, IssuedCertificate};

/// How long an address stays a team's after its hubs' last certificate for it expired: phones of the team keep
/// the field app (and its data) under that address, so it is not certified to another team meanwhile.
pub const HUB_NAME_HOLD_DAYS: i64 = 30;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Claims the certificate's names (but loopback addresses) for the team and records the certificate, in one
/// transaction: a name another team's hubs hold is refused (a conflict) and nothing is recorded.
pub async fn record_certificate(
    db: &Db,
    hub: &HubIdentity,
    issued: &IssuedCertificate,
    now: chrono::DateTime<chrono::Utc>,
) -> StoreResult<()> {
    let now_ms = now.timestamp_millis();
    let not_after = issued.not_after.timestamp_millis();
    let held_until = not_after + HUB_NAME_HOLD_DAYS * DAY_MS;
    let (_gate, mut tx) = db.begin_write().await?;
    // A loopback address reaches the phone or laptop itself, never another machine: it is nobody's to hold.
    let held = issued.names.iter().filter(|name| !name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()));
    for name in held {
        if !hubs::claim_name(&mut tx, name, &hub.team, held_until, now_ms).await? {
            let until = hubs::name_held_until(&mut tx, name).await?;
            let until = chrono::DateTime::from_timestamp_millis(until).unwrap_or(now);
            return Err(StoreError::conflict(format!(
                "{name} is the address of another team's hub until {} (its phones reach their hub there), so it \
                 cannot be certified to team {}'s hub; give this machine another address on the base's network (a \
                 DHCP reservation, or another name under .home.arpa) and ask again",
                until.format("%Y-%m-%d %H:%M UTC"),
                hub.team
            )));
        }
    }
    let record = CertificateRow {
        serial: &issued.serial,
        team: &hub.team,
        device_id: &hub.device_id,
        names: issued.names.join(" "),
        issued_at: now_ms,
        not_after,
    };
    hubs::insert_certificate(&mut tx, record).await?;
    tx.commit().await?;
    Ok(())
}

/// The hub devices of a team that no longer count at `at_ms`: each holds a hub certificate of the team that has
/// not expired, and its device was revoked, its account disabled, or is no longer a lead (or the office) of the
/// team. Sorted.
pub async fn withdrawn_hub_devices(db: &Db, team: &str, at_ms: i64) -> StoreResult<Vec<String>> {
    hubs::withdrawn_hub_devices(db, team, at_ms).await
}
