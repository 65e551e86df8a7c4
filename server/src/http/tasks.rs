//! The urgent task endpoints and their role checks: the office creates and evaluates tasks; the office reads every
//! task and a lead their own team's. Volunteers receive tasks through sync only; viewers never see them (they name
//! people at risk).

use crate::accounts::tokens::Role;
use crate::http::auth::{OfficeSession, Session};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{json_body, own_team};
use crate::reports::time::parse_offset;
use crate::tasks::read::{self, StatusFilter, TaskDetail, TaskRow};
use crate::tasks::{self, NewEvaluation, NewTask};
use crate::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tasks", post(create).get(list))
        .route("/api/v1/tasks/{id}", get(show))
        .route("/api/v1/tasks/{id}/evaluate", post(evaluate))
}

async fn create(
    State(state): State<AppState>,
    OfficeSession(session): OfficeSession,
    body: Result<Json<NewTask>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<TaskDetail>)> {
    let t = json_body(body)?;
    let id = tasks::create(&state, t, &session.0.usr).await?;
    let detail = read::detail(&state, &id, parse_offset(None)?).await?;
    Ok((StatusCode::CREATED, Json(detail.ok_or_else(|| ApiError::internal("a created task vanished"))?)))
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    status: StatusFilter,
    #[serde(default)]
    utc_offset: Option<String>,
}

/// The team whose tasks a lead may read; `None` for the office, which reads all.
async fn readable_team(state: &AppState, session: &Session) -> ApiResult<Option<String>> {
    session.require(&[Role::Office, Role::Lead])?;
    match session.0.role {
        Role::Lead => Ok(Some(own_team(state, session).await?)),
        _ => Ok(None),
    }
}

async fn list(
    State(state): State<AppState>,
    session: Session,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<TaskRow>>> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let team = readable_team(&state, &session).await?;
    let offset = parse_offset(q.utc_offset.as_deref())?;
    Ok(Json(read::list(&state, q.status, team.as_deref(), offset).await?))
}

#[derive(Deserialize)]
struct ShowQuery {
    #[serde(default)]
    utc_offset: Option<String>,
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    q: Result<Query<ShowQuery>, QueryRejection>,
) -> ApiResult<Json<TaskDetail>> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let team = readable_team(&state, &session).await?;
    let detail = read::detail(&state, &id, parse_offset(q.utc_offset.as_deref())?)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no task {id}")))?;
    if team.as_ref().is_some_and(|t| t != &detail.row.team) {
        return Err(ApiError::forbidden(format!("task {id} is not your team's")));
    }
    Ok(Json(detail))
}

async fn evaluate(
    State(state): State<AppState>,
    OfficeSession(session): OfficeSession,
    Path(id): Path<String>,
    body: Result<Json<NewEvaluation>, JsonRejection>,
) -> ApiResult<Json<TaskDetail>> {
    let e = json_body(body)?;
    tasks::evaluate(&state, &id, e, &session.0.usr).await?;
    let detail = read::detail(&state, &id, parse_offset(None)?).await?;
    Ok(Json(detail.ok_or_else(|| ApiError::not_found(format!("no task {id}")))?))
}
