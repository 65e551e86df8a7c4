//! Accounts over HTTP: login and enrolment, sessions (access and refresh tokens), users, teams and grid
//! assignments, device listing and revocation, disabling and unlocking accounts, and reading the audit log.

use crate::accounts::people::{self, NewUser};
use crate::accounts::tokens::{
    new_refresh_token, token_digest, verify_password, Claims, Role, DEVICE_AUDIENCE, DEVICE_TTL_SECS, REFRESH_TTL_SECS,
    SESSION_AUDIENCE, SESSION_TTL_SECS,
};
use crate::accounts::{audit, throttle};
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
use client_core::sign::PublicKey;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Issues an access token and a stored refresh token.
pub async fn open_session(state: &AppState, user: people::UserRecord) -> ApiResult<LoginReply> {
    let claims = claims_for(&user, SESSION_AUDIENCE, SESSION_TTL_SECS, None);
    let (refresh_token, digest) = new_refresh_token();
    let now = now_ms();
    sqlx::query("INSERT INTO refresh_tokens (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(digest)
        .bind(&user.id)
        .bind(now)
        .bind(now + REFRESH_TTL_SECS * 1000)
        .execute(&state.db.pool)
        .await?;
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
    let now = now_ms();
    let used = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(&digest)
    .execute(&state.db.pool)
    .await?;
    if used.rows_affected() != 1 {
        return Err(ApiError::unauthorized("the session has expired or was revoked; log in again"));
    }
    let (username,): (String,) = sqlx::query_as(
        "SELECT u.username FROM refresh_tokens r JOIN users u ON u.id = r.user_id WHERE r.token_hash = $1",
    )
    .bind(&digest)
    .fetch_one(&state.db.pool)
    .await?;
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
    sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL")
        .bind(now_ms())
        .bind(token_digest(&b.refresh_token))
        .execute(&state.db.pool)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, Deserialize, Debug)]
