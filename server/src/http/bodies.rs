//! Request bodies: how fast they must arrive, how many large ones are taken in at once, and how a territory file is
//! received without holding it in memory.
//!
//! Every handler reads its body only after its caller's token and role were checked (by extractors that run
//! before the body extractor), so nothing here is spent on a caller who may not send the body at all.

use crate::http::error::ApiError;
use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use std::error::Error;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Largest sync body: a device's whole history for several grids.
pub const MAX_BULK_BODY: usize = 64 * 1024 * 1024;
/// Largest territory file, inflated: a province of about four million places (about 120 bytes a place).
pub const MAX_IMPORT_BODY: usize = 512 * 1024 * 1024;
/// Largest body of any other request.
pub const MAX_SMALL_BODY: usize = 64 * 1024;

/// Territory files received or applied at the same time. Each is spooled to disk, so memory is not what this
/// bounds; imports apply one at a time anyway, and a third import while two are in hand is more likely a repeated
/// click than intent.
pub const MAX_IMPORTS_IN_FLIGHT: usize = 2;
/// A sync body larger than this, inflated, is large: a volunteer's day of a few hundred visits is a few hundred KB
/// (about 110 bytes a visit gzipped on the wire, a few times that inflated).
pub const LARGE_SYNC_BODY: usize = 1 << 20;
/// Large sync bodies held in memory at the same time (each up to the sync limit of 64 MiB).
pub const MAX_LARGE_SYNCS_IN_FLIGHT: usize = 4;
/// What a client refused for lack of a permit is told to wait, in seconds.
const RETRY_AFTER_SECS: u64 = 30;

/// The permits for large uploads and where territory files are spooled.
pub struct Uploads {
    spool_dir: PathBuf,
    imports: Arc<Semaphore>,
    large_syncs: Arc<Semaphore>,
}

impl Uploads {
    /// Territory files are spooled in `spool_dir` (the data dir: it is on the server's disk, where `/tmp` may be
    /// memory).
    pub fn new(spool_dir: &Path) -> Uploads {
        Uploads {
            spool_dir: spool_dir.to_path_buf(),
            imports: Arc::new(Semaphore::new(MAX_IMPORTS_IN_FLIGHT)),
            large_syncs: Arc::new(Semaphore::new(MAX_LARGE_SYNCS_IN_FLIGHT)),
        }
    }

    /// A permit to receive and apply a territory file, or 503 at once if as many are in hand already.
    pub fn admit_import(&self) -> Result<OwnedSemaphorePermit, Busy> {
        self.imports.clone().try_acquire_owned().map_err(|_| Busy {
            message: format!(
                "{MAX_IMPORTS_IN_FLIGHT} territory imports are being received or applied already; \
                 try again when they have finished"
            ),
        })
    }
}

/// A request refused because the server has as many of its kind in hand as it takes: 503 with `Retry-After`.
#[derive(Debug)]
pub struct Busy {
    pub message: String,
}

impl IntoResponse for Busy {
    fn into_response(self) -> Response {
        let mut response = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", self.message).into_response();
        response.headers_mut().insert(header::RETRY_AFTER, RETRY_AFTER_SECS.into());
        response
    }
}

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for Busy {}

/// Why a body could not be read: as the client's error it is.
pub enum BodyError {
    Api(ApiError),
    Busy(Busy),
}

impl IntoResponse for BodyError {
    fn into_response(self) -> Response {
        match self {
            BodyError::Api(e) => e.into_response(),
            BodyError::Busy(b) => b.into_response(),
        }
    }
}

impl From<ApiError> for BodyError {
    fn from(e: ApiError) -> Self {
        BodyError::Api(e)
    }
}

impl From<crate::refusal::Refusal> for BodyError {
    fn from(e: crate::refusal::Refusal) -> Self {
        BodyError::Api(e.into())
    }
}

fn too_large(limit: usize, advice: &str) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("the request body is over the limit of {limit} bytes ({advice})"),
    )
}

/// The client's error for a body that failed while being read: too slow (408), over a size limit (413), or
/// unreadable (400: e.g. a damaged gzip stream).
pub fn read_error(error: &(dyn Error + 'static)) -> ApiError {
    if let Some(slow) = cause::<BodyTooSlow>(error) {
        return ApiError::new(StatusCode::REQUEST_TIMEOUT, "too_slow", slow.to_string());
    }
    if cause::<http_body_util::LengthLimitError>(error).is_some() {
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "request body too large");
    }
    ApiError::bad_request(format!("the request body could not be read: {error}"))
}

