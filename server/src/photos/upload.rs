//! Receiving a photo a visit references: resumable (what arrived of an upload cut short is kept, and the next
//! request goes on from there), verified against the hash the visit names, checked as an image, then kept in the
//! content-addressed store with its thumbnail. Only photos a visit of the uploader's team references are taken.

use crate::accounts::audit;
use crate::blobs::PutError;
use crate::photos::check::{check_photo, CheckedPhoto};
use crate::refusal::Refusal;
use crate::resumable::{self, PartRefused, Receiving};
use crate::store::photos::{self as stored, NewPhoto};
use crate::AppState;
use axum::body::Bytes;
use client_core::grid::model::{is_photo_hash, MAX_PHOTO_BYTES};
use futures_util::Stream;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};

/// Where uploads under way are kept until whole (`<data dir>/photo-uploads/<sha256>.part`).
pub const UPLOADS_DIR: &str = "photo-uploads";
/// Photos one device may upload in a day: far above a day's work, low enough to bound a broken or hostile phone.
pub const MAX_PHOTOS_PER_DEVICE_DAY: i64 = 500;

/// Where an upload stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct UploadState {
    /// Bytes the server holds of it (the whole size once complete).
    pub offset: u64,
    pub complete: bool,
}

/// Who uploads: a device (directly or through its team's hub, which uploads with its lead's device).
pub struct Uploader<'a> {
    pub username: &'a str,
    pub device_id: &'a str,
    pub team: Option<&'a str>,
}

/// Photos whose upload is being received now: one request per photo at a time.
static RECEIVING: LazyLock<Receiving> = LazyLock::new(Receiving::new);

/// What the photo threads found of an upload.
enum Judged {
    NotThePhoto(String),
    Checked(Result<CheckedPhoto, crate::photos::check::PhotoRefusal>),
}

type PhotoJob = Box<dyn FnOnce() + Send>;

/// The threads that read, hash and decode uploaded photos: half the cores (at least one), each at a lower CPU
/// priority (nice 10) than the rest of the server, so that a crowd of uploads takes the CPU the syncs leave and
/// holds no more photos in memory than there are threads.
static PHOTO_THREADS: LazyLock<Mutex<std::sync::mpsc::Sender<PhotoJob>>> = LazyLock::new(|| {
    let (jobs, queue) = std::sync::mpsc::channel::<PhotoJob>();
    let queue = std::sync::Arc::new(Mutex::new(queue));
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    for i in 0..(cores / 2).max(1) {
        let queue = queue.clone();
        let spawned = std::thread::Builder::new().name(format!("photo-check-{i}")).spawn(move || {
            lower_this_threads_priority();
            loop {
                let job = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                match job {
                    Ok(job) => job(),
                    Err(_) => return,
                }
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a photo thread");
        }
    }
    Mutex::new(jobs)
});

/// Runs `work` on a photo thread and waits for its answer.
async fn on_photo_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, Refusal> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    let job: PhotoJob = Box::new(move || {
        let _ = answer.send(work());
    });
    PHOTO_THREADS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send(job)
        .map_err(|_| Refusal::internal("the photo threads are gone"))?;
    answered.await.map_err(|_| Refusal::internal("a photo thread stopped while checking a photo"))
}

/// Nice 10 for the calling thread (Linux sets priorities per thread). Raising a nice value needs no privilege.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls about the calling thread.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        if libc::setpriority(libc::PRIO_PROCESS, tid, 10) != 0 {
            tracing::warn!("cannot lower the photo thread's CPU priority");
        }
    }
}

fn part_path(state: &AppState, sha256: &str) -> PathBuf {
    state.photo_uploads.join(format!("{sha256}.part"))
}

