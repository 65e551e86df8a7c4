//! Bulletin attachments on a device: downloaded in the background after a sync into the profile's
//! `attachments/<sha256>`, through a `.part` file that a broken connection leaves behind and the next attempt
//! resumes with `Range`, and moved into place only once its SHA-256 is the one asked for.
//!
//! `download_verified` is the one download (the hub's cache uses it too); `fetch_attachments` fetches a list.

use crate::api::{Api, CallError};
use crate::profile::Profile;
use anyhow::{anyhow, bail, Context, Result};
use server::blobs::{is_sha256_hex, MAX_ATTACHMENT_BYTES};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// The profile's folder of attachments, each named by its SHA-256.
pub const ATTACHMENTS_DIR: &str = "attachments";

/// Connections tried for one file in one call, each resuming where the last broke off.
const ATTEMPTS: usize = 4;

/// What `fetch_attachments` did.
#[derive(Debug, Default)]
pub struct Fetched {
    /// Downloaded and verified now.
    pub downloaded: Vec<String>,
    /// Held already, whole.
    pub held: Vec<String>,
    /// Not held yet, and why: tried again at the next call, from the part already received (a part found to be
    /// wrong is deleted, and the next call starts over).
    pub failed: Vec<(String, String)>,
}

/// Where the attachment `sha256` is kept in `profile` once held whole (`None` for a malformed hash).
pub fn attachment_path(profile: &Profile, sha256: &str) -> Option<PathBuf> {
    is_sha256_hex(sha256).then(|| profile.dir().join(ATTACHMENTS_DIR).join(sha256))
}

/// Whether `profile` holds the attachment `sha256` whole (verified when it was downloaded).
pub fn is_held(profile: &Profile, sha256: &str, size: u64) -> bool {
    attachment_path(profile, sha256).and_then(|p| std::fs::metadata(p).ok()).is_some_and(|m| m.len() == size)
}

/// Downloads each `(sha256, size)` of `wanted` not held yet from `server_url` (the server or a team hub) with the
/// device token `token`, into the profile's `attachments/`. One file's failure does not stop the others; it is
/// reported in `failed`. Fails only if the profile cannot be used.
pub async fn fetch_attachments(
    profile: &Profile,
    server_url: &str,
    token: &str,
    wanted: &[(String, u64)],
) -> Result<Fetched> {
    let api = match profile.try_device()? {
        // The device's trust (its installation's CA, for hubs of its team), with the token given.
        Some(mut device) => {
            device.token = token.to_string();
            profile.api(&device, Some(server_url))?
        }
        None => Api::new(server_url, Some(token.to_string()))?,
    };
    let mut fetched = Fetched::default();
    for (sha256, size) in wanted {
        let Some(dest) = attachment_path(profile, sha256) else {
            fetched.failed.push((sha256.clone(), format!("{sha256:?} is not a SHA-256")));
            continue;
        };
        match download_verified(&api, sha256, Some(*size), &dest).await {
            Ok(Downloaded::Held) => fetched.held.push(sha256.clone()),
            Ok(Downloaded::Now) => fetched.downloaded.push(sha256.clone()),
            Err(e) => fetched.failed.push((sha256.clone(), format!("{e:#}"))),
        }
    }
    Ok(fetched)
}

/// Deletes the attachments (whole or in part) of `profile` that are not in `keep` (the attachments of the
/// bulletins the device still holds, after a sync deleted the withdrawn ones). Returns how many files it deleted.
pub fn prune_attachments(profile: &Profile, keep: &[String]) -> Result<usize> {
    prune_files(&profile.dir().join(ATTACHMENTS_DIR), keep)
}

/// Deletes the files of `dir` whose name (less a `.part` ending) is not in `keep`.
fn prune_files(dir: &Path, keep: &[String]) -> Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let mut deleted = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let sha256 = name.strip_suffix(".part").unwrap_or(&name);
        if entry.file_type()?.is_file() && !keep.iter().any(|k| k == sha256) {
            std::fs::remove_file(entry.path()).with_context(|| format!("cannot delete {}", entry.path().display()))?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// How `download_verified` ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Downloaded {
    /// The file was there already.
    Held,
    /// Downloaded and verified now.
    Now,
}

