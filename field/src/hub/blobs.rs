//! A team hub's cache of bulletin attachments: `GET /api/v1/blobs/{sha256}` for the team's devices, served from
//! the lead's profile's `attachments/` (the folder its own syncs download the attachments of the bulletins it
//! holds into, `device::attachments`) with the server's `Range` and caching answers; a file not there yet is
//! downloaded from the server once with the hub's own device token (the server checks that it is attached to a
//! bulletin meant for the team), verified, kept and served. Requests for a file being downloaded wait for that
//! one download.

use super::error::ApiError;
use crate::device::attachments::{download_verified, Downloaded};
use crate::hub::exchange::Hub;
use crate::profile::Profile;
use anyhow::Result;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use server::blobs::{Blob, OpenBlob};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

/// Where the file `sha256` is cached in the profile at `profile_dir` (`None` for a malformed hash): where the
/// profile's own syncs keep it.
pub fn cache_path(profile_dir: &Path, sha256: &str) -> Option<PathBuf> {
    crate::device::attachments::attachment_path(&Profile::new(profile_dir.to_path_buf()), sha256)
}

/// The downloads in progress in this process, one lock per file: whoever holds it downloads, the others wait and
/// then find the file cached.
static IN_FLIGHT: LazyLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> = LazyLock::new(Default::default);

/// Makes sure the file `sha256` (of `size` bytes, if known) is cached, downloading it from the server if not.
async fn ensure_cached(profile_dir: &Path, sha256: &str, size: Option<u64>) -> Result<Downloaded> {
    let path = cache_path(profile_dir, sha256).ok_or_else(|| anyhow::anyhow!("{sha256:?} is not a SHA-256"))?;
    let lock = IN_FLIGHT.lock().unwrap().entry(path.clone()).or_default().clone();
    let held = lock.lock().await;
    let result = async {
        let profile = Profile::new(profile_dir.to_path_buf());
        let device = profile.device()?;
        let api = profile.api(&device, None)?;
        download_verified(&api, sha256, size, &path).await
    }
    .await;
    drop(held);
    let mut in_flight = IN_FLIGHT.lock().unwrap();
    // Only the map's and this call's: nobody waits for this file any more.
    if Arc::strong_count(&lock) == 2 {
        in_flight.remove(&path);
    }
    result
}

/// `GET /api/v1/blobs/{sha256}` at the hub, for the team's devices.
pub async fn serve_blob(State(hub): State<Arc<Hub>>, UrlPath(sha256): UrlPath<String>, headers: HeaderMap) -> Response {
    match cached_blob(&hub, &sha256, &headers).await {
        Ok(opened) => server::http::blobs::file_response(opened, &headers).await,
        Err(e) => e.into_response(),
    }
}

/// The claims of the device calling, if it is an unrevoked device of the hub's team.
pub(super) fn team_device(hub: &Hub, headers: &HeaderMap) -> Result<server::accounts::tokens::Claims, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::unauthorized("missing bearer token; enrol the device with the server first"))?;
    let claims =
        server::accounts::tokens::verify_device_token(&hub.server_key, token).map_err(ApiError::unauthorized)?;
    if claims.team.as_deref() != Some(hub.team()) {
        return Err(ApiError::forbidden(format!("this hub serves team {}", hub.team())));
    }
    let profile = Profile::new(hub.profile_dir.clone());
    let revoked = profile
        .roster()
        .map_err(ApiError::internal)?
        .is_some_and(|roster| roster.devices.iter().any(|d| Some(&d.device_id) == claims.dev.as_ref() && d.revoked));
    if revoked {
        return Err(ApiError::unauthorized("this device has been revoked by the office"));
    }
    Ok(claims)
}

async fn cached_blob(hub: &Hub, sha256: &str, headers: &HeaderMap) -> Result<OpenBlob, ApiError> {
    team_device(hub, headers)?;
    let not_found = || ApiError::not_found(format!("no file {sha256}"));
    let path = cache_path(&hub.profile_dir, sha256).ok_or_else(not_found)?;
    if !path.exists() {
        // In a task of its own: a device that hangs up does not stop the download the others wait for.
        let (dir, sha) = (hub.profile_dir.clone(), sha256.to_string());
        let download = tokio::spawn(async move { ensure_cached(&dir, &sha, None).await });
        if let Err(e) = download.await.map_err(ApiError::internal)? {
            return Err(match e.downcast_ref::<crate::api::CallError>() {
                Some(crate::api::CallError::Refused { status: 404, .. }) => not_found(),
                _ => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not_cached",
                    format!("this hub holds no copy of {sha256} yet and could not get one from the server: {e:#}"),
                ),
            });
        }
    }
    // Its type, as the server judged it: by its content.
    let head = {
        use std::io::Read;
        let mut head = Vec::with_capacity(16);
        std::fs::File::open(&path).and_then(|f| f.take(16).read_to_end(&mut head)).map_err(ApiError::internal)?;
        head
    };
    let content_type = server::blobs::sniff(&head).map_err(|_| not_found())?;
    let file = tokio::fs::File::open(&path).await.map_err(ApiError::internal)?;
    let size = file.metadata().await.map_err(ApiError::internal)?.len();
    Ok(OpenBlob { blob: Blob { sha256: sha256.to_string(), size, content_type: content_type.to_string() }, file })
}
