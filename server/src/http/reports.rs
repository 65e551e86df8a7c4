//! The report endpoints beyond plain coverage: monthly ranking, gap lists, daily progress and activity. Each
//! applies the coverage report's scoping: the office reads everything, a lead their team's grids, a viewer
//! their own area's subtree.

use crate::accounts::tokens::Role;
use crate::http::auth::Session;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{own_team, scoped_area};
use crate::reports::activity::{self, ActivityBy, ActivityRow};
use crate::reports::gaps::{self, GapFormat, GapQuery, GapScope};
use crate::reports::monthly::{self, MonthlyParams, MonthlyReport, DEFAULT_THRESHOLD};
use crate::reports::progress::{self, Progress};
use crate::reports::time::{self, day_start_ms, parse_date, parse_offset, today, DAY_MS};
use crate::reports::{self as coverage_report, CoverageRow, GroupBy};
use crate::AppState;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{Duration, NaiveDate};
use futures_util::StreamExt;
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/reports/monthly", get(monthly))
        .route("/api/v1/reports/monthly.xlsx", get(monthly_xlsx))
        .route("/api/v1/reports/gaps", get(gaps))
        .route("/api/v1/reports/progress", get(progress))
        .route("/api/v1/reports/activity", get(activity))
}

/// What a reader may see: an area subtree (None: everything) and, for a lead, one team's grids.
pub struct Scope {
    pub area: Option<String>,
    pub team: Option<String>,
}

impl Scope {
    fn area(&self) -> &str {
        self.area.as_deref().unwrap_or("")
    }
    fn team(&self) -> &str {
        self.team.as_deref().unwrap_or("")
    }
}