/// The size and type the visit declared for the photo, if a visit of the uploader's team references it.
async fn declared(state: &AppState, sha256: &str, who: &Uploader<'_>) -> Result<(u64, String), Refusal> {
    if !is_photo_hash(sha256) {
        return Err(Refusal::invalid(format!("{sha256:?} is not a photo's SHA-256 in lowercase hex")));
    }
    let team = who.team.ok_or_else(|| Refusal::forbidden("this device's account is in no team"))?;
    stored::referenced_by_team(&state.db, sha256, team).await?.ok_or_else(|| {
        Refusal::not_found(format!(
            "no visit of team {team} references photo {sha256}: sync the visit first, then upload its photos"
        ))
    })
}

/// Where the upload of `sha256` stands.
pub async fn offset(state: &AppState, sha256: &str, who: &Uploader<'_>) -> Result<UploadState, Refusal> {
    let (size, _) = declared(state, sha256, who).await?;
    if stored::is_held(&state.db, sha256).await? {
        return Ok(UploadState { offset: size, complete: true });
    }
    let held = resumable::held(&part_path(state, sha256)).await;
    Ok(UploadState { offset: held.min(size), complete: false })
}

/// Of `hashes`, those a visit of the uploader's team references and the server still lacks.
pub async fn missing(state: &AppState, hashes: &[String], who: &Uploader<'_>) -> Result<Vec<String>, Refusal> {
    if hashes.len() > 1000 {
        return Err(Refusal::invalid("ask for at most 1,000 photos at a time"));
    }
    if let Some(bad) = hashes.iter().find(|h| !is_photo_hash(h)) {
        return Err(Refusal::invalid(format!("{bad:?} is not a photo's SHA-256 in lowercase hex")));
    }
    let team = who.team.ok_or_else(|| Refusal::forbidden("this device's account is in no team"))?;
    Ok(stored::missing_for_team(&state.db, hashes, team).await?)
}

/// Receives the bytes of `sha256` from `start` on (of `total` in all): appended to what arrived before, and once
/// whole, verified, checked and kept. A body cut short keeps what arrived. Answers where the upload stands.
///
/// Nothing of the body is read before the upload has a turn (`priority`): while syncs run, uploads go one at a
/// time and the rest wait, their bodies held back by the network; one that finds no turn is told to come back.
pub async fn receive<E: std::fmt::Display>(
    state: &AppState,
    sha256: &str,
    start: u64,
    total: u64,
    who: &Uploader<'_>,
    body: impl Stream<Item = Result<Bytes, E>>,
) -> Result<UploadState, Refusal> {
    let _turn = state.syncs_first.turn().await.ok_or_else(|| Refusal::Busy {
        message: "the server is busy with syncs and other uploads: nothing of this photo was taken; it is sent \
                  again at the next sync"
            .into(),
        retry_after_secs: 60,
    })?;
    let (size, media_type) = declared(state, sha256, who).await?;
    if total != size {
        return Err(Refusal::unacceptable(
            "photo_size_mismatch",
            format!("the visit says photo {sha256} has {size} bytes, but this upload says {total}: nothing was taken"),
        ));
    }
    if stored::is_held(&state.db, sha256).await? {
        return Ok(UploadState { offset: size, complete: true });
    }
    let _receiving = RECEIVING.claim(sha256).ok_or_else(|| {
        Refusal::conflict(format!(
            "photo {sha256} is being uploaded by another request now; ask for its offset again in a moment"
        ))
    })?;
    let part = part_path(state, sha256);
    let received = resumable::receive_part(&part, start, size, body).await.map_err(|e| match e {
        PartRefused::WrongOffset { held, start } => Refusal::conflict(format!(
            "the server holds {held} bytes of photo {sha256}; send from byte {held}, not {start}"
        )),
        PartRefused::TooLong { size } => Refusal::unacceptable(
            "photo_size_mismatch",
            format!("the upload sends more than the {size} bytes the visit declared: nothing was taken"),
        ),
        PartRefused::Io(e) => Refusal::internal(format!("receiving photo {sha256} into {}: {e}", part.display())),
    })?;
    if !received.complete {
        return Ok(UploadState { offset: received.held, complete: false });
    }
    let result = finish(state, sha256, &media_type, &part, who).await;
    // Whole: kept or refused, the partial file has served its purpose (a refused one is sent again from 0).
    let _ = tokio::fs::remove_file(&part).await;
    result.map(|()| UploadState { offset: size, complete: true })
}

