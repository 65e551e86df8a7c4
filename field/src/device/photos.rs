//! Photos on a device: taken with a visit (`doorstep field visit --photo FILE`), shrunk and kept in the profile's
//! `photos/<sha256>` before the visit is written, then uploaded after each sync, resuming from what the server
//! holds. A photo the server has whole leaves a marker in `photos/sent/`; one it refused for its content moves to
//! `photos/refused/` with the reason beside it, never sent again.

use crate::api::{Api, CallError};
use crate::device::photo::shrink_photo;
use crate::profile::Profile;
use anyhow::{bail, Context, Result};
use client_core::grid::model::{is_photo_hash, PhotoRef, MAX_PHOTOS_PER_VISIT};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The profile's folder of photos waiting to upload, each named by its SHA-256.
pub const PHOTOS_DIR: &str = "photos";
const SENT_DIR: &str = "sent";
const REFUSED_DIR: &str = "refused";

fn photos_dir(profile: &Profile) -> PathBuf {
    profile.dir().join(PHOTOS_DIR)
}

/// Where the photo `sha256` waits to be uploaded.
pub fn photo_path(profile: &Profile, sha256: &str) -> PathBuf {
    photos_dir(profile).join(sha256)
}

/// The marker left once the server (or, for a phone at base, the hub) holds the photo whole.
pub fn sent_marker(profile: &Profile, sha256: &str) -> PathBuf {
    photos_dir(profile).join(SENT_DIR).join(sha256)
}

/// Reads, shrinks and keeps each photo file durably; returns the references the visit will carry.
pub fn take_photos(profile: &Profile, files: &[PathBuf]) -> Result<Vec<PhotoRef>> {
    if files.len() > MAX_PHOTOS_PER_VISIT {
        bail!("a visit takes at most {MAX_PHOTOS_PER_VISIT} photos; {} were given", files.len());
    }
    let mut refs: Vec<PhotoRef> = Vec::new();
    for file in files {
        let bytes = std::fs::read(file).with_context(|| format!("cannot read the photo {}", file.display()))?;
        let modified = std::fs::metadata(file).and_then(|m| m.modified()).map(chrono::DateTime::<chrono::Utc>::from);
        let shrunk = shrink_photo(&bytes, modified.unwrap_or_else(|_| chrono::Utc::now()))
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let sha256 = server::blobs::sha256_hex(&shrunk.bytes);
        if refs.iter().any(|r| r.sha256 == sha256) {
            continue;
        }
        let path = photos_dir(profile).join(&sha256);
        if !path.exists() {
            server::blobs::write_file_durably(&path, &shrunk.bytes)
                .with_context(|| format!("cannot keep the photo in {}", path.display()))?;
        }
        refs.push(PhotoRef {
            sha256,
            size: shrunk.bytes.len() as u64,
            media_type: shrunk.media_type.to_string(),
            taken_at: shrunk.taken_at,
            rejected: None,
        });
    }
    Ok(refs)
}

/// Photos kept on this device and not yet held by the server, with their sizes.
pub fn waiting(profile: &Profile) -> Result<Vec<(String, u64)>> {
    let dir = photos_dir(profile);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().to_string();
        if is_photo_hash(&name) && entry.file_type()?.is_file() {
            out.push((name, entry.metadata()?.len()));
        }
    }
    out.sort();
    Ok(out)
}

/// What `upload_photos` did.
#[derive(Debug, Default)]
pub struct Uploaded {
    pub sent: usize,
    /// Refused by the server for their content, with the reason (kept in `photos/refused/`).
    pub refused: Vec<(String, String)>,
    /// Not held by the server yet: the visit not synced, or the upload cut short (resumed next time).
    pub waiting: usize,
}

#[derive(Deserialize)]
struct Missing {
    missing: Vec<String>,
}

#[derive(Deserialize)]
struct UploadState {
    offset: u64,
    complete: bool,
}

