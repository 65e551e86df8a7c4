//! `POST /api/v1/blobs?name=` (the office or a publisher uploads an attachment) and `GET /api/v1/blobs/{sha256}`
//! (a device reads an attachment of a bulletin meant for it, by ranges if it likes), and the file response with
//! `Range`, `ETag` and caching that a team's hub serves the same way (`file_response`), whichever backend the
//! store keeps its files in (a directory or an S3-compatible bucket: `blobs::BlobStore::read`).
//!
//! A reader that may not read a file is told it does not exist: 404 for unknown and not permitted alike.

use crate::accounts::audit;
use crate::blobs::{self, Blob, OpenBlob, PutError, MAX_ATTACHMENT_BYTES};
use crate::http::auth::{may_publish, DeviceAuth, PublisherSession, Session};
use crate::http::bodies;
use crate::http::error::{ApiError, ApiResult};
use crate::AppState;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde_json::json;

/// Counts reads of stored files by outcome (`served`, `not_found`): how often the server sends each team a file.
pub const BLOB_READS: &str = "doorstep_blob_reads_total";

/// What a file response says about caching: a file never changes under its name.
pub const CACHE_CONTROL: &str = "private, max-age=31536000, immutable";

/// A file's name is at most this long, in bytes.
const MAX_NAME_BYTES: usize = 200;

pub fn routes() -> Router<AppState> {
    Router::new()
        // The body is read by the handler within its own bound; this only keeps axum's default out of the way.
        .route("/api/v1/blobs", post(upload).layer(DefaultBodyLimit::max(MAX_ATTACHMENT_BYTES + 64 * 1024)))
        .route("/api/v1/blobs/{sha256}", get(download))
}

#[derive(serde::Deserialize)]
pub struct UploadQuery {
    name: Option<String>,
}

/// Stores the body as a file: 201 `{sha256, size, type, name}`; the same bytes twice give the same answer.
async fn upload(
    State(state): State<AppState>,
    PublisherSession(session): PublisherSession,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let name = query.name.as_deref().map(str::trim).unwrap_or_default().to_string();
    if name.is_empty() {
        return Err(ApiError::bad_request("name the file: POST /api/v1/blobs?name=FILE-NAME"));
    }
    if name.len() > MAX_NAME_BYTES || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "a file name is at most {MAX_NAME_BYTES} bytes, without control characters"
        )));
    }
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    if let Some(size) = declared.filter(|&size: &u64| size > MAX_ATTACHMENT_BYTES as u64) {
        return Err(too_large(size));
    }
    let mut bytes = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| bodies::read_error(&e))?;
        if bytes.len() + chunk.len() > MAX_ATTACHMENT_BYTES {
            return Err(too_large((bytes.len() + chunk.len()) as u64));
        }
        bytes.extend_from_slice(&chunk);
    }
    let put = state.blobs.put(bytes, &session.0.usr).await;
    if let Err(PutError::NotAccepted(why)) = &put {
        // A file refused for its content is worth knowing about (a renamed file, something else sent as a photo).
        audit::record(&state.db, Some(&session.0.usr), "blob.refused", &format!("{name}: {why}")).await;
    }
    let blob = put.map_err(|e| match e {
        PutError::NotAccepted(message) => {
            ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_type", message)
        }
        PutError::TooLarge(message) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message),
        PutError::Disk(e) if state.blobs.is_s3() => {
            tracing::error!(error = %e, "cannot write an attachment to the blob store's bucket");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "the server cannot write the file to its storage bucket (unreachable or refusing); nothing was \
                 stored; try again later",
            )
        }
        PutError::Disk(e) => {
            tracing::error!(error = %e, "cannot write an attachment to the data dir");
            ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "storage_full",
                "the server cannot write the file to its disk (full or failing); nothing was stored; try again later",
            )
        }
        PutError::Store(e) => e.into(),
    })?;
    let Blob { sha256, size, content_type } = blob;
    let detail = format!("{name}: {sha256} ({content_type}, {size} bytes)");
    audit::record(&state.db, Some(&session.0.usr), "blob.upload", &detail).await;
    Ok((StatusCode::CREATED, Json(json!({ "sha256": sha256, "size": size, "type": content_type, "name": name }))))
}