/// The part file beside `dest` that a download writes to.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// Downloads `GET /api/v1/blobs/{sha256}` from `api` into `dest` (of `size` bytes if known, else at most the
/// store's bound): appended to `dest`'s part file, resuming from its length with `Range` (also across calls),
/// reconnecting up to a few times when the connection breaks; once whole, its SHA-256 is checked and the part
/// renamed to `dest`. A part of the wrong hash or size is deleted and the download refused.
pub async fn download_verified(api: &Api, sha256: &str, size: Option<u64>, dest: &Path) -> Result<Downloaded> {
    if !is_sha256_hex(sha256) {
        bail!("{sha256:?} is not a SHA-256");
    }
    if let Ok(meta) = tokio::fs::metadata(dest).await {
        if size.is_none_or(|size| meta.len() == size) {
            return Ok(Downloaded::Held);
        }
        // Of another size than the bulletin says: not these bytes. Downloaded again.
        tokio::fs::remove_file(dest).await.ok();
    }
    let dir = dest.parent().context("an attachment's path has a folder")?;
    client_core::private_files::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let part = part_path(dest);
    let bound = size.unwrap_or(MAX_ATTACHMENT_BYTES as u64);
    let mut total = size;
    let mut last_error = None;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 * attempt as u64)).await;
        }
        let have = tokio::fs::metadata(&part).await.map(|m| m.len()).unwrap_or(0);
        if have > bound || total.is_some_and(|total| have > total) {
            tokio::fs::remove_file(&part).await.ok();
            continue;
        }
        if total == Some(have) {
            break;
        }
        match receive(api, sha256, &part, have, bound).await {
            Ok(Received::Whole(size)) => {
                total = Some(size);
                break;
            }
            Ok(Received::Cut { total: size, error }) => {
                total = Some(size);
                last_error = Some(error);
            }
            // The part holds the whole file already (a call that stopped between its last byte and its check).
            Err(CallError::Refused { status: 416, .. }) if have > 0 => {
                total = Some(have);
                break;
            }
            Err(e @ CallError::Unreachable { .. }) => last_error = Some(anyhow!(e)),
            Err(e) => return Err(anyhow!(e).context(format!("downloading {sha256}"))),
        }
    }
    let have = tokio::fs::metadata(&part).await.map(|m| m.len()).unwrap_or(0);
    if total != Some(have) {
        let why = last_error.unwrap_or_else(|| anyhow!("the connection broke off"));
        return Err(why.context(format!("downloading {sha256}: {have} bytes received so far, kept to resume")));
    }
    let checked = part.clone();
    let found = tokio::task::spawn_blocking(move || server::blobs::sha256_of_file(&checked)).await??;
    if found != sha256 {
        tokio::fs::remove_file(&part).await.ok();
        bail!("refused the download of {sha256}: the bytes received have the SHA-256 {found}; deleted them");
    }
    tokio::fs::rename(&part, dest).await?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).ok();
    Ok(Downloaded::Now)
}

/// What one connection brought.
enum Received {
    /// The part holds the whole file (of this size) now.
    Whole(u64),
    /// The connection broke off before the end of the file (of `total` bytes); the part keeps what came.
    Cut { total: u64, error: anyhow::Error },
}

