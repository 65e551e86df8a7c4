//! `/api/v1/bulletins`: the office (or an account it lets publish) publishes, corrects and withdraws bulletins;
//! staff read the list and who has read each (a lead, their own team's part), as JSON or a workbook.

use crate::accounts::{audit, tokens::Role};
use crate::bulletins::{self, Draft, Receipts, DEFAULT_OVERDUE_DAYS};
use crate::http::auth::{may_publish, PublisherSession, Session};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{json_body, own_team};
use crate::reports::sheet::Cell;
use crate::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

/// Largest bulletin request: the body's bound and its other fields.
const MAX_BULLETIN_REQUEST: usize = client_core::bulletin::MAX_BODY_BYTES + 16 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/bulletins", post(publish).get(list))
        .route("/api/v1/bulletins/{id}", get(show).put(correct))
        .route("/api/v1/bulletins/{id}/withdraw", post(withdraw))
        .route("/api/v1/bulletins/{id}/receipts", get(receipts))
        .route("/api/v1/bulletins/{id}/receipts.xlsx", get(receipts_xlsx))
        .layer(DefaultBodyLimit::max(MAX_BULLETIN_REQUEST))
}

/// Whose part of the bulletins a session reads: everything (`None`), or a lead's own team.
async fn readable_team(state: &AppState, session: &Session) -> ApiResult<Option<String>> {
    if may_publish(state, session).await? {
        return Ok(None);
    }
    match session.0.role {
        Role::Lead => Ok(Some(own_team(state, session).await?)),
        _ => Err(ApiError::forbidden(format!("the {} role may not read bulletin receipts", session.0.role.as_str()))),
    }
}

async fn publish(
    State(state): State<AppState>,
    PublisherSession(session): PublisherSession,
    body: Result<Json<Draft>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<bulletins::Bulletin>)> {
    let draft = json_body(body)?;
    let b = bulletins::publish(&state, &draft, &session.0.usr).await?;
    let detail =
        format!("bulletin {} ({}, {}) to {}: {}", b.id, b.kind, b.priority, b.audience_teams.join(" "), b.title);
    audit::record(&state.db, Some(&session.0.usr), "bulletin.publish", &detail).await;
    Ok((StatusCode::CREATED, Json(b)))
}

async fn correct(
    State(state): State<AppState>,
    PublisherSession(session): PublisherSession,
    Path(id): Path<String>,
    body: Result<Json<Draft>, JsonRejection>,
) -> ApiResult<Json<bulletins::Bulletin>> {
    let draft = json_body(body)?;
    let b = bulletins::correct(&state, &id, &draft).await?;
    let detail = format!("bulletin {} edition {}: {}", b.id, b.edition, b.title);
    audit::record(&state.db, Some(&session.0.usr), "bulletin.correct", &detail).await;
    Ok(Json(b))
}

async fn withdraw(
    State(state): State<AppState>,
    PublisherSession(session): PublisherSession,
    Path(id): Path<String>,
) -> ApiResult<Json<bulletins::Bulletin>> {
    let b = bulletins::withdraw(&state, &id).await?;
    audit::record(&state.db, Some(&session.0.usr), "bulletin.withdraw", &format!("bulletin {}: {}", b.id, b.title))
        .await;
    Ok(Json(b))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct BulletinList {
    pub bulletins: Vec<bulletins::Bulletin>,
    /// Whether the caller may publish (the office, or an account it allows), so that pages offer it.
    #[serde(default)]
    pub may_publish: bool,
}

async fn list(State(state): State<AppState>, session: Session) -> ApiResult<Json<BulletinList>> {
    let team = readable_team(&state, &session).await?;
    let may_publish = may_publish(&state, &session).await?;
    Ok(Json(BulletinList { bulletins: bulletins::list(&state, team.as_deref()).await?, may_publish }))
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> ApiResult<Json<bulletins::Bulletin>> {
    let team = readable_team(&state, &session).await?;
    let b = bulletins::get(&state, &id).await?;
    if team.is_some_and(|t| !b.audience_teams.iter().any(|a| *a == t || a == crate::store::documents::EVERYONE)) {
        return Err(ApiError::not_found(format!("no bulletin {id} for your team")));
    }
    Ok(Json(b))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiptsQuery {
    #[serde(default)]
    days: Option<i64>,
}

async fn receipts_of(
    state: &AppState,
    session: &Session,
    id: &str,
    q: Result<Query<ReceiptsQuery>, QueryRejection>,
) -> ApiResult<Receipts> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let team = readable_team(state, session).await?;
    Ok(bulletins::receipts(state, id, q.days.unwrap_or(DEFAULT_OVERDUE_DAYS), team.as_deref()).await?)
}

async fn receipts(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    q: Result<Query<ReceiptsQuery>, QueryRejection>,
) -> ApiResult<Json<Receipts>> {
    Ok(Json(receipts_of(&state, &session, &id, q).await?))
}

/// The receipts as one table: a row per expected reader (read or not), as the workbook and the CLI's CSV say.
pub fn receipts_table(r: &Receipts) -> (Vec<String>, Vec<Vec<Cell>>) {
    let header = ["姓名 volunteer", "队伍 team", "已阅 read", "阅读时间 read at", "版本 edition", "逾期 overdue"];
    let time = |ms: i64| client_core::grid::doc::millis_to_time(ms).format("%Y-%m-%d %H:%M").to_string();
    let mut rows: Vec<Vec<Cell>> = Vec::new();
    for reader in r.readers.iter().filter(|x| x.current) {
        rows.push(vec![
            Cell::Text(reader.username.clone()),
            Cell::Text(reader.team.clone()),
            Cell::Text("是 yes".into()),
            Cell::Text(time(reader.read_at)),
            Cell::Int(u64::try_from(reader.edition).unwrap_or(0)),
            Cell::Text(String::new()),
        ]);
    }
    for u in &r.unread {
        let read_at = r.readers.iter().find(|x| x.username == u.username).map(|x| time(x.read_at)).unwrap_or_default();
        rows.push(vec![
            Cell::Text(u.username.clone()),
            Cell::Text(u.team.clone()),
            Cell::Text(if u.read_edition.is_some() { "旧版 earlier edition" } else { "否 no" }.into()),
            Cell::Text(read_at),
            Cell::Int(u.read_edition.map_or(0, |e| u64::try_from(e).unwrap_or(0))),
            Cell::Text(if u.overdue { "是 yes" } else { "" }.into()),
        ]);
    }
    (header.iter().map(|h| h.to_string()).collect(), rows)
}

async fn receipts_xlsx(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    q: Result<Query<ReceiptsQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let r = receipts_of(&state, &session, &id, q).await?;
    let (header, rows) = receipts_table(&r);
    let bytes = crate::reports::sheet::xlsx(&header, &rows)
        .map_err(|e| ApiError::internal(format!("writing the receipts' workbook: {e}")))?;
    let disposition = format!("attachment; filename=\"bulletin-{}-receipts.xlsx\"", r.bulletin.id);
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}
