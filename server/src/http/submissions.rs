//! `/api/v1/roster`, `/api/v1/submissions`, `/api/v1/situations`: the liaison roster, the monthly written
//! submissions and the situation reports of villages and communities (`crate::submissions`). Only the office and
//! viewers (a village cadre is a viewer scoped to their area) are let in; what each may read or write is decided
//! by the domain. Every write is audited.

use crate::accounts::audit;
use crate::accounts::people;
use crate::accounts::tokens::Role;
use crate::http::auth::Session;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::json_body;
use crate::reports::time::parse_offset;
use crate::submissions::monthly::{self, StatusRow, Submission, Texts};
use crate::submissions::roster::{self, NewEntry, Roster};
use crate::submissions::situations::{self, NewSituation, Situation, Situations};
use crate::submissions::Actor;
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::FixedOffset;
use serde::de::DeserializeOwned;
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/roster", get(read_roster))
        .route("/api/v1/roster/export.xlsx", get(export_roster))
        .route("/api/v1/roster/deadline", post(set_deadline))
        .route("/api/v1/roster/areas/{area}", post(replace_roster))
        .route("/api/v1/submissions", get(list_submissions))
        .route("/api/v1/submissions/{area}/{month}", get(open_submission).post(save_submission))
        .route("/api/v1/submissions/{area}/{month}/submit", post(submit_submission))
        .route("/api/v1/situations", get(list_situations))
        .route("/api/v1/situations/{area}", post(file_situation))
        .route("/api/v1/situations/{id}/read", post(read_situation))
}

/// The office or a viewer with an area, checked before any body is read.
pub struct ActorSession(pub Actor);

impl FromRequestParts<AppState> for ActorSession {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Session(claims) = Session::from_request_parts(parts, state).await?;
        match claims.role {
            Role::Office => Ok(ActorSession(Actor::Office { username: claims.usr })),
            Role::Viewer => {
                let area = people::area_of(&state.db, &claims.sub)
                    .await?
                    .ok_or_else(|| ApiError::forbidden("this viewer account has no area; ask the office to set one"))?;
                Ok(ActorSession(Actor::Cadre { username: claims.usr, area }))
            }
            other => Err(ApiError::forbidden(format!(
                "the {} role may not read or write the liaison roster, monthly submissions or situation reports \
                 (the office and village cadres do)",
                other.as_str()
            ))),
        }
    }
}

/// Reads a JSON body: called once the caller was found allowed, so that nobody else gets the server to read one.
async fn body<T: DeserializeOwned>(request: Request, state: &AppState) -> ApiResult<T> {
    json_body(Json::<T>::from_request(request, state).await)
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> ApiResult<T> {
    q.map(|Query(v)| v).map_err(|e| ApiError::bad_request(e.body_text()))
}

#[derive(Deserialize)]
struct OffsetQuery {
    #[serde(default)]
    utc_offset: Option<String>,
}

impl OffsetQuery {
    fn offset(&self) -> ApiResult<FixedOffset> {
        Ok(parse_offset(self.utc_offset.as_deref())?)
    }
}

async fn read_roster(State(state): State<AppState>, ActorSession(actor): ActorSession) -> ApiResult<Json<Roster>> {
    Ok(Json(roster::read(&state, &actor).await?))
}

#[derive(Deserialize)]
struct Entries {
    entries: Vec<NewEntry>,
}

async fn replace_roster(
    State(state): State<AppState>,
    ActorSession(actor): ActorSession,
    Path(area): Path<String>,
    request: Request,
) -> ApiResult<Json<Roster>> {
    roster::may_write(&actor, &area)?;
    let body: Entries = body(request, &state).await?;
    let name = roster::replace(&state, &actor, &area, &body.entries).await?;
    // Names and duties, never the phones: the audit log is read more widely than the roster's phones.
    let who: Vec<String> = body.entries.iter().map(|e| format!("{} {}", e.duty, e.name.trim())).collect();
    let detail = format!("{area} {name}: {} entries ({})", body.entries.len(), who.join(", "));
    audit::record(&state.db, Some(actor.username()), "roster.update", &detail).await;
    Ok(Json(roster::read(&state, &actor).await?))
}

#[derive(Deserialize)]
struct Deadline {
    deadline: String,
}

async fn set_deadline(
    State(state): State<AppState>,
    ActorSession(actor): ActorSession,
    request: Request,
) -> ApiResult<Json<Roster>> {
    if !matches!(actor, Actor::Office { .. }) {
        return Err(ApiError::forbidden("only the office sets the roster's deadline"));
    }
    let body: Deadline = body(request, &state).await?;
    let set = roster::set_deadline(&state, &body.deadline).await?;
    let detail = set.as_deref().unwrap_or("cleared").to_string();
    audit::record(&state.db, Some(actor.username()), "roster.deadline", &detail).await;
    Ok(Json(roster::read(&state, &actor).await?))
}

/// The roster as the seed's XLSX, with the phones the reader may see.
async fn export_roster(State(state): State<AppState>, ActorSession(actor): ActorSession) -> ApiResult<Response> {
    let read = roster::read(&state, &actor).await?;
    let mut towns: Vec<&str> = read.areas.iter().filter_map(|a| a.town_name.as_deref()).collect();
    towns.sort_unstable();
    towns.dedup();
    let place = if towns.len() == 1 { towns[0] } else { "" };
    let bytes = roster::xlsx(&read, &format!("{place}反诈宣传工作分管领导及联络员名单"))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"roster.xlsx\""),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Deserialize)]
