//! Grids taken from a device's team: the device still delivers what it recorded before it learnt of it, receives
//! nothing of the grid any more, and what it records in the grid after the server told it is refused.
//!
//! The moment a device learns it is the server's answer that tells it (`unassigned`): the server records its own
//! time of that answer per device and grid (`device_grids.removal_told_at`), and compares with it the time each
//! visit, found place or correction says it was recorded (the writing device's clock). A device can already
//! date its visits as it likes; this rule gives it nothing more.

use crate::http::error::ApiError;
use crate::store::db::{in_list, MAX_BINDS};
use chrono::{DateTime, SecondsFormat, Utc};
use client_core::protocol::{GridPush, GridReply, ReplyKind};
use client_core::sync::Accepted;
use sqlx::{Any, AnyConnection, Transaction};
use std::collections::HashMap;

/// Cuts the reply for a grid the device's team no longer holds down to what the device showed itself: no
/// changes, no document, and as heads only the device's own (which the server holds once the push is accepted,
/// so the device takes them as confirmed and drops the grid), never the heads of what others wrote since.
pub fn withhold(reply: &mut GridReply, push: &GridPush) {
    reply.heads = match reply.kind {
        ReplyKind::ResendAll => Vec::new(),
        _ => {
            reply.kind = ReplyKind::Unassigned;
            push.have.clone()
        }
    };
    reply.changes = Vec::new();
    reply.snapshot = None;
    reply.signatures = Vec::new();
}

/// Refuses the sync if any writer recorded something in one of `pushes` (grids no longer the pusher's team's)
/// after the server told that writer's device the grid had left its team.
pub async fn refuse_after_told(conn: &mut AnyConnection, pushes: &[(&str, &Accepted)]) -> Result<(), ApiError> {
    let grids: Vec<&str> = pushes.iter().filter(|(_, a)| !a.records.is_empty()).map(|(g, _)| *g).collect();
    if grids.is_empty() {
        return Ok(());
    }
    let mut told: HashMap<(String, String), i64> = HashMap::new();
    for chunk in grids.chunks(MAX_BINDS) {
        let sql = format!(
            "SELECT device_id, grid_code, removal_told_at FROM device_grids \
             WHERE removal_told_at IS NOT NULL AND grid_code IN ({})",
            in_list(conn, chunk.len())
        );
        let mut query = sqlx::query_as::<_, (String, String, i64)>(sqlx::AssertSqlSafe(sql));
        for grid in chunk {
            query = query.bind(*grid);
        }
        told.extend(query.fetch_all(&mut *conn).await?.into_iter().map(|(d, g, at)| ((d, g), at)));
    }
    for (grid, accepted) in pushes {
        let recorded = accepted
            .records
            .visits
            .iter()
            .map(|v| ("visit", &v.device, &v.place_id, v.at))
            .chain(accepted.records.places.iter().map(|p| ("found place", &p.device, &p.place.id, p.added_at)))
            .chain(accepted.records.corrections.iter().map(|c| ("correction", &c.device, &c.place_id, c.at)));
        for (what, device, place, at) in recorded {
            let Some(&told_at) = told.get(&(device.clone(), grid.to_string())) else { continue };
            if at.timestamp_millis() > told_at {
                metrics::counter!(crate::ops::CHANGES_REJECTED).increment(1);
                return Err(ApiError::unprocessable(
                    "grid_reassigned",
                    format!(
                        "grid {grid} was given to another team: device {device} was told so at {} (server time), \
                         and its {what} at place {place}, recorded at {} by that device's clock, came after that; \
                         what it recorded before was accepted. If it is genuine, ask the office to give {grid} back \
                         to your team for one sync",
                        text(DateTime::from_timestamp_millis(told_at).unwrap_or_default()),
                        text(at)
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Records that the device was told now that `told` left its team (the first telling counts), and forgets it for
/// `given_back`, grids its team holds again.
pub async fn record_told(
    tx: &mut Transaction<'static, Any>,
    device: &str,
    told: &[String],
    given_back: &[String],
    now: i64,
) -> Result<(), ApiError> {
    for grid in told {
        sqlx::query(
            "UPDATE device_grids SET removal_told_at = $1 \
             WHERE device_id = $2 AND grid_code = $3 AND removal_told_at IS NULL",
        )
        .bind(now)
        .bind(device)
        .bind(grid)
        .execute(&mut **tx)
        .await?;
    }
    for grid in given_back {
        sqlx::query("UPDATE device_grids SET removal_told_at = NULL WHERE device_id = $1 AND grid_code = $2")
            .bind(device)
            .bind(grid)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
