//! Grids taken from a device's team: the device still delivers what it recorded before it learnt of it, receives
//! nothing of the grid any more, and what it records in the grid after the server told it is refused.
//!
//! The moment a device learns it is the server's answer that tells it (`unassigned`): the server records its own
//! time of that answer per device and grid (`device_grids.removal_told_at`), and compares with it the time each
//! visit, found place or correction says it was recorded (the writing device's clock). A device can already
//! date its visits as it likes; this rule gives it nothing more.

use crate::refusal::Refusal;
use crate::store::device_grids;
use chrono::{DateTime, SecondsFormat, Utc};
use client_core::protocol::{GridPush, GridReply, ReplyKind};
use client_core::sync::Accepted;
use sqlx::AnyConnection;

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
pub async fn refuse_after_told(conn: &mut AnyConnection, pushes: &[(&str, &Accepted)]) -> Result<(), Refusal> {
    let grids: Vec<&str> = pushes.iter().filter(|(_, a)| !a.records.is_empty()).map(|(g, _)| *g).collect();
    if grids.is_empty() {
        return Ok(());
    }
    let told = device_grids::removal_told(conn, &grids).await?;
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
                return Err(Refusal::unacceptable(
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
