//! The review endpoints: what awaits review (office; a lead for the team's grids; a viewer for their area), the
//! places a found place may be merged into, and the office's decisions on places found in the field and on
//! proposed corrections (audited).

use crate::accounts::tokens::Role;
use crate::http::auth::{OfficeSession, Session};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{json_body, own_team};
use crate::places::{self, MergeCandidate, Pending, PlaceDecision};
use crate::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use client_core::grid::found::CorrectionReview;
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/review", get(list))
        .route("/api/v1/places/{id}/review", post(review_place))
        .route("/api/v1/places/{id}/merge-candidates", get(candidates))
        .route("/api/v1/corrections/{id}/review", post(review_correction))
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    grid: Option<String>,
    #[serde(default)]
    area: Option<String>,
}

/// What awaits review: everything for the office, the team's grids for a lead, the viewer's own area (and
/// below) for a viewer.
async fn list(
    State(state): State<AppState>,
    session: Session,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Pending>> {
    session.require(&[Role::Office, Role::Lead, Role::Viewer])?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let area = crate::http::extract::scoped_area(&state, &session, q.area.filter(|a| !a.is_empty())).await?;
    let team = match session.0.role {
        Role::Lead => Some(own_team(&state, &session).await?),
        _ => None,
    };
    let grid = q.grid.as_deref().filter(|g| !g.is_empty());
    places::pending(&state, grid, area.as_deref(), team.as_deref()).await.map(Json)
}

/// The places a found place may be merged into, for the office choosing one.
async fn candidates(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<MergeCandidate>>> {
    session.require(&[Role::Office])?;
    places::merge_candidates(&state, &id).await.map(Json)
}

async fn review_place(
    State(state): State<AppState>,
    OfficeSession(session): OfficeSession,
    Path(id): Path<String>,
    body: Result<Json<PlaceDecision>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let decision = json_body(body)?;
    places::decide_place(&state, &id, &decision, &session.0.usr).await?;
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
    OfficeSession(session): OfficeSession,
    Path(id): Path<String>,
    body: Result<Json<CorrectionDecision>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let review = match json_body(body)? {
        CorrectionDecision::Confirm => CorrectionReview::Confirmed,
        CorrectionDecision::Reject => CorrectionReview::Rejected,
    };
    places::decide_correction(&state, &id, review, &session.0.usr).await?;
    Ok(StatusCode::NO_CONTENT)
}
