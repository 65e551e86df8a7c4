//! Hub certificates as stored: the addresses each team's hubs hold (`hub_names`) and the certificates the CA
//! signed (`hub_certificates`).

use crate::store::db::Db;
use crate::store::StoreResult;
use sqlx::{Any, Transaction};

type Tx = Transaction<'static, Any>;

/// Claims `name` for `team` until `held_until`, unless another team's hubs hold it after `now_ms`; returns
/// whether it was claimed.
pub async fn claim_name(tx: &mut Tx, name: &str, team: &str, held_until: i64, now_ms: i64) -> StoreResult<bool> {
    let claimed = sqlx::query(
        "INSERT INTO hub_names (name, team, held_until) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET team = excluded.team, held_until = excluded.held_until \
         WHERE hub_names.team = excluded.team OR hub_names.held_until <= $4",
    )
    .bind(name)
    .bind(team)
    .bind(held_until)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(claimed != 0)
}

/// Until when a claimed name is held (ms). Fails if nobody holds it.
pub async fn name_held_until(tx: &mut Tx, name: &str) -> StoreResult<i64> {
    let (until,): (i64,) =
        sqlx::query_as("SELECT held_until FROM hub_names WHERE name = $1").bind(name).fetch_one(&mut **tx).await?;
    Ok(until)
}

/// A signed hub certificate's record.
pub struct CertificateRow<'a> {
    pub serial: &'a str,
    pub team: &'a str,
    pub device_id: &'a str,
    /// The certificate's names, space separated.
    pub names: String,
    pub issued_at: i64,
    pub not_after: i64,
}

pub async fn insert_certificate(tx: &mut Tx, c: CertificateRow<'_>) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO hub_certificates (serial, team, device_id, names, issued_at, not_after) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(c.serial)
    .bind(c.team)
    .bind(c.device_id)
    .bind(c.names)
    .bind(c.issued_at)
    .bind(c.not_after)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The devices of a team's unexpired hub certificates (at `at_ms`) that no longer count: revoked, disabled, or
/// no longer a lead (or the office) of the team. Sorted.
pub async fn withdrawn_hub_devices(db: &Db, team: &str, at_ms: i64) -> StoreResult<Vec<String>> {
    let withdrawn: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT c.device_id FROM hub_certificates c \
         LEFT JOIN devices d ON d.device_id = c.device_id LEFT JOIN users u ON u.id = d.user_id \
         WHERE c.team = $1 AND c.not_after > $2 \
         AND (u.id IS NULL OR d.revoked_at IS NOT NULL OR u.disabled_at IS NOT NULL \
              OR u.role NOT IN ('lead', 'office') OR u.team IS NULL OR u.team <> $1) \
         ORDER BY c.device_id",
    )
    .bind(team)
    .bind(at_ms)
    .fetch_all(&db.pool)
    .await?;
    Ok(withdrawn.into_iter().map(|(d,)| d).collect())
}
