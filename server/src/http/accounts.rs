//! Accounts over HTTP: login, sessions (access and refresh tokens), users, teams and grid
//! assignments, device listing and revocation, disabling and unlocking accounts, and reading the audit log.

pub use crate::accounts::devices::DeviceInfo;
use crate::accounts::people::{self, NewUser};
use crate::accounts::tokens::{
    new_refresh_token, token_digest, verify_password, Claims, Role, SESSION_AUDIENCE, SESSION_TTL_SECS,
};
use crate::accounts::{audit, devices, sessions, throttle};
use crate::http::auth::{OfficeSession, Session, StaffSession};
use crate::http::client_addr::ClientAddr;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{json_body, own_team};
use crate::store::db::now_ms;
use crate::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Issues an access token and a stored refresh token.
pub async fn open_session(state: &AppState, user: people::UserRecord) -> ApiResult<LoginReply> {
    let claims = claims_for(&user, SESSION_AUDIENCE, SESSION_TTL_SECS, None);
    let (refresh_token, digest) = new_refresh_token();
    sessions::store_refresh_token(&state.db, &user.id, &digest, now_ms()).await?;
    Ok(LoginReply {
        token: state.keys.issue(&claims),
        refresh_token,
        username: user.username,
        role: user.role,
        team: user.team,
        expires_at: claims.exp,
    })
}

#[derive(Deserialize)]
pub struct RefreshBody {
    refresh_token: String,
}

/// Trades a refresh token for a new session; the old refresh token stops working (rotation).
pub async fn refresh(
    State(state): State<AppState>,
    body: Result<Json<RefreshBody>, JsonRejection>,
) -> ApiResult<Json<LoginReply>> {
    let b = json_body(body)?;
    let digest = token_digest(&b.refresh_token);
    let username = sessions::use_refresh_token(&state.db, &digest, now_ms())
        .await?
        .ok_or_else(|| ApiError::unauthorized("the session has expired or was revoked; log in again"))?;
    let user = people::find_user(&state.db, &username)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| ApiError::unauthorized("this account has been disabled"))?;
    open_session(&state, user).await.map(Json)
}