fn too_large(size: u64) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", blobs::too_large_message(size))
}

/// A stored file, to a device it is meant for or to the office or a publisher (see the module's comment).
async fn download(
    State(state): State<AppState>,
    Path(sha256): Path<String>,
    session: Result<Session, ApiError>,
    device: Result<DeviceAuth, ApiError>,
    headers: HeaderMap,
) -> Response {
    let allowed = match (session, device) {
        (Ok(session), _) => may_publish(&state, &session).await,
        (_, Ok(device)) => {
            state.blobs.device_may_read(&sha256, device.claims.team.as_deref()).await.map_err(ApiError::from)
        }
        (Err(_), Err(refused)) => return refused.into_response(),
    };
    let row = match allowed {
        Ok(true) => state.blobs.row(&sha256).await.map_err(ApiError::from),
        Ok(false) => Ok(None),
        Err(e) => Err(e),
    };
    let answered = match row {
        Ok(Some(blob)) => stored_response(&state.blobs, blob, &headers).await,
        Ok(None) => Ok(None),
        Err(e) => Err(e),
    };
    match answered {
        Ok(Some(response)) => {
            metrics::counter!(BLOB_READS, "outcome" => "served").increment(1);
            response
        }
        Ok(None) => {
            metrics::counter!(BLOB_READS, "outcome" => "not_found").increment(1);
            ApiError::not_found(format!("no file {sha256}")).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// The answer to a request for the stored file `blob` (its row), read from wherever the store keeps it, with
/// `Range`, `ETag` and caching (`plan_response`); `None` if its file is missing or damaged (for every answer, 304
/// and 416 included: as if it were not stored). For any reader of the store (attachments, photos), once the
/// caller has checked that the requester may read the file.
pub(crate) async fn stored_response(
    store: &blobs::BlobStore,
    blob: Blob,
    request: &HeaderMap,
) -> Result<Option<Response>, ApiError> {
    match plan_response(&blob, request) {
        Planned::Answered(response) => Ok(store.holds(&blob).await?.then_some(response)),
        Planned::Send(send) => {
            let Some(pieces) = store.read(&blob, Some(send.start..send.start + send.length)).await? else {
                return Ok(None);
            };
            Ok(Some(send.respond(Body::from_stream(pieces))))
        }
    }
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeAsk {
    /// No range, or one this server ignores (another unit, several ranges, malformed): the whole file.
    Whole,
    /// Bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// A range that starts past the end.
    Unsatisfiable,
}

/// Reads `bytes=N-`, `bytes=N-M` and `bytes=-N` (the last N bytes).
pub fn range_ask(header: Option<&str>, size: u64) -> RangeAsk {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return RangeAsk::Whole };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else { return RangeAsk::Whole };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        return match last.parse::<u64>() {
            Ok(0) => RangeAsk::Unsatisfiable,
            Ok(_) if size == 0 => RangeAsk::Unsatisfiable,
            Ok(n) => RangeAsk::Part { start: size.saturating_sub(n), end: size - 1 },
            Err(_) => RangeAsk::Whole,
        };
    }
    let Ok(start) = first.parse::<u64>() else { return RangeAsk::Whole };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match last.parse::<u64>() {
            Ok(end) if end >= start => end,
            _ => return RangeAsk::Whole,
        }
    };
    if start >= size {
        return RangeAsk::Unsatisfiable;
    }
    RangeAsk::Part { start, end: end.min(size - 1) }
}

/// What a request asks of a file, decided from its headers and the file's row before a byte of it is read.
enum Planned {
    /// An answer without the file's bytes: 304 (the caller holds it) or 416 (a range past its end).
    Answered(Response),
    /// The bytes to send, and the status and headers to send them with.
    Send(Sending),
}

struct Sending {
    status: StatusCode,
    headers: HeaderMap,
    start: u64,
    length: u64,
}

impl Sending {
    fn respond(self, body: Body) -> Response {
        (self.status, self.headers, body).into_response()
    }
}

/// Decides the answer to a request for `blob`: 200 with the whole file, 206 with the range asked, 416 for a range
/// past its end, 304 when the caller holds it already (`If-None-Match`).
fn plan_response(blob: &Blob, request: &HeaderMap) -> Planned {
    let etag = format!("\"{}\"", blob.sha256);
    let header_of = |name: header::HeaderName| request.get(name).and_then(|v| v.to_str().ok());
    let mut headers = HeaderMap::new();
    let mut set = |name: header::HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set(header::ETAG, &etag);
    set(header::CACHE_CONTROL, CACHE_CONTROL);
    set(header::ACCEPT_RANGES, "bytes");
    if header_of(header::IF_NONE_MATCH).is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return Planned::Answered((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    set(header::CONTENT_TYPE, &blob.content_type);
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // Images and PDFs are compressed already; and the bytes sent must be the file's, so that a reader can resume
    // at the length it holds. (The compression layer leaves a response with an encoding alone.)
    set(header::CONTENT_ENCODING, "identity");
    // A range applies only to the file the caller started with (`If-Range`); a file never changes, but say so.
    let range = match header_of(header::IF_RANGE) {
        Some(tag) if tag.trim() != etag => None,
        _ => header_of(header::RANGE),
    };
    let (status, start, length) = match range_ask(range, blob.size) {
        RangeAsk::Whole => (StatusCode::OK, 0, blob.size),
        RangeAsk::Part { start, end } => {
            set(header::CONTENT_RANGE, &format!("bytes {start}-{end}/{}", blob.size));
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeAsk::Unsatisfiable => {
            let mut response = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the file has {} bytes; the range asked starts past its end", blob.size),
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes */{}", blob.size)).unwrap());
            return Planned::Answered(response);
        }
    };
    set(header::CONTENT_LENGTH, &length.to_string());
    Planned::Send(Sending { status, headers, start, length })
}

/// Answers a request for a file opened on disk (a team's hub's cache) as the server answers for its store:
/// 200, 206, 416 or 304 (`plan_response`), streamed from the file a piece at a time.
pub async fn file_response(opened: OpenBlob, request: &HeaderMap) -> Response {
    use tokio::io::AsyncSeekExt;
    let OpenBlob { blob, mut file } = opened;
    match plan_response(&blob, request) {
        Planned::Answered(response) => response,
        Planned::Send(send) => {
            if send.start > 0 {
                if let Err(e) = file.seek(std::io::SeekFrom::Start(send.start)).await {
                    return ApiError::internal(format!("seeking in a stored file: {e}")).into_response();
                }
            }
            let length = send.length;
            send.respond(Body::from_stream(blobs::file_stream(file, length)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ranges a resuming reader sends, and the edge cases around the end of the file.
    #[test]
    fn reads_ranges() {
        use RangeAsk::*;
        assert_eq!(range_ask(None, 10), Whole);
        assert_eq!(range_ask(Some("bytes=0-"), 10), Part { start: 0, end: 9 });
        assert_eq!(range_ask(Some("bytes=4-"), 10), Part { start: 4, end: 9 });
        assert_eq!(range_ask(Some("bytes=4-6"), 10), Part { start: 4, end: 6 });
        assert_eq!(range_ask(Some("bytes=4-60"), 10), Part { start: 4, end: 9 });
        assert_eq!(range_ask(Some("bytes=-3"), 10), Part { start: 7, end: 9 });
        assert_eq!(range_ask(Some("bytes=-30"), 10), Part { start: 0, end: 9 });
        assert_eq!(range_ask(Some("bytes=10-"), 10), Unsatisfiable);
        assert_eq!(range_ask(Some("bytes=10-12"), 10), Unsatisfiable);
        assert_eq!(range_ask(Some("bytes=-0"), 10), Unsatisfiable);
        assert_eq!(range_ask(Some("bytes=6-4"), 10), Whole);
        assert_eq!(range_ask(Some("bytes=0-1,4-5"), 10), Whole);
        assert_eq!(range_ask(Some("items=0-1"), 10), Whole);
        assert_eq!(range_ask(Some("bytes=x-"), 10), Whole);
    }
}
