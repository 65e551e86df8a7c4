//! A team hub keeps its phones' photos for the server: the same upload API as the server's
//! (`POST /api/v1/photos/missing`, `GET /api/v1/photos/{sha256}/upload`, `PUT /api/v1/photos/{sha256}`), taking
//! only photos a visit in the team's grids references, verified against their hash and kept in the lead's
//! profile's `photos/` — the folder the lead's own syncs upload from (`device::photos`), so `hub sync` delivers
//! them to the server after the visits, whenever the base has a connection. The hub checks the bytes' hash and
//! that they look like a JPEG or WebP; decoding and the pixel bound are the server's (a hub is a phone or laptop).

use super::error::ApiError;
use crate::device::photos::{photo_path, sent_marker, PHOTOS_DIR};
use crate::hub::exchange::Hub;
use crate::profile::Profile;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::HeaderMap;
use axum::Json;
use client_core::grid::model::{is_photo_hash, MAX_PHOTO_BYTES};
use client_core::GridDoc;
use serde::Deserialize;
use serde_json::{json, Value};
use server::resumable::{self, PartRefused, Receiving};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

/// Where uploads under way are kept until whole.
const PARTIAL_DIR: &str = "partial";

/// Photos being received now: one request per photo at a time.
static RECEIVING: LazyLock<Receiving> = LazyLock::new(Receiving::new);

/// The photos the team's visits reference (hash → declared size), read from the lead's copy of the grids.
fn references(profile_dir: &Path) -> Result<HashMap<String, u64>, ApiError> {
    let profile = Profile::new(profile_dir.to_path_buf());
    let store = profile.grids().map_err(ApiError::internal)?;
    let mut refs = HashMap::new();
    for grid in store.grids().map_err(ApiError::internal)? {
        let doc: GridDoc = store.load(&grid).map_err(ApiError::internal)?;
        for visit in doc.visits().map_err(ApiError::internal)? {
            refs.extend(visit.photos.into_iter().map(|p| (p.sha256, p.size)));
        }
    }
    Ok(refs)
}

/// The team's photo references, read again when older than `REFERENCES_FRESH` or when `wanted` are not all in
/// them (a phone uploads right after the exchange that brought its visits): reading every grid of the team for
/// each of a phone's requests would take seconds per photo.
async fn references_with(hub: &Hub, wanted: &[&str]) -> Result<Arc<HashMap<String, u64>>, ApiError> {
    let cached = REFERENCES.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some((at, refs)) = cached {
        if at.elapsed() < REFERENCES_FRESH && wanted.iter().all(|h| refs.contains_key(*h)) {
            return Ok(refs);
        }
    }
    let dir = hub.profile_dir.clone();
    let refs = Arc::new(tokio::task::spawn_blocking(move || references(&dir)).await.map_err(ApiError::internal)??);
    *REFERENCES.lock().unwrap_or_else(|e| e.into_inner()) = Some((std::time::Instant::now(), refs.clone()));
    Ok(refs)
}

/// How long the team's photo references read from the grids are used before they are read again.
const REFERENCES_FRESH: std::time::Duration = std::time::Duration::from_secs(30);

/// The references last read (a hub serves one profile).
type CachedReferences = Option<(std::time::Instant, Arc<HashMap<String, u64>>)>;
static REFERENCES: LazyLock<Mutex<CachedReferences>> = LazyLock::new(Default::default);

async fn declared_size(hub: &Hub, sha256: &str) -> Result<u64, ApiError> {
    if !is_photo_hash(sha256) {
        return Err(ApiError::bad_request(format!("{sha256:?} is not a photo's SHA-256 in lowercase hex")));
    }
    let refs = references_with(hub, &[sha256]).await?;
    refs.get(sha256).copied().ok_or_else(|| {
        ApiError::not_found(format!(
            "no visit of team {} on this hub references photo {sha256}: sync the visit first, then upload its photos",
            hub.team()
        ))
    })
}

fn is_kept(profile_dir: &Path, sha256: &str) -> bool {
    let profile = Profile::new(profile_dir.to_path_buf());
    photo_path(&profile, sha256).exists() || sent_marker(&profile, sha256).exists()
}

fn partial_path(profile_dir: &Path, sha256: &str) -> PathBuf {
    profile_dir.join(PHOTOS_DIR).join(PARTIAL_DIR).join(sha256)
}

#[derive(Deserialize)]
pub struct MissingBody {
    photos: Vec<String>,
}