/// Applies the same rules as the coverage report, and refuses unknown areas.
pub async fn scope(state: &AppState, session: &Session, requested: Option<String>) -> ApiResult<Scope> {
    session.require(&[Role::Office, Role::Lead, Role::Viewer])?;
    let requested = requested.filter(|a| !a.is_empty());
    if let Some(code) = &requested {
        if coverage_report::area_kind(&state.db, code).await?.is_none() {
            return Err(ApiError::not_found(format!("no area with code {code:?}")));
        }
    }
    let area = scoped_area(state, session, requested).await?;
    let team = match session.0.role {
        Role::Lead => Some(own_team(state, session).await?),
        _ => None,
    };
    Ok(Scope { area, team })
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> ApiResult<T> {
    q.map(|Query(v)| v).map_err(|e| ApiError::bad_request(e.body_text()))
}

#[derive(Deserialize)]
struct MonthlyQuery {
    month: Option<String>,
    #[serde(default)]
    area: Option<String>,
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    utc_offset: Option<String>,
}

async fn monthly(
    State(state): State<AppState>,
    session: Session,
    q: Result<Query<MonthlyQuery>, QueryRejection>,
) -> ApiResult<Json<MonthlyReport>> {
    Ok(Json(monthly_report(&state, &session, q).await?))
}

/// The monthly ranking as an Excel workbook: the same table `doorstep report monthly --format xlsx` writes.
async fn monthly_xlsx(
    State(state): State<AppState>,
    session: Session,
    q: Result<Query<MonthlyQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let report = monthly_report(&state, &session, q).await?;
    let (header, rows) = report.table();
    let bytes = crate::reports::sheet::xlsx(&header, &rows)
        .map_err(|e| ApiError::internal(format!("writing the monthly report's workbook: {e}")))?;
    let disposition = format!("attachment; filename=\"monthly-{}.xlsx\"", report.month);
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

async fn monthly_report(
    state: &AppState,
    session: &Session,
    q: Result<Query<MonthlyQuery>, QueryRejection>,
) -> ApiResult<MonthlyReport> {
    let q = query(q)?;
    let month = q.month.ok_or_else(|| ApiError::bad_request("month is required, e.g. month=2026-11"))?;
    let offset = parse_offset(q.utc_offset.as_deref())?;
    let scope = scope(state, session, q.area).await?;
    let params = MonthlyParams {
        month: &month,
        offset,
        threshold: q.threshold.unwrap_or(DEFAULT_THRESHOLD),
        area: scope.area.as_deref(),
        team: scope.team.as_deref(),
    };
    Ok(monthly::monthly(state, params).await?)
}

#[derive(Deserialize)]
struct GapsQuery {
    #[serde(default)]
    grid: Option<String>,
    #[serde(default)]
    area: Option<String>,
    #[serde(default)]
    indicator: Option<String>,
    #[serde(default)]
    revisit: bool,
    #[serde(default)]
    all: bool,
    #[serde(default)]
    utc_offset: Option<String>,
    #[serde(default)]
    format: GapFormat,
}

/// A grid's, an area's or the whole scope's gap list, streamed as JSON or CSV.
async fn gaps(
    State(state): State<AppState>,
    session: Session,
    q: Result<Query<GapsQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let q = query(q)?;
    let offset = parse_offset(q.utc_offset.as_deref())?;
    gaps::check_indicator(&state.campaigns.current().campaign, q.indicator.as_deref())?;
    let grid = q.grid.filter(|g| !g.is_empty());
    let gap_scope = match grid {
        Some(grid) => {
            let kind = area_kind(&state, &grid).await?;
            match kind.as_deref() {
                None => return Err(ApiError::not_found(format!("no grid with code {grid:?}"))),
                Some("grid") => {}
                Some(k) => return Err(ApiError::bad_request(format!("{grid} is a {k}, not a grid"))),
            }
            let scope = scope(&state, &session, Some(grid.clone())).await?;
            if let Some(team) = &scope.team {
                if coverage_report::grid_team(&state.db, &grid).await?.as_ref() != Some(team) {
                    return Err(ApiError::forbidden(format!("grid {grid} is not assigned to your team ({team})")));
                }
            }
            GapScope::Grid(grid)
        }
        None => {
            let scope = scope(&state, &session, q.area).await?;
            let area = match scope.area {
                Some(code) => {
                    let kind = area_kind(&state, &code).await?.unwrap_or_default();
                    Some((code, kind))
                }
                None => None,
            };
            GapScope::Area { area, team: scope.team }
        }
    };
    let gq = GapQuery { scope: gap_scope, indicator: q.indicator, revisit_only: q.revisit, all: q.all };
    let mut chunks = gaps::stream(state, gq, offset, q.format);
    // A failure before the first chunk is still an error status; after it, the response ends incomplete.
    let first = match chunks.recv().await {
        Some(chunk) => chunk?,
        None => return Err(ApiError::internal("the gap list ended early")),
    };
    let rest = futures_util::stream::unfold(chunks, |mut chunks| async move {
        let item = chunks.recv().await?;
        let item = item
            .map_err(|e| std::io::Error::other(format!("the gap list stopped midway: {}", ApiError::from(e).message)));
        Some((item, chunks))
    });
    // Fused: the body may be polled again after its end.
    let body = Body::from_stream(futures_util::stream::once(async { Ok(first) }).chain(rest).fuse());
    let content_type = match q.format {
        GapFormat::Json => "application/json",
        GapFormat::Csv => "text/csv; charset=utf-8",
    };
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

async fn area_kind(state: &AppState, code: &str) -> ApiResult<Option<String>> {
    Ok(coverage_report::area_kind(&state.db, code).await?)
}

#[derive(Deserialize)]
struct RangeQuery {
    #[serde(default)]
    area: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    utc_offset: Option<String>,
    #[serde(default)]
    by: ActivityBy,
}

/// The longest daily series one request may ask for.
const MAX_DAYS: i64 = 400;

/// `from` and `to` (inclusive dates); by default the 30 days up to today.
fn dates(q: &RangeQuery, offset: chrono::FixedOffset) -> ApiResult<(NaiveDate, NaiveDate)> {
    let to = match q.to.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => parse_date("to", s)?,
        None => today(offset),
    };
    let from = match q.from.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => parse_date("from", s)?,
        None => to - Duration::days(29),
    };
    Ok((from, to))
}

async fn progress(
    State(state): State<AppState>,
    session: Session,
    q: Result<Query<RangeQuery>, QueryRejection>,
) -> ApiResult<Json<Progress>> {
    let q = query(q)?;
    let offset = parse_offset(q.utc_offset.as_deref())?;
    let (from, to) = dates(&q, offset)?;
    let days = time::day_range(from, to, MAX_DAYS)?;
    let scope = scope(&state, &session, q.area.clone()).await?;
    Ok(Json(progress::progress(&state, &days, offset, scope.area(), scope.team()).await?))
}

async fn activity(
    State(state): State<AppState>,
    session: Session,
    q: Result<Query<RangeQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<ActivityRow>>> {
    let q = query(q)?;
    let offset = parse_offset(q.utc_offset.as_deref())?;
    let (from, to) = dates(&q, offset)?;
    time::day_range(from, to, MAX_DAYS)?;
    let scope = scope(&state, &session, q.area.clone()).await?;
    // Idle teams or members are listed only to readers who see whole teams (not a viewer's area slice).
    let list_idle = session.0.role != Role::Viewer && scope.area.is_none();
    let bounds = (day_start_ms(from, offset), day_start_ms(to, offset) + DAY_MS);
    Ok(Json(activity::activity(&state, q.by, bounds, offset, (scope.area(), scope.team()), list_idle).await?))
}

#[derive(Deserialize)]
pub struct CoverageQuery {
    #[serde(default)]
    by: GroupBy,
    #[serde(default)]
    area: Option<String>,
}

pub async fn coverage(
    State(state): State<AppState>,
    session: Session,
    query: Result<Query<CoverageQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<CoverageRow>>> {
    session.require(&[Role::Office, Role::Lead, Role::Viewer])?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let area = scoped_area(&state, &session, q.area.filter(|a| !a.is_empty())).await?;
    let team = match session.0.role {
        Role::Lead => Some(own_team(&state, &session).await?),
        _ => None,
    };
    Ok(Json(coverage_report::coverage(&state, q.by, area.as_deref(), team.as_deref()).await?))
}