/// The first error of type `T` in `error`'s chain of sources.
fn cause<'e, T: Error + 'static>(error: &'e (dyn Error + 'static)) -> Option<&'e T> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

/// Reads a sync body of at most `limit` bytes. One over `LARGE_SYNC_BODY` takes one of the large-sync permits
/// while it is read, or is refused with 503 if none is free; the permit comes back with the body, to be held
/// until the request is answered.
pub async fn read_sync_body(
    uploads: &Uploads,
    body: Body,
    limit: usize,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), BodyError> {
    let mut stream = body.into_data_stream();
    let mut buffer = Vec::new();
    let mut permit = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| read_error(&e))?;
        if buffer.len() + chunk.len() > limit {
            return Err(too_large(limit, "sync fewer grids at a time").into());
        }
        if permit.is_none() && buffer.len() + chunk.len() > LARGE_SYNC_BODY {
            permit = Some(uploads.large_syncs.clone().try_acquire_owned().map_err(|_| {
                BodyError::Busy(Busy {
                    message: format!(
                        "the server is receiving {MAX_LARGE_SYNCS_IN_FLIGHT} large syncs already; \
                         this device will try again at its next sync"
                    ),
                })
            })?);
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok((Bytes::from(buffer), permit))
}

/// A territory file received into an unnamed temporary file and mapped into memory: its pages belong to the
/// page cache, which the kernel can write back and drop, not to the server's heap.
pub struct Spooled {
    map: memmap2::Mmap,
}

impl std::ops::Deref for Spooled {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map
    }
}

/// Receives a body of at most `limit` bytes into a temporary file in the spool directory, a chunk at a time.
pub async fn spool(uploads: &Uploads, body: Body, limit: usize, advice: &str) -> Result<Spooled, ApiError> {
    let storage = |e: std::io::Error| {
        tracing::error!(error = %e, "cannot write an upload to the data dir");
        ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "storage_full",
            "the server cannot write the file to its disk (full or failing); nothing was imported; try again later",
        )
    };
    let dir = uploads.spool_dir.clone();
    // Unnamed (O_TMPFILE where the file system has it): nothing is left behind if the server stops midway.
    let mut file = tokio::task::spawn_blocking(move || tempfile::tempfile_in(dir))
        .await
        .map_err(ApiError::internal)?
        .map_err(storage)?;
    let mut stream = body.into_data_stream();
    let mut written = 0usize;
    // Chunks are gathered to about a MiB before each blocking write.
    let mut pending = Vec::with_capacity(1 << 20);
    loop {
        let chunk = stream.next().await.transpose().map_err(|e| read_error(&e))?;
        if let Some(chunk) = &chunk {
            written += chunk.len();
            if written > limit {
                return Err(too_large(limit, advice));
            }
            pending.extend_from_slice(chunk);
        }
        if pending.len() >= 1 << 20 || (chunk.is_none() && !pending.is_empty()) {
            let data = std::mem::replace(&mut pending, Vec::with_capacity(1 << 20));
            file = tokio::task::spawn_blocking(move || file.write_all(&data).map(|()| file))
                .await
                .map_err(ApiError::internal)?
                .map_err(storage)?;
        }
        if chunk.is_none() {
            break;
        }
    }
    // SAFETY: the file is unnamed and only this function holds it, so no one changes it while it is mapped.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(ApiError::internal)?;
    Ok(Spooled { map })
}

/// How fast a request's body must arrive: all of it within `timeout` of the first read, plus a second for every
/// `min_rate` bytes received (so a large body on a slow but steady link gets the time it needs, and a client
/// trickling a byte now and then is cut off).
#[derive(Debug, Clone, Copy)]
pub struct BodyPace {
    pub timeout: Duration,
    pub min_rate: u64,
}

/// The body's deadline passed: the client sends too slowly, or stopped.
#[derive(Debug)]
pub struct BodyTooSlow {
    received: u64,
    pace: BodyPace,
}

impl std::fmt::Display for BodyTooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body arrived too slowly ({} bytes received; the server waits {} s plus a second per {} \
             bytes); check the network and try again",
            self.received,
            self.pace.timeout.as_secs(),
            self.pace.min_rate
        )
    }
}