/// Verifies, checks and keeps a whole upload; refusals are audited (`blob.refused`).
async fn finish(
    state: &AppState,
    sha256: &str,
    declared_type: &str,
    part: &Path,
    who: &Uploader<'_>,
) -> Result<(), Refusal> {
    let expected = sha256.to_string();
    let refuse = |why: String| async move {
        let detail = format!("photo {sha256} from device {}: {why}", who.device_id);
        audit::record(&state.db, Some(who.username), "blob.refused", &detail).await;
        Err(Refusal::unacceptable("photo_refused", why))
    };
    let since = chrono::Utc::now().timestamp_millis() - 24 * 3600 * 1000;
    if stored::uploaded_by_device_since(&state.db, who.device_id, since).await? >= MAX_PHOTOS_PER_DEVICE_DAY {
        return Err(Refusal::unacceptable(
            "photo_limit",
            format!(
                "this device uploaded {MAX_PHOTOS_PER_DEVICE_DAY} photos in the last 24 hours, the most a device may; \
                 the rest wait on the phone and go tomorrow"
            ),
        ));
    }
    // Read, hashed and checked on the photo threads: however many uploads finish at once, only as many photos as
    // those threads are in memory, and at a lower CPU priority than the syncs.
    let path = part.to_path_buf();
    let judged = on_photo_thread(move || -> std::io::Result<Judged> {
        let bytes = std::fs::read(&path)?;
        let actual = crate::blobs::sha256_hex(&bytes);
        Ok(if actual == expected { Judged::Checked(check_photo(&bytes)) } else { Judged::NotThePhoto(actual) })
    })
    .await?
    .map_err(|e| Refusal::internal(format!("reading an upload: {e}")))?;
    let checked = match judged {
        Judged::NotThePhoto(actual) => {
            return refuse(format!(
                "the bytes received are not photo {sha256} (their SHA-256 is {actual}): the upload was discarded; \
                 send the photo again"
            ))
            .await
        }
        Judged::Checked(Ok(checked)) => checked,
        Judged::Checked(Err(why)) => return refuse(why.to_string()).await,
    };
    if checked.media_type != declared_type {
        tracing::info!(sha256, declared_type, actual = checked.media_type, "a photo's declared type differs");
    }
    keep(state, sha256, checked, who).await
}

async fn keep(state: &AppState, sha256: &str, checked: CheckedPhoto, who: &Uploader<'_>) -> Result<(), Refusal> {
    let CheckedPhoto { media_type, width, height, stored: bytes, thumbnail, stripped } = checked;
    let size = bytes.len() as u64;
    debug_assert!(size <= MAX_PHOTO_BYTES);
    let store_error = |e: PutError| match e {
        PutError::Store(e) => Refusal::Store(e),
        other => Refusal::internal(format!("keeping a photo: {other}")),
    };
    // The files first, then their rows and the photo's in one transaction: a row always names a whole file.
    let file = state.blobs.write_unindexed(bytes, media_type).await.map_err(store_error)?;
    let thumb = state.blobs.write_unindexed(thumbnail, "image/jpeg").await.map_err(store_error)?;
    let stripped = stripped.join(",");
    let row = NewPhoto {
        sha256,
        stored_sha256: &file.sha256,
        thumbnail_sha256: &thumb.sha256,
        media_type,
        width,
        height,
        size,
        stripped: &stripped,
        uploaded_by: who.username,
        device_id: Some(who.device_id),
    };
    stored::insert(&state.db, &row, file.size, thumb.size).await?;
    Ok(())
}