/// `POST /api/v1/photos/missing` at the hub: of the photos asked about, those the team's visits reference and the
/// hub has not kept (nor delivered).
pub async fn missing(State(hub): State<Arc<Hub>>, headers: HeaderMap, body: Body) -> Result<Json<Value>, ApiError> {
    super::blobs::team_device(&hub, &headers)?;
    let bytes = axum::body::to_bytes(body, 256 * 1024).await.map_err(|e| ApiError::bad_request(e.to_string()))?;
    let asked: MissingBody = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("expected {{\"photos\": [SHA-256, …]}}: {e}")))?;
    if asked.photos.len() > 1000 {
        return Err(ApiError::bad_request("ask for at most 1,000 photos at a time"));
    }
    let asked_for: Vec<&str> = asked.photos.iter().map(String::as_str).collect();
    let refs = references_with(&hub, &asked_for).await?;
    let missing: Vec<&String> =
        asked.photos.iter().filter(|h| refs.contains_key(*h) && !is_kept(&hub.profile_dir, h)).collect();
    Ok(Json(json!({ "missing": missing })))
}

/// `GET /api/v1/photos/{sha256}/upload` at the hub.
pub async fn upload_state(
    State(hub): State<Arc<Hub>>,
    UrlPath(sha256): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    super::blobs::team_device(&hub, &headers)?;
    let size = declared_size(&hub, &sha256).await?;
    if is_kept(&hub.profile_dir, &sha256) {
        return Ok(Json(json!({ "offset": size, "complete": true })));
    }
    let held = resumable::held(&partial_path(&hub.profile_dir, &sha256)).await;
    Ok(Json(json!({ "offset": held.min(size), "complete": false })))
}

fn header_number(headers: &HeaderMap, name: &str) -> Result<Option<u64>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(format!("the {name} header is not a number of bytes"))),
    }
}

/// `PUT /api/v1/photos/{sha256}` at the hub: the bytes from `Upload-Offset`, appended to what arrived before;
/// once whole and verified, kept for the server.
pub async fn receive(
    State(hub): State<Arc<Hub>>,
    UrlPath(sha256): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    super::blobs::team_device(&hub, &headers)?;
    let size = declared_size(&hub, &sha256).await?;
    let start = header_number(&headers, "upload-offset")?.unwrap_or(0);
    let total = header_number(&headers, "upload-length")?
        .ok_or_else(|| ApiError::bad_request("say the photo's whole size in the Upload-Length header"))?;
    if total != size || size > MAX_PHOTO_BYTES {
        return Err(ApiError::unprocessable(
            "photo_size_mismatch",
            format!("the visit says photo {sha256} has {size} bytes, but this upload says {total}: nothing was taken"),
        ));
    }
    if is_kept(&hub.profile_dir, &sha256) {
        return Ok(Json(json!({ "offset": size, "complete": true })));
    }
    let _receiving = RECEIVING
        .claim(&sha256)
        .ok_or_else(|| ApiError::conflict(format!("photo {sha256} is being uploaded by another request now")))?;
    let part = partial_path(&hub.profile_dir, &sha256);
    let received = resumable::receive_part(&part, start, size, body.into_data_stream()).await.map_err(|e| match e {
        PartRefused::WrongOffset { held, start } => ApiError::conflict(format!(
            "the hub holds {held} bytes of photo {sha256}; send from byte {held}, not {start}"
        )),
        PartRefused::TooLong { size } => ApiError::unprocessable(
            "photo_size_mismatch",
            format!("the upload sends more than the {size} bytes the visit declared: nothing was taken"),
        ),
        PartRefused::Io(e) => ApiError::internal(e),
    })?;
    if !received.complete {
        return Ok(Json(json!({ "offset": received.held, "complete": false })));
    }
    let bytes = tokio::fs::read(&part).await.map_err(ApiError::internal)?;
    let _ = tokio::fs::remove_file(&part).await;
    let actual = server::blobs::sha256_hex(&bytes);
    if actual != sha256 {
        return Err(ApiError::unprocessable(
            "photo_refused",
            format!(
                "the bytes received are not photo {sha256} (their SHA-256 is {actual}): the upload was discarded; \
                 send the photo again"
            ),
        ));
    }
    let looks_like_photo =
        bytes.starts_with(&[0xff, 0xd8, 0xff]) || (bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP"));
    if !looks_like_photo {
        return Err(ApiError::unprocessable(
            "photo_refused",
            "this file is not a photo: photos are JPEG or WebP (judged by the file's content, not its name)",
        ));
    }
    let profile = Profile::new(hub.profile_dir.clone());
    let dest = photo_path(&profile, &sha256);
    tokio::task::spawn_blocking(move || server::blobs::write_file_durably(&dest, &bytes))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(Json(json!({ "offset": size, "complete": true })))
}
