//! The office console's people, teams and grids over HTTP: the lists (`GET /api/v1/users`, `/teams`, `/grids`,
//! `/villages`), a user's role, team and area, enabling an account, resetting a password, a team's lead, and grids
//! assigned in bulk or unassigned. The office does everything; a team lead reads their own team and resets its
//! volunteers' passwords; viewers and volunteers are refused. Every change is audited.

use crate::accounts::audit;
use crate::accounts::directory::{
    self, Assigned, BulkAssignment, GridPage, GridQuery, PasswordReset, Scope, TeamEdit, TeamInfo, UserEdit,
    UserEdited, UserPage, UserQuery, VillageInfo,
};
use crate::accounts::tokens::Role;
use crate::http::auth::{OfficeSession, Session, StaffSession};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{json_body, own_team};
use crate::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users/{username}", patch(edit_user))
        .route("/api/v1/users/{username}/enable", post(enable_user))
        .route("/api/v1/users/{username}/password", post(reset_password))
        .route("/api/v1/teams/{name}", patch(change_lead))
        .route("/api/v1/grids", get(list_grids))
        .route("/api/v1/villages", get(list_villages))
        .route("/api/v1/assignments", put(assign))
}

/// What the caller may see: everything (the office) or their own team (a lead); anyone else is refused.
async fn scope(state: &AppState, session: &Session) -> ApiResult<Scope> {
    match session.0.role {
        Role::Office => Ok(Scope::Everything),
        Role::Lead => Ok(Scope::Team(own_team(state, session).await?)),
        other => Err(ApiError::forbidden(format!(
            "people, teams and grids are managed by the office and team leads; a {} may not see them",
            other.as_str()
        ))),
    }
}

/// The teams and villages a session may list: as `scope`, and every one for an account the office lets publish
/// bulletins, which chooses its audience among them.
async fn audience_scope(state: &AppState, session: &Session) -> ApiResult<Scope> {
    if !matches!(session.0.role, Role::Office | Role::Lead)
        && crate::store::bulletins::may_publish(&state.db, &session.0.sub).await?
    {
        return Ok(Scope::Everything);
    }
    scope(state, session).await
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> ApiResult<T> {
    q.map(|Query(q)| q).map_err(|e| ApiError::bad_request(e.body_text()))
}

/// `GET /api/v1/users?team=&role=&q=&after=&limit=`: a page of users, in username order.
pub async fn list_users(
    State(state): State<AppState>,
    session: Session,
    q: Result<Query<UserQuery>, QueryRejection>,
) -> ApiResult<Json<UserPage>> {
    let scope = scope(&state, &session).await?;
    Ok(Json(directory::list_users(&state.db, &scope, query(q)?).await?))
}

async fn edit_user(
    State(state): State<AppState>,
    OfficeSession(session): OfficeSession,
    Path(username): Path<String>,
    body: Result<Json<UserEdit>, JsonRejection>,
) -> ApiResult<Json<UserEdited>> {
    let edit = json_body(body)?;
    let edited = directory::edit_user(&state.db, &session.0.usr, &username, edit).await?;
    if !edited.changed.is_empty() {
        audit::record(&state.db, Some(&session.0.usr), "user.edit", &format!("{username}: {}", edited.changed)).await;
    }
    Ok(Json(edited))
}

async fn enable_user(
    State(state): State<AppState>,
    OfficeSession(session): OfficeSession,
    Path(username): Path<String>,
) -> ApiResult<StatusCode> {
    directory::enable_user(&state.db, &username).await?;
    audit::record(&state.db, Some(&session.0.usr), "user.enable", &username).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/users/{username}/password`: `{}` for a password the server chooses (answered once), or
/// `{"password": "..."}`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    #[serde(default)]
    password: Option<String>,
}

async fn reset_password(
    State(state): State<AppState>,
    StaffSession(session): StaffSession,
    Path(username): Path<String>,
    body: Result<Json<NewPassword>, JsonRejection>,
) -> ApiResult<(StatusCode, [(axum::http::header::HeaderName, &'static str); 1], Json<PasswordReset>)> {
    let scope = scope(&state, &session).await?;
    let password = json_body(body)?.password;
    let reset = directory::reset_password(&state.db, &scope, &username, password).await?;
    audit::record(&state.db, Some(&session.0.usr), "user.password", &format!("{username}: sessions ended")).await;
    // The answer may carry the new password: no cache keeps it.
    Ok((StatusCode::OK, [(axum::http::header::CACHE_CONTROL, "no-store")], Json(reset)))
}

/// `GET /api/v1/teams`: every team (the office) or the lead's own.
pub async fn list_teams(State(state): State<AppState>, session: Session) -> ApiResult<Json<Vec<TeamInfo>>> {
    let scope = audience_scope(&state, &session).await?;
    Ok(Json(directory::list_teams(&state.db, &scope).await?))
}

async fn change_lead(
    State(state): State<AppState>,
    OfficeSession(session): OfficeSession,
    Path(name): Path<String>,
    body: Result<Json<TeamEdit>, JsonRejection>,
) -> ApiResult<Json<Vec<TeamInfo>>> {
    let lead = json_body(body)?.lead.ok_or_else(|| ApiError::bad_request("give \"lead\": a username, or null"))?;
    let detail = directory::change_lead(&state.db, &name, lead.as_deref().map(str::trim)).await?;
    audit::record(&state.db, Some(&session.0.usr), "team.lead", &detail).await;
    Ok(Json(
        directory::list_teams(&state.db, &Scope::Everything).await?.into_iter().filter(|t| t.name == name).collect(),
    ))
}

async fn list_grids(
    State(state): State<AppState>,
    session: Session,
    q: Result<Query<GridQuery>, QueryRejection>,
) -> ApiResult<Json<GridPage>> {
    let scope = scope(&state, &session).await?;
    Ok(Json(directory::list_grids(&state.db, &scope, query(q)?).await?))
}

async fn list_villages(State(state): State<AppState>, session: Session) -> ApiResult<Json<Vec<VillageInfo>>> {
    let scope = audience_scope(&state, &session).await?;
    Ok(Json(directory::list_villages(&state.db, &scope).await?))
}

async fn assign(
    State(state): State<AppState>,
    OfficeSession(session): OfficeSession,
    body: Result<Json<BulkAssignment>, JsonRejection>,
) -> ApiResult<Json<Assigned>> {
    let assigned = directory::assign(&state.db, json_body(body)?).await?;
    audit::record(&state.db, Some(&session.0.usr), "grid.assign", &assigned.detail).await;
    Ok(Json(assigned))
}

pub async fn unassign(
    State(state): State<AppState>,
    OfficeSession(session): OfficeSession,
    Path(grid): Path<String>,
) -> ApiResult<StatusCode> {
    let team = directory::unassign(&state.db, &grid).await?;
    audit::record(&state.db, Some(&session.0.usr), "grid.unassign", &format!("{grid} (was {team})")).await;
    Ok(StatusCode::NO_CONTENT)
}
