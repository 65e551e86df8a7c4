//! Sessions (access and refresh tokens), device listing and revocation, disabling accounts, and reading the
//! audit log.

use crate::api::{claims_for, json_body, LoginReply};
use crate::auth::{
    new_refresh_token, token_digest, Role, Session, REFRESH_TTL_SECS, SESSION_AUDIENCE, SESSION_TTL_SECS,
};
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::{audit, people, AppState};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

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

/// The team of the session's user, from the database (it may have changed since the token was issued).
pub async fn own_team(state: &AppState, session: &Session) -> ApiResult<String> {
    let (team,): (Option<String>,) =
        sqlx::query_as("SELECT team FROM users WHERE id = $1").bind(&session.0.sub).fetch_one(&state.db.pool).await?;
    team.ok_or_else(|| ApiError::forbidden("you are not in a team; ask the office"))
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
    crate::throttle::unlock_account(&state.db, &username).await?;
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