pub async fn logout(
    State(state): State<AppState>,
    body: Result<Json<RefreshBody>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let b = json_body(body)?;
    sessions::revoke_refresh_token(&state.db, &token_digest(&b.refresh_token), now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Devices of everyone (office) or of the lead's team.
pub async fn list_devices(State(state): State<AppState>, session: Session) -> ApiResult<Json<Vec<DeviceInfo>>> {
    session.require(&[Role::Office, Role::Lead])?;
    let team = match session.0.role {
        Role::Lead => Some(own_team(&state, &session).await?),
        _ => None,
    };
    Ok(Json(devices::list_devices(&state.db, team.as_deref()).await?))
}

/// Revokes a device: its token stops working at its next request.
pub async fn revoke_device(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    session.require(&[Role::Office, Role::Lead])?;
    let team =
        devices::owner_team(&state.db, &id).await?.ok_or_else(|| ApiError::not_found(format!("no device {id}")))?;
    if session.0.role == Role::Lead && team != Some(own_team(&state, &session).await?) {
        return Err(ApiError::forbidden("a lead may only revoke devices of their own team"));
    }
    devices::revoke_device(&state.db, &id, now_ms()).await?;
    audit::record(&state.db, Some(&session.0.usr), "device.revoke", &id).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Disables an account: its sessions, refresh tokens and every device it enrolled stop working at once.
pub async fn disable_user(
    State(state): State<AppState>,
    session: Session,
    Path(username): Path<String>,
) -> ApiResult<StatusCode> {
    session.require(&[Role::Office])?;
    if username == session.0.usr {
        return Err(ApiError::bad_request("you cannot disable your own account"));
    }
    let user = people::find_user(&state.db, &username)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user named {username:?}")))?;
    people::disable_user(&state.db, &user.id, now_ms()).await?;
    audit::record(&state.db, Some(&session.0.usr), "user.disable", &username).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Lifts the login limits on an account (its failures from every address, and its pace), e.g. when strangers'
/// guesses hold a volunteer back on a field day. Limits per address stay.
pub async fn unlock_user(
    State(state): State<AppState>,
    session: Session,
    Path(username): Path<String>,
) -> ApiResult<StatusCode> {
    session.require(&[Role::Office])?;
    if people::find_user(&state.db, &username).await?.is_none() {
        return Err(ApiError::not_found(format!("no user named {username:?}")));
    }
    crate::accounts::throttle::unlock_account(&state.db, &username).await?;
    audit::record(&state.db, Some(&session.0.usr), "user.unlock", &username).await;
    Ok(StatusCode::NO_CONTENT)
}

/// What `GET /api/v1/audit` selects (docs/security.md, "Audit log"): every field optional.
#[derive(Deserialize)]
pub struct AuditQuery {
    /// RFC 3339 time; only events at or after it.
    #[serde(default)]
    since: Option<String>,
    /// RFC 3339 time; only events before it.
    #[serde(default)]
    until: Option<String>,
    /// Only this person's events.
    #[serde(default)]
    user: Option<String>,
    /// Only this action, or this family of actions (`campaign` takes `campaign.apply`).
    #[serde(default)]
    action: Option<String>,
    /// `oldest` (the default) or `newest` first.
    #[serde(default)]
    order: Option<String>,
    /// At most this many events (at most 10,000, the default).
    #[serde(default)]
    limit: Option<i64>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct AuditEvent {
    pub at: String,
    pub username: Option<String>,
    pub action: String,
    pub detail: String,
}

pub async fn audit_log(
    State(state): State<AppState>,
    session: Session,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<AuditEvent>>> {
    session.require(&[Role::Office])?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let time = |name: &str, value: Option<&str>| -> ApiResult<Option<i64>> {
        match value.filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => chrono::DateTime::parse_from_rfc3339(s).map(|t| Some(t.timestamp_millis())).map_err(|_| {
                ApiError::bad_request(format!("{name}={s:?} is not an RFC 3339 time such as 2026-11-01T00:00:00Z"))
            }),
        }
    };
    let newest_first = match q.order.as_deref() {
        None | Some("" | "oldest") => false,
        Some("newest") => true,
        Some(other) => return Err(ApiError::bad_request(format!("order={other:?}: use oldest or newest"))),
    };
    let text = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let filter = audit::AuditFilter {
        since_ms: time("since", q.since.as_deref())?.unwrap_or(0),
        until_ms: time("until", q.until.as_deref())?,
        username: text(q.user),
        action: text(q.action),
        newest_first,
        limit: q.limit.unwrap_or(audit::MAX_EVENTS),
    };
    let records = audit::read(&state.db, &filter).await?;
    Ok(Json(
        records
            .into_iter()
            .map(|r| AuditEvent {
                at: client_core::grid::doc::millis_to_time(r.at_ms).to_rfc3339(),
                username: r.username,
                action: r.action,
                detail: r.detail,
            })
            .collect(),
    ))
}

#[derive(Deserialize)]
pub struct Credentials {
    pub(crate) username: String,
    pub(crate) password: String,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct LoginReply {
    /// Short-lived access token.
    pub token: String,
    /// Long-lived, revocable token to get a new access token from `/api/v1/auth/refresh`.
    pub refresh_token: String,
    pub username: String,
    pub role: Role,
    pub team: Option<String>,
    pub expires_at: i64,
}

/// Checks a username and password, within the login limits: the attempt is counted before the password is
/// checked (see `throttle`), and given back if the password is right.
pub(crate) async fn check_credentials(
    state: &AppState,
    c: &Credentials,
    addr: IpAddr,
) -> ApiResult<people::UserRecord> {
    let admission = throttle::admit(&state.db, state.login_throttle, &c.username, addr).await?;
    let user = people::find_user(&state.db, &c.username).await?;
    // Verify against a dummy hash for unknown users so timing does not reveal which usernames exist.
    let hash = user.as_ref().map(|u| u.password_hash.clone()).unwrap_or_else(|| DUMMY_HASH.to_string());
    let ok = verify_password(c.password.clone(), hash).await;
    match user {
        Some(u) if ok && !u.disabled => {
            admission.succeeded(&state.db).await?;
            Ok(u)
        }
        _ => {
            audit::record(&state.db, Some(&c.username), "login.failed", &format!("from {addr}")).await;
            Err(ApiError::unauthorized("wrong username or password"))
        }
    }
}

const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0Y4eMr3Q5NU0mWm1Xj2R0t9s0rMZJZ3gKJmQzN6c2Lw";

pub(crate) fn claims_for(u: &people::UserRecord, aud: &str, ttl: i64, device: Option<String>) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        sub: u.id.clone(),
        usr: u.username.clone(),
        role: u.role,
        team: u.team.clone(),
        dev: device,
        act: None,
        key: None,
        enrolled_ms: None,
        aud: aud.to_string(),
        iat: now,
        exp: now + ttl,
    }
}

pub async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    body: Result<Json<Credentials>, JsonRejection>,
) -> ApiResult<Json<LoginReply>> {
    let c = json_body(body)?;
    let user = check_credentials(&state, &c, addr).await?;
    audit::record(&state.db, Some(&user.username), "login", &format!("session from {addr}")).await;
    open_session(&state, user).await.map(Json)
}

pub async fn me(session: Session) -> Json<Claims> {
    Json(session.0)
}

pub async fn create_user(
    State(state): State<AppState>,
    StaffSession(session): StaffSession,
    body: Result<Json<NewUser>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let u = json_body(body)?;
    if session.0.role == Role::Lead {
        let team = own_team(&state, &session).await?;
        if u.role != Role::Volunteer || u.team.as_deref() != Some(team.as_str()) {
            return Err(ApiError::forbidden(format!("a lead may only add volunteers to their own team ({team})")));
        }
    }
    let detail = format!("{} as {}", u.username, u.role.as_str());
    people::create_user(&state.db, u).await?;
    audit::record(&state.db, Some(&session.0.usr), "user.create", &detail).await;
    Ok(StatusCode::CREATED)
}

#[derive(Deserialize)]
pub struct NewTeam {
    name: String,
    #[serde(default)]
    lead: Option<String>,
}

pub async fn create_team(
    State(state): State<AppState>,
    OfficeSession(session): OfficeSession,
    body: Result<Json<NewTeam>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let t = json_body(body)?;
    people::create_team(&state.db, &t.name, t.lead.as_deref()).await?;
    audit::record(&state.db, Some(&session.0.usr), "team.create", &t.name).await;
    Ok(StatusCode::CREATED)
}

#[derive(Deserialize)]
pub struct Assignment {
    team: String,
}

pub async fn assign(
    State(state): State<AppState>,
    OfficeSession(session): OfficeSession,
    Path(grid): Path<String>,
    body: Result<Json<Assignment>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let a = json_body(body)?;
    people::assign_grid(&state.db, &grid, &a.team).await?;
    audit::record(&state.db, Some(&session.0.usr), "grid.assign", &format!("{grid} -> {}", a.team)).await;
    Ok(StatusCode::NO_CONTENT)
}