struct MonthQuery {
    month: Option<String>,
    #[serde(default)]
    utc_offset: Option<String>,
}

async fn list_submissions(
    State(state): State<AppState>,
    ActorSession(actor): ActorSession,
    q: Result<Query<MonthQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<StatusRow>>> {
    let q = query(q)?;
    let month = q.month.ok_or_else(|| ApiError::bad_request("month is required, e.g. month=2026-11"))?;
    let offset = parse_offset(q.utc_offset.as_deref())?;
    Ok(Json(monthly::list(&state, &actor, &month, offset).await?))
}

async fn open_submission(
    State(state): State<AppState>,
    ActorSession(actor): ActorSession,
    Path((area, month)): Path<(String, String)>,
    q: Result<Query<OffsetQuery>, QueryRejection>,
) -> ApiResult<Json<Submission>> {
    let offset = query(q)?.offset()?;
    Ok(Json(monthly::open(&state, &actor, &area, &month, offset).await?))
}

async fn save_submission(
    State(state): State<AppState>,
    ActorSession(actor): ActorSession,
    Path((area, month)): Path<(String, String)>,
    q: Result<Query<OffsetQuery>, QueryRejection>,
    request: Request,
) -> ApiResult<Json<Submission>> {
    let offset = query(q)?.offset()?;
    monthly::may_write(&actor, &area)?;
    let texts: Texts = body(request, &state).await?;
    let saved = monthly::save(&state, &actor, &area, &month, &texts, false, offset).await?;
    audit::record(&state.db, Some(actor.username()), "submission.save", &format!("{area} {month} draft")).await;
    Ok(Json(saved))
}

async fn submit_submission(
    State(state): State<AppState>,
    ActorSession(actor): ActorSession,
    Path((area, month)): Path<(String, String)>,
    q: Result<Query<OffsetQuery>, QueryRejection>,
    request: Request,
) -> ApiResult<Json<Submission>> {
    let offset = query(q)?.offset()?;
    monthly::may_write(&actor, &area)?;
    let texts: Texts = body(request, &state).await?;
    let saved = monthly::save(&state, &actor, &area, &month, &texts, true, offset).await?;
    let detail = format!("{area} {month} submitted ({})", saved.status);
    audit::record(&state.db, Some(actor.username()), "submission.submit", &detail).await;
    Ok(Json(saved))
}

async fn list_situations(
    State(state): State<AppState>,
    ActorSession(actor): ActorSession,
    q: Result<Query<OffsetQuery>, QueryRejection>,
) -> ApiResult<Json<Situations>> {
    let offset = query(q)?.offset()?;
    Ok(Json(situations::list(&state, &actor, offset).await?))
}

async fn file_situation(
    State(state): State<AppState>,
    ActorSession(actor): ActorSession,
    Path(area): Path<String>,
    q: Result<Query<OffsetQuery>, QueryRejection>,
    request: Request,
) -> ApiResult<Json<Situation>> {
    let offset = query(q)?.offset()?;
    situations::may_file(&actor, &area)?;
    let new: NewSituation = body(request, &state).await?;
    let filed = situations::file(&state, &actor, &area, &new, offset).await?;
    let detail = format!("{} {} {}: {}", filed.report_id, filed.area, filed.urgency, filed.title);
    audit::record(&state.db, Some(actor.username()), "situation.file", &detail).await;
    Ok(Json(filed))
}

async fn read_situation(
    State(state): State<AppState>,
    ActorSession(actor): ActorSession,
    Path(id): Path<String>,
    q: Result<Query<OffsetQuery>, QueryRejection>,
) -> ApiResult<Json<Situation>> {
    let offset = query(q)?.offset()?;
    let (report, first) = situations::mark_read(&state, &actor, &id, offset).await?;
    if first {
        audit::record(&state.db, Some(actor.username()), "situation.read", &format!("{id} {}", report.area)).await;
    }
    Ok(Json(report))
}
