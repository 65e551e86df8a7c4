//! Photo evidence over HTTP. Devices (and a team's hub, with its lead's device): `POST /api/v1/photos/missing`,
//! `GET /api/v1/photos/{sha256}/upload` (how much arrived) and `PUT /api/v1/photos/{sha256}` (bytes from
//! `Upload-Offset` of `Upload-Length`). The office, leads and viewers, each within what they may see:
//! `GET /api/v1/photos` (a gallery page), `GET /api/v1/photos/{sha256}/file|thumbnail`,
//! `GET /api/v1/photos/evidence`; the office: `POST /api/v1/photos/{sha256}/reject`.
//!
//! A photo a reader may not see is answered as if it did not exist (404).

use crate::http::auth::{DeviceAuth, OfficeSession, Session};
use crate::http::blobs::stored_response;
use crate::http::error::{ApiError, ApiResult};
use crate::http::reports::{scope, Scope};
use crate::photos::{review, upload};
use crate::store::photos::{self as stored, GalleryQuery};
use crate::AppState;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use client_core::grid::model::MAX_PHOTO_BYTES;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/photos", get(gallery))
        .route("/api/v1/photos/evidence", get(evidence))
        .route("/api/v1/photos/missing", post(missing))
        .route("/api/v1/photos/{sha256}/upload", get(upload_state))
        .route(
            "/api/v1/photos/{sha256}",
            put(receive).layer(DefaultBodyLimit::max(MAX_PHOTO_BYTES as usize + 64 * 1024)),
        )
        .route("/api/v1/photos/{sha256}/file", get(file))
        .route("/api/v1/photos/{sha256}/thumbnail", get(thumbnail))
        .route("/api/v1/photos/{sha256}/reject", post(reject))
}

fn uploader(device: &DeviceAuth) -> upload::Uploader<'_> {
    upload::Uploader { username: &device.claims.usr, device_id: &device.device_id, team: device.claims.team.as_deref() }
}

#[derive(Deserialize)]
struct MissingBody {
    photos: Vec<String>,
}

async fn missing(
    State(state): State<AppState>,
    device: DeviceAuth,
    body: Result<Json<MissingBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let Json(body) = body.map_err(|e| ApiError::bad_request(format!("expected {{\"photos\": [SHA-256, …]}}: {e}")))?;
    let missing = upload::missing(&state, &body.photos, &uploader(&device)).await?;
    Ok(Json(json!({ "missing": missing })))
}

async fn upload_state(
    State(state): State<AppState>,
    device: DeviceAuth,
    Path(sha256): Path<String>,
) -> ApiResult<Json<upload::UploadState>> {
    Ok(Json(upload::offset(&state, &sha256, &uploader(&device)).await?))
}