/// One request, from byte `have` on, appended to `part` as it arrives (fsynced before returning).
async fn receive(api: &Api, sha256: &str, part: &Path, have: u64, bound: u64) -> Result<Received, CallError> {
    let mut request = api.request(reqwest::Method::GET, &format!("/api/v1/blobs/{sha256}"));
    if have > 0 {
        request = request.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    let mut response = api.send(request).await?;
    let local = |e: std::io::Error| CallError::Refused {
        status: 0,
        code: "local".into(),
        message: format!("cannot write {}: {e}", part.display()),
    };
    // 206 from where the part ends, or 200 with the whole file.
    let range = response.headers().get(reqwest::header::CONTENT_RANGE).and_then(|v| v.to_str().ok());
    let resumed = match (response.status().as_u16(), range.and_then(content_range)) {
        (206, Some((start, total))) if start == have => Some(total),
        (200, _) => None,
        (status, _) => {
            return Err(CallError::Refused {
                status,
                code: "unexpected_answer".into(),
                message: format!("asked for {sha256} from byte {have}, got HTTP {status} with content-range {range:?}"),
            })
        }
    };
    let total = resumed.or(response.content_length()).unwrap_or(bound);
    if total > bound {
        return Err(CallError::Refused {
            status: 0,
            code: "too_large".into(),
            message: format!("the file {sha256} is {total} bytes; at most {bound} were expected"),
        });
    }
    let (mut file, mut written) = match resumed {
        Some(_) => (tokio::fs::OpenOptions::new().append(true).open(part).await.map_err(local)?, have),
        None => {
            let mut options = tokio::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            options.mode(0o600);
            (options.open(part).await.map_err(local)?, 0)
        }
    };
    let mut cut = None;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                written += chunk.len() as u64;
                if written > total {
                    drop(file);
                    tokio::fs::remove_file(part).await.ok();
                    return Err(CallError::Refused {
                        status: 0,
                        code: "too_large".into(),
                        message: format!("the file {sha256} ran past the {total} bytes announced"),
                    });
                }
                file.write_all(&chunk).await.map_err(local)?;
            }
            Ok(None) => break,
            Err(e) => {
                cut = Some(anyhow!("the connection broke off: {}", crate::api::root_cause(&e)));
                break;
            }
        }
    }
    file.sync_all().await.map_err(local)?;
    Ok(match cut {
        None if written == total => Received::Whole(total),
        None => Received::Cut { total, error: anyhow!("the answer ended after {written} of {total} bytes") },
        Some(error) => Received::Cut { total, error },
    })
}

/// `bytes START-END/TOTAL` → (START, TOTAL).
fn content_range(value: &str) -> Option<(u64, u64)> {
    let (range, total) = value.strip_prefix("bytes ")?.split_once('/')?;
    let (start, _) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only what is kept stays, its part files too.
    #[test]
    fn prunes_what_is_no_longer_wanted() {
        let dir = tempfile::tempdir().unwrap();
        let profile = Profile::new(dir.path().to_path_buf());
        assert_eq!(prune_attachments(&profile, &[]).unwrap(), 0, "no folder yet");
        let (kept, gone, partial) = ("aa".repeat(32), "bb".repeat(32), "cc".repeat(32));
        let folder = dir.path().join(ATTACHMENTS_DIR);
        std::fs::create_dir_all(&folder).unwrap();
        for name in [kept.clone(), gone.clone(), format!("{kept}.part"), format!("{partial}.part")] {
            std::fs::write(folder.join(name), b"x").unwrap();
        }
        assert_eq!(prune_attachments(&profile, std::slice::from_ref(&kept)).unwrap(), 2);
        let mut left: Vec<_> = std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().file_name()).collect();
        left.sort();
        assert_eq!(left, vec![std::ffi::OsString::from(&kept), format!("{kept}.part").into()]);
    }

    #[test]
    fn reads_content_range_and_names_parts() {
        assert_eq!(content_range("bytes 10-99/100"), Some((10, 100)));
        assert_eq!(content_range("bytes */100"), None);
        assert_eq!(part_path(Path::new("a/attachments/ab")), Path::new("a/attachments/ab.part"));
        let profile = Profile::new(PathBuf::from("p"));
        assert_eq!(attachment_path(&profile, "../x"), None);
        let sha = "ab".repeat(32);
        assert_eq!(attachment_path(&profile, &sha), Some(PathBuf::from("p/attachments").join(&sha)));
    }
}