pub struct DeviceInfo {
    pub device_id: String,
    pub username: String,
    pub team: Option<String>,
    pub name: String,
    pub created_at: i64,
    pub last_seen_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

type DeviceRow = (String, String, Option<String>, String, i64, Option<i64>, Option<i64>);

/// Devices of everyone (office) or of the lead's team.
pub async fn list_devices(State(state): State<AppState>, session: Session) -> ApiResult<Json<Vec<DeviceInfo>>> {
    session.require(&[Role::Office, Role::Lead])?;
    let team = match session.0.role {
        Role::Lead => own_team(&state, &session).await?,
        _ => String::new(),
    };
    let rows: Vec<DeviceRow> = sqlx::query_as(
        "SELECT d.device_id, u.username, u.team, d.name, d.created_at, d.last_seen_at, d.revoked_at \
         FROM devices d JOIN users u ON u.id = d.user_id WHERE ($1 = '' OR u.team = $1) ORDER BY d.created_at",
    )
    .bind(&team)
    .fetch_all(&state.db.pool)
    .await?;
    Ok(Json(
        rows.into_iter()
            .map(|(device_id, username, team, name, created_at, last_seen_at, revoked_at)| DeviceInfo {
                device_id,
                username,
                team,
                name,
                created_at,
                last_seen_at,
                revoked_at,
            })
            .collect(),
    ))
}

/// Revokes a device: its token stops working at its next request.
pub async fn revoke_device(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    session.require(&[Role::Office, Role::Lead])?;
    let owner: Option<(Option<String>,)> =
        sqlx::query_as("SELECT u.team FROM devices d JOIN users u ON u.id = d.user_id WHERE d.device_id = $1")
            .bind(&id)
            .fetch_optional(&state.db.pool)
            .await?;
    let (team,) = owner.ok_or_else(|| ApiError::not_found(format!("no device {id}")))?;
    if session.0.role == Role::Lead && team != Some(own_team(&state, &session).await?) {
        return Err(ApiError::forbidden("a lead may only revoke devices of their own team"));
    }
    sqlx::query("UPDATE devices SET revoked_at = $1 WHERE device_id = $2 AND revoked_at IS NULL")
        .bind(now_ms())
        .bind(&id)
        .execute(&state.db.pool)
        .await?;
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
    let now = now_ms();
    let (_gate, mut tx) = state.db.begin_write().await?;
    for sql in [
        "UPDATE users SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL",
        "UPDATE devices SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
    ] {
        sqlx::query(sql).bind(now).bind(&user.id).execute(&mut *tx).await?;
    }
    tx.commit().await?;
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

#[derive(Deserialize)]
pub struct AuditQuery {
    /// RFC 3339 time; only events at or after it.
    #[serde(default)]
    since: Option<String>,
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
    let since = match q.since.as_deref().filter(|s| !s.is_empty()) {
        None => 0,
        Some(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map_err(|_| {
                ApiError::bad_request(format!("since={s:?} is not an RFC 3339 time such as 2026-11-01T00:00:00Z"))
            })?
            .timestamp_millis(),
    };
    let rows: Vec<(i64, Option<String>, String, String)> =
        sqlx::query_as("SELECT at, username, action, detail FROM audit WHERE at >= $1 ORDER BY id LIMIT 10000")
            .bind(since)
            .fetch_all(&state.db.pool)
            .await?;
    Ok(Json(
        rows.into_iter()
            .map(|(at, username, action, detail)| AuditEvent {
                at: client_core::doc::millis_to_time(at).to_rfc3339(),
                username,
                action,
                detail,
            })
            .collect(),
    ))
}

#[derive(Deserialize)]
pub struct Credentials {
    username: String,
    password: String,
    /// Device name, for enrolment.
    #[serde(default)]
    device_name: Option<String>,
    /// The device's Ed25519 public key (hex), for enrolment: changes it signs can travel through a hub.
    #[serde(default)]
    public_key: Option<String>,
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
async fn check_credentials(state: &AppState, c: &Credentials, addr: IpAddr) -> ApiResult<people::UserRecord> {
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

#[derive(Serialize, Deserialize, Debug)]
pub struct EnrolReply {
    pub device_id: String,
    /// The automerge actor id (hex) this device must write with.
    pub actor: String,
    pub token: String,
    pub username: String,
    pub role: Role,
    pub team: Option<String>,
    /// The server's Ed25519 public key (hex): a team hub checks device tokens and the server's statements of
    /// what it holds with it.
    pub server_key: String,
}

pub async fn enrol(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    body: Result<Json<Credentials>, JsonRejection>,
) -> ApiResult<Json<EnrolReply>> {
    let c = json_body(body)?;
    let user = check_credentials(&state, &c, addr).await?;
    if user.role == Role::Viewer {
        return Err(ApiError::forbidden("viewers read reports; they do not enrol field devices"));
    }
    let public_key = c
        .public_key
        .as_deref()
        .map(|k| PublicKey::from_hex(k).map_err(|e| ApiError::bad_request(format!("public_key: {e}"))))
        .transpose()?;
    let name = c.device_name.unwrap_or_else(|| "device".into());
    let name: String = name.chars().take(100).collect();
    let (device_id, actor) = people::enrol_device(&state.db, &user.id, &name, public_key.as_ref()).await?;
    let mut claims = claims_for(&user, DEVICE_AUDIENCE, DEVICE_TTL_SECS, Some(device_id.clone()));
    claims.act = Some(actor.clone());
    claims.key = public_key.map(|k| k.to_hex());
    // After the device's row is committed: a roster read from this instant on lists it.
    claims.enrolled_ms = Some(chrono::Utc::now().timestamp_millis());
    audit::record(&state.db, Some(&user.username), "device.enrol", &format!("device {device_id} ({name})")).await;
    Ok(Json(EnrolReply {
        device_id,
        actor,
        token: state.keys.issue_device(&claims),
        username: user.username,
        role: user.role,
        team: user.team,
        server_key: state.keys.server_key().public().to_hex(),
    }))
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