fn header_number(headers: &HeaderMap, name: &str) -> ApiResult<Option<u64>> {
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

async fn receive(
    State(state): State<AppState>,
    device: DeviceAuth,
    Path(sha256): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<upload::UploadState>> {
    let start = header_number(&headers, "upload-offset")?.unwrap_or(0);
    let total = header_number(&headers, "upload-length")?.ok_or_else(|| {
        ApiError::bad_request(
            "say the photo's whole size in the Upload-Length header (and where this part starts in Upload-Offset)",
        )
    })?;
    let stream = body.into_data_stream().map(|chunk| chunk.map_err(|e| e.to_string()));
    Ok(Json(upload::receive(&state, &sha256, start, total, &uploader(&device), stream).await?))
}

#[derive(Deserialize)]
struct GalleryParams {
    area: Option<String>,
    place: Option<String>,
    indicator: Option<String>,
    state: Option<String>,
    /// The `next` of the previous page.
    after: Option<String>,
    limit: Option<i64>,
}

/// A page of photos within the reader's scope, the newest visit first; `next` asks for the following page.
async fn gallery(
    State(state): State<AppState>,
    session: Session,
    params: Result<Query<GalleryParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let Query(p) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let Scope { area, team } = scope(&state, &session, p.area.clone()).await?;
    let photo_state = p.state.as_deref().unwrap_or("all");
    if !["all", "standing", "rejected"].contains(&photo_state) {
        return Err(ApiError::bad_request("state is all, standing or rejected"));
    }
    let after = match p.after.as_deref().filter(|a| !a.is_empty()) {
        None => None,
        Some(cursor) => Some(parse_cursor(cursor).ok_or_else(|| {
            ApiError::bad_request("`after` is the `next` value a previous page gave; ask for the first page again")
        })?),
    };
    let limit = p.limit.unwrap_or(60).clamp(1, 200);
    let query = GalleryQuery {
        area: area.as_deref().unwrap_or(""),
        team: team.as_deref().unwrap_or(""),
        place: p.place.as_deref().filter(|s| !s.is_empty()),
        indicator: p.indicator.as_deref().filter(|s| !s.is_empty()),
        state: photo_state,
        after,
        limit,
    };
    let photos = stored::gallery(&state.db, &query).await?;
    let next = (photos.len() as i64 == limit)
        .then(|| photos.last().map(|l| format!("{}.{}.{}", l.visited_at, l.visit_id, l.sha256)))
        .flatten();
    Ok(Json(json!({ "photos": photos, "next": next })))
}

fn parse_cursor(cursor: &str) -> Option<(i64, String, String)> {
    let mut parts = cursor.splitn(3, '.');
    let at = parts.next()?.parse().ok()?;
    let visit = parts.next()?.to_string();
    let sha = parts.next()?.to_string();
    Some((at, visit, sha))
}

/// Whether the reader may see photo `sha256`: one of the places it shows is within their scope.
async fn may_see(state: &AppState, session: &Session, sha256: &str) -> ApiResult<bool> {
    let Scope { area, team } = scope(state, session, None).await?;
    for place in stored::places_of(&state.db, sha256).await? {
        if stored::place_in_scope(&state.db, &place, area.as_deref().unwrap_or(""), team.as_deref().unwrap_or(""))
            .await?
        {
            return Ok(true);
        }
    }
    Ok(false)
}

async fn file(state: State<AppState>, session: Session, sha256: Path<String>, headers: HeaderMap) -> Response {
    photo_file(state, session, sha256, headers, false).await
}

async fn thumbnail(state: State<AppState>, session: Session, sha256: Path<String>, headers: HeaderMap) -> Response {
    photo_file(state, session, sha256, headers, true).await
}

async fn photo_file(
    State(state): State<AppState>,
    session: Session,
    Path(sha256): Path<String>,
    headers: HeaderMap,
    thumbnail: bool,
) -> Response {
    let answer = async {
        if !may_see(&state, &session, &sha256).await? {
            return Ok(None);
        }
        let Some((file, thumb)) = stored::files_of(&state.db, &sha256).await? else { return Ok(None) };
        let Some(blob) = state.blobs.row(if thumbnail { &thumb } else { &file }).await? else { return Ok(None) };
        stored_response(&state.blobs, blob, &headers).await
    };
    match answer.await {
        Ok(Some(response)) => response,
        Ok(None) => ApiError::not_found(format!("no photo {sha256} has arrived that you may see")).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct RejectBody {
    visit: String,
    reason: String,
}

async fn reject(
    State(state): State<AppState>,
    OfficeSession(session): OfficeSession,
    Path(sha256): Path<String>,
    body: Result<Json<RejectBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let Json(body) =
        body.map_err(|e| ApiError::bad_request(format!("expected {{\"visit\": ID, \"reason\": TEXT}}: {e}")))?;
    review::reject(&state, &body.visit, &sha256, &body.reason, &session.0.usr).await?;
    Ok(Json(json!({ "rejected": sha256, "visit": body.visit })))
}

#[derive(Deserialize)]
struct EvidenceParams {
    area: Option<String>,
}

/// For each indicator that asks for a photo: reached places within the reader's scope, and how many of them have
/// evidence that arrived and stands.
async fn evidence(
    State(state): State<AppState>,
    session: Session,
    params: Result<Query<EvidenceParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let Query(p) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let Scope { area, team } = scope(&state, &session, p.area).await?;
    let campaign = state.campaigns.current();
    let asking: Vec<String> =
        campaign.campaign.indicators.iter().filter(|i| i.photo_required).map(|i| i.id.clone()).collect();
    let counts =
        stored::evidence_counts(&state.db, area.as_deref().unwrap_or(""), team.as_deref().unwrap_or(""), &asking)
            .await?;
    let rows: Vec<serde_json::Value> = asking
        .iter()
        .map(|id| {
            let (reached, evidenced) = counts.iter().find(|(i, _, _)| i == id).map_or((0, 0), |(_, r, e)| (*r, *e));
            json!({ "indicator": id, "reached": reached, "with_evidence": evidenced })
        })
        .collect();
    Ok(Json(json!({ "indicators": rows })))
}
