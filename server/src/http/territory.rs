//! `POST /api/v1/territory/import`: a territory file, spooled to disk and applied (or tried, with `dry_run`).

use crate::http::auth::OfficeSession;
use crate::http::bodies::MAX_IMPORT_BODY;
use crate::http::bodies::{self, BodyError};
use crate::http::error::ApiError;
use crate::territory::{self, ImportSummary};
use crate::AppState;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct ImportQuery {
    #[serde(default)]
    dry_run: bool,
}

/// A territory file is received into a temporary file (inflated, if it comes gzipped) and read from there, so that
/// the server's memory holds only what the import keeps per place, whatever the file's size.
pub async fn import(
    State(state): State<AppState>,
    OfficeSession(session): OfficeSession,
    query: Result<Query<ImportQuery>, QueryRejection>,
    body: Body,
) -> Result<Json<ImportSummary>, BodyError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let _admitted = state.uploads.admit_import().map_err(BodyError::Busy)?;
    let advice = "import the territory a few towns at a time";
    let file = bodies::spool(&state.uploads, body, MAX_IMPORT_BODY, advice).await?;
    Ok(Json(territory::import(&state, &file, q.dry_run, &session.0.usr).await?))
}
