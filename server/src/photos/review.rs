//! The office's rejection of a photo that does not show the delivery: written into the visit in its grid document
//! (so the volunteer's phone learns it at its next sync), the visit's standing photos recounted, and the place
//! recounted: where its indicator asks for a photo and none stands any more, the place is back on the gap list.

use crate::accounts::audit;
use crate::places::with_grid;
use crate::refusal::Refusal;
use crate::store::photos as stored;
use crate::store::projection;
use crate::AppState;
use client_core::grid::model::{is_photo_hash, PhotoRejection, MAX_REJECTION_REASON_BYTES};

/// Rejects photo `sha256` of visit `visit_id`, saying why; audited (`photo.reject`).
pub async fn reject(
    state: &AppState,
    visit_id: &str,
    sha256: &str,
    reason: &str,
    username: &str,
) -> Result<(), Refusal> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Refusal::invalid("say why the photo is rejected (the volunteer reads it on the phone)"));
    }
    if reason.len() > MAX_REJECTION_REASON_BYTES || reason.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Refusal::invalid(format!(
            "a reason is at most {MAX_REJECTION_REASON_BYTES} bytes of text without control characters"
        )));
    }
    if !is_photo_hash(sha256) || uuid::Uuid::parse_str(visit_id).is_err() {
        return Err(Refusal::invalid("name the photo by its visit's id and its SHA-256 in lowercase hex"));
    }
    let (grid, place, rejected) = stored::reference(&state.db, visit_id, sha256)
        .await?
        .ok_or_else(|| Refusal::not_found(format!("visit {visit_id} has no photo {sha256}")))?;
    if rejected {
        return Err(Refusal::conflict(format!("photo {sha256} of visit {visit_id} was rejected already")));
    }
    if state.db.backend == crate::store::db::Backend::Postgres {
        state.campaigns.refresh(&state.db).await?;
    }
    let campaign = state.campaigns.current();
    let rejection = PhotoRejection { sha256: sha256.to_string(), reason: reason.to_string(), at: chrono::Utc::now() };
    let at = rejection.at.timestamp_millis();
    let (visit, sha, why, user, place_id) =
        (visit_id.to_string(), sha256.to_string(), reason.to_string(), username.to_string(), place.clone());
    with_grid(
        state,
        &grid,
        move |doc| match doc.reject_photo(visit_id, &rejection)? {
            Some(change) => Ok(change),
            None => Err(Refusal::conflict(format!("photo {sha256} of visit {visit_id} was rejected already"))),
        },
        move |tx, deltas| {
            Box::pin(async move {
                deltas.before(tx, &place_id).await?;
                stored::mark_rejected(tx, &visit, &sha, &user, &why, at).await?;
                projection::recount_place(tx, &campaign.campaign, &place_id).await?;
                deltas.after(tx, &place_id).await?;
                Ok(())
            })
        },
    )
    .await?;
    let detail = format!("{sha256} of visit {visit_id} at place {place}: {reason}");
    audit::record(&state.db, Some(username), "photo.reject", &detail).await;
    Ok(())
}