/// Uploads the photos waiting on this device to `api` (the server, or the team's hub), each from what the other
/// side holds already. One photo's failure does not stop the others.
pub async fn upload_photos(profile: &Profile, api: &Api) -> Result<Uploaded> {
    let waiting = waiting(profile)?;
    let mut done = Uploaded::default();
    if waiting.is_empty() {
        return Ok(done);
    }
    let hashes: Vec<&String> = waiting.iter().map(|(h, _)| h).collect();
    let missing: Missing = api
        .send(
            api.request(reqwest::Method::POST, "/api/v1/photos/missing").json(&serde_json::json!({ "photos": hashes })),
        )
        .await?
        .json()
        .await?;
    for (index, (sha256, size)) in waiting.iter().enumerate() {
        let path = photos_dir(profile).join(sha256);
        if !missing.missing.contains(sha256) {
            // Held already, or no synced visit references it yet: the upload's state says which.
            match offset(api, sha256).await {
                Ok(state) if state.complete => mark_sent(profile, sha256)?,
                _ => done.waiting += 1,
            }
            continue;
        }
        match upload_one(api, sha256, *size, &path).await {
            Ok(true) => {
                mark_sent(profile, sha256)?;
                done.sent += 1;
            }
            Ok(false) => done.waiting += 1,
            Err(CallError::Refused { status: 422, code, message }) if code == "photo_refused" => {
                mark_refused(profile, sha256, &message)?;
                done.refused.push((sha256.clone(), message));
            }
            Err(CallError::Refused { status, code, message }) if status == 503 || code == "photo_limit" => {
                // The server asks to wait (busy, or the day's limit reached): this photo and the rest go later.
                eprintln!("photos: {message}");
                done.waiting += waiting.len() - index;
                break;
            }
            Err(e) => {
                eprintln!("photo {}: not uploaded yet ({e}); tried again at the next sync", &sha256[..12]);
                done.waiting += 1;
            }
        }
    }
    Ok(done)
}

async fn offset(api: &Api, sha256: &str) -> Result<UploadState, CallError> {
    let resp = api.send(api.request(reqwest::Method::GET, &format!("/api/v1/photos/{sha256}/upload"))).await?;
    resp.json().await.map_err(|e| CallError::Unreachable { url: String::new(), detail: e.to_string() })
}

/// Sends the photo from the offset the other side holds; true once it holds it whole.
async fn upload_one(api: &Api, sha256: &str, size: u64, path: &Path) -> Result<bool, CallError> {
    let start = offset(api, sha256).await?;
    if start.complete {
        return Ok(true);
    }
    let bytes = std::fs::read(path)
        .map_err(|e| CallError::Unreachable { url: path.display().to_string(), detail: e.to_string() })?;
    let from = usize::try_from(start.offset).unwrap_or(0).min(bytes.len());
    let req = api
        .request(reqwest::Method::PUT, &format!("/api/v1/photos/{sha256}"))
        .header("Upload-Offset", start.offset.to_string())
        .header("Upload-Length", size.to_string())
        .body(bytes[from..].to_vec());
    let state: UploadState = api
        .send(req)
        .await?
        .json()
        .await
        .map_err(|e| CallError::Unreachable { url: String::new(), detail: e.to_string() })?;
    Ok(state.complete)
}

fn mark_sent(profile: &Profile, sha256: &str) -> Result<()> {
    let dir = photos_dir(profile).join(SENT_DIR);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(sha256), b"")?;
    std::fs::remove_file(photos_dir(profile).join(sha256)).or_else(ignore_missing)?;
    Ok(())
}

fn mark_refused(profile: &Profile, sha256: &str, why: &str) -> Result<()> {
    let dir = photos_dir(profile).join(REFUSED_DIR);
    std::fs::create_dir_all(&dir)?;
    std::fs::rename(photos_dir(profile).join(sha256), dir.join(sha256)).or_else(ignore_missing)?;
    std::fs::write(dir.join(format!("{sha256}.why")), why)?;
    Ok(())
}

/// A photo of this device's visits that the office rejected, as the last sync brought it.
#[derive(Debug, serde::Serialize)]
pub struct Rejected {
    pub place_id: String,
    pub visit_id: String,
    pub sha256: String,
    pub reason: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// The photos of this device's visits the office rejected, the newest first.
pub fn rejected(store: &client_core::store::GridStore, device: &crate::profile::Device) -> Result<Vec<Rejected>> {
    let mut out = Vec::new();
    for grid in store.grids()? {
        let doc: client_core::GridDoc = store.load(&grid)?;
        for visit in doc.visits()?.into_iter().filter(|v| v.volunteer == device.username) {
            for photo in visit.photos {
                if let Some(r) = photo.rejected {
                    out.push(Rejected {
                        place_id: visit.place_id.clone(),
                        visit_id: visit.id.to_string(),
                        sha256: photo.sha256,
                        reason: r.reason,
                        at: r.at,
                    });
                }
            }
        }
    }
    out.sort_by_key(|r| std::cmp::Reverse(r.at));
    Ok(out)
}

fn ignore_missing(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}
