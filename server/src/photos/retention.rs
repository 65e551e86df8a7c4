//! How long photos are kept: as long as the visit they are evidence of, except the photos of a place the office
//! found is not a place (a found place it rejected): their files are deleted at once (and the thumbnails), since
//! they show something that is no part of the campaign, possibly someone's home. The reference stays in the visit
//! (a hash, nothing personal) and the `photos` row stays marked deleted, so no phone sends the photo again.

use crate::accounts::audit;
use crate::refusal::Refusal;
use crate::store::photos as stored;
use crate::AppState;

/// Deletes the files of the photos only `place_id`'s visits reference; returns how many photos lost their files.
pub async fn forget_place_photos(state: &AppState, place_id: &str, username: &str) -> Result<usize, Refusal> {
    let photos = stored::only_of_place(&state.db, place_id).await?;
    for (sha256, files) in &photos {
        // Marked first: a photo marked deleted is never served, whether its files are gone yet or not.
        stored::mark_deleted(&state.db, sha256).await?;
        for file in files {
            state.blobs.delete(file).await?;
        }
    }
    if !photos.is_empty() {
        let detail = format!("{} photos of place {place_id}, rejected as not a place", photos.len());
        audit::record(&state.db, Some(username), "photo.delete", &detail).await;
    }
    Ok(photos.len())
}
