//! The territory file (CSV or .xlsx, told by its content), spooled to disk and applied (or tried, with `dry_run`):
//! `POST /api/v1/territory/import` answers once it is done (the CLI); `POST /api/v1/territory/imports` starts it as
//! a job and `GET /api/v1/territory/imports/{id}` follows it (the dashboard). Templates of the file for anyone.

use crate::http::auth::OfficeSession;
use crate::http::bodies::MAX_IMPORT_BODY;
use crate::http::bodies::{self, BodyError};
use crate::http::error::ApiError;
use crate::territory::jobs::{JobError, JobStatus, Outcome, RowProblem};
use crate::territory::xlsx::{self, Format};
use crate::territory::{self, template, ImportFailure, ImportSummary};
use crate::AppState;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use sha2::{Digest, Sha256};

const ADVICE: &str = "import the territory a few towns at a time";

#[derive(Deserialize)]
pub struct ImportQuery {
    #[serde(default)]
    dry_run: bool,
    /// The SHA-256 (hex) of the file a dry run checked: the import is refused if this file is another.
    checked: Option<String>,
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
    let file = bodies::spool(&state.uploads, body, MAX_IMPORT_BODY, ADVICE).await?;
    Ok(Json(territory::import(&state, &file, q.dry_run, &session.0.usr).await?))
}

/// Receives the file as `import` does, then answers 202 with the job that checks or applies it in the background.
/// With `checked`, a file other than the one checked is refused (409) before anything is done.
pub async fn start_import(
    State(state): State<AppState>,
    OfficeSession(session): OfficeSession,
    query: Result<Query<ImportQuery>, QueryRejection>,
    body: Body,
) -> Result<(StatusCode, Json<JobStatus>), BodyError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let admitted = state.uploads.admit_import().map_err(BodyError::Busy)?;
    let file = bodies::spool(&state.uploads, body, MAX_IMPORT_BODY, ADVICE).await?;
    let (file, sha256) = tokio::task::spawn_blocking(move || {
        let digest = format!("{:x}", Sha256::digest(&file[..]));
        (file, digest)
    })
    .await
    .map_err(ApiError::internal)?;
    if let Some(checked) = &q.checked {
        if !checked.eq_ignore_ascii_case(&sha256) {
            return Err(ApiError::conflict(
                "the file changed since it was checked (it is not the file the check read); check it again, then import it",
            )
            .into());
        }
    }
    let format = match xlsx::detect(&file) {
        Format::Csv => "csv",
        Format::Workbook => "xlsx",
    };
    let job = state.imports.start(&session.0.usr, q.dry_run, sha256, format);
    let status = job.status();
    tokio::spawn(async move {
        // The permit and the spooled file are held until the import is done.
        let _admitted = admitted;
        let result = territory::import_with_progress(&state, &file, job.dry_run, &job.username, &job.progress).await;
        job.finish(match result {
            Ok(summary) => Outcome::Imported { summary },
            Err(ImportFailure::Rows(errors)) => {
                Outcome::RowsToFix { errors: errors.iter().map(RowProblem::from).collect() }
            }
            Err(ImportFailure::Refused(refusal)) => {
                let e = ApiError::from(refusal);
                Outcome::Refused { error: JobError { code: e.code, message: e.message } }
            }
        });
    });
    Ok((StatusCode::ACCEPTED, Json(status)))
}

/// Where an import started with `start_import` is: its phase and counts, and its outcome once it has one.
pub async fn import_status(
    State(state): State<AppState>,
    OfficeSession(_): OfficeSession,
    Path(id): Path<String>,
) -> Result<Json<JobStatus>, ApiError> {
    let unknown = || {
        ApiError::not_found(format!(
            "no territory import {id} on this server (an import is kept for an hour after it ends); start it again"
        ))
    };
    let id = id.parse::<uuid::Uuid>().map_err(|_| unknown())?;
    let job = state.imports.get(id).ok_or_else(unknown)?;
    Ok(Json(job.status()))
}

fn download(content_type: &'static str, name: &'static str, body: Vec<u8>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        body,
    )
}

/// A CSV template of the territory file: the columns and two example rows. It holds no data, so anyone may have it.
pub async fn csv_template() -> impl IntoResponse {
    download("text/csv; charset=utf-8", "territory-template.csv", template::csv_template())
}

/// The same template as an .xlsx workbook.
pub async fn xlsx_template() -> Result<impl IntoResponse, ApiError> {
    let bytes = template::xlsx_template().map_err(ApiError::internal)?;
    Ok(download("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "territory-template.xlsx", bytes))
}
