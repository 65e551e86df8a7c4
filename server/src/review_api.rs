//! The review endpoints: what awaits review (office, or a lead for the team's grids) and the office's decisions
//! on places found in the field and on proposed corrections.

use crate::auth::{Role, Session};
use crate::error::{ApiError, ApiResult};
use crate::field_places::{self, Pending, PlaceDecision};
use crate::{accounts, api::json_body, AppState};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use client_core::found::CorrectionReview;
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/review", get(list))
        .route("/api/v1/places/{id}/review", post(review_place))
        .route("/api/v1/corrections/{id}/review", post(review_correction))
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    grid: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    session: Session,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Pending>> {
    session.require(&[Role::Office, Role::Lead])?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let team = match session.0.role {
        Role::Lead => Some(accounts::own_team(&state, &session).await?),
        _ => None,
    };
    field_places::pending(&state, q.grid.as_deref().filter(|g| !g.is_empty()), team.as_deref()).await.map(Json)
}

async fn review_place(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    body: Result<Json<PlaceDecision>, JsonRejection>,
) -> ApiResult<StatusCode> {
    session.require(&[Role::Office])?;
    let decision = json_body(body)?;
    field_places::decide_place(&state, &id, &decision, &session.0.usr).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(tag = "decision", rename_all = "lowercase")]
enum CorrectionDecision {
    Confirm,
    Reject,
}

async fn review_correction(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    body: Result<Json<CorrectionDecision>, JsonRejection>,
) -> ApiResult<StatusCode> {
    session.require(&[Role::Office])?;
    let review = match json_body(body)? {
        CorrectionDecision::Confirm => CorrectionReview::Confirmed,
        CorrectionDecision::Reject => CorrectionReview::Rejected,
    };
    field_places::decide_correction(&state, &id, review, &session.0.usr).await?;
    Ok(StatusCode::NO_CONTENT)
}