impl Error for BodyTooSlow {}

/// Gives every request body the deadline of `pace` (see `BodyPace`).
pub async fn pace_bodies(
    axum::extract::State(pace): axum::extract::State<BodyPace>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let request =
        request.map(|body| Body::new(PacedBody { inner: body, pace, received: 0, started: None, timer: None }));
    next.run(request).await
}

struct PacedBody {
    inner: Body,
    pace: BodyPace,
    received: u64,
    /// When the body was first read: time spent before that (waiting for the caller's checks) is not the
    /// client's.
    started: Option<tokio::time::Instant>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl PacedBody {
    fn deadline(&self, started: tokio::time::Instant) -> tokio::time::Instant {
        let earned = Duration::from_secs_f64(self.received as f64 / self.pace.min_rate.max(1) as f64);
        started + self.pace.timeout + earned
    }
}

impl http_body::Body for PacedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let started = *this.started.get_or_insert_with(tokio::time::Instant::now);
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    let deadline = this.deadline(started);
                    if let Some(timer) = this.timer.as_mut() {
                        timer.as_mut().reset(deadline);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(other) => Poll::Ready(other.map(|r| r.map_err(Into::into))),
            Poll::Pending => {
                let deadline = this.deadline(started);
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        Poll::Ready(Some(Err(Box::new(BodyTooSlow { received: this.received, pace: this.pace }))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    fn body_of(chunks: Vec<Bytes>) -> Body {
        Body::from_stream(stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>)))
    }

    /// A large sync body takes one of the permits while it is held; with none free it is refused with 503 and
    /// `Retry-After`, and small bodies never need one.
    #[tokio::test]
    async fn large_sync_bodies_are_bounded_in_number() {
        let dir = tempfile::tempdir().unwrap();
        let uploads = Uploads::new(dir.path());
        let large = || body_of(vec![Bytes::from(vec![0u8; LARGE_SYNC_BODY]); 2]);
        let mut held = Vec::new();
        for _ in 0..MAX_LARGE_SYNCS_IN_FLIGHT {
            let (bytes, permit) = read_sync_body(&uploads, large(), 64 << 20).await.ok().unwrap();
            assert_eq!(bytes.len(), 2 * LARGE_SYNC_BODY);
            held.push(permit.expect("a large body holds a permit"));
        }
        let refused = read_sync_body(&uploads, large(), 64 << 20).await.err().unwrap().into_response();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "30");
        let (_, permit) =
            read_sync_body(&uploads, body_of(vec![Bytes::from_static(b"small")]), 64 << 20).await.ok().unwrap();
        assert!(permit.is_none());
        held.pop();
        assert!(read_sync_body(&uploads, large(), 64 << 20).await.ok().unwrap().1.is_some());
        let over = read_sync_body(&uploads, large(), LARGE_SYNC_BODY).await.err().unwrap().into_response();
        assert_eq!(over.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    /// A body that stops arriving fails once its time is up, and its reader answers 408; one that keeps coming
    /// at the minimum rate is read whole.
    #[tokio::test]
    async fn a_body_that_stops_arriving_gets_408() {
        // 13 bytes received earn 13 µs beyond the 200 ms.
        let pace = BodyPace { timeout: Duration::from_millis(200), min_rate: 1_000_000 };
        let stalled =
            stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"{\"username\": "))]).chain(stream::pending());
        let body =
            Body::new(PacedBody { inner: Body::from_stream(stalled), pace, received: 0, started: None, timer: None });
        let error = axum::body::to_bytes(body, 1 << 20).await.unwrap_err();
        let answer = read_error(&error);
        assert_eq!(answer.status, StatusCode::REQUEST_TIMEOUT, "{}", answer.message);
        assert!(answer.message.contains("arrived too slowly"), "{}", answer.message);

        let steady =
            stream::iter((0..5).map(|_| Ok::<_, std::io::Error>(Bytes::from_static(b"x")))).then(|chunk| async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                chunk
            });
        let pace = BodyPace { timeout: Duration::from_millis(200), min_rate: 5 };
        let body =
            Body::new(PacedBody { inner: Body::from_stream(steady), pace, received: 0, started: None, timer: None });
        assert_eq!(axum::body::to_bytes(body, 1 << 20).await.unwrap().len(), 5);
    }
}
