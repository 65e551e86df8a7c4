//! The HTTP API: routes, request shapes and the checks each endpoint makes before it calls the domain code.

use crate::auth::{
    verify_password, Claims, DeviceAuth, OfficeSession, Role, Session, StaffSession, DEVICE_AUDIENCE, DEVICE_TTL_SECS,
};
use crate::bodies::{self, BodyError};
use crate::client_addr::ClientAddr;
use crate::error::{ApiError, ApiResult};
use crate::people::{self, NewUser};
use crate::reports::{self, CoverageRow, GroupBy};
use crate::territory::{self, ImportSummary};
use crate::{accounts, throttle};
use crate::{audit, ingest, AppState};
use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use client_core::protocol::{self, SyncRequest};
use client_core::sign::PublicKey;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use tower_http::compression::{CompressionLayer, CompressionLevel};

/// Largest sync body: a device's whole history for several grids.
pub const MAX_BULK_BODY: usize = 64 * 1024 * 1024;
/// Largest territory file, inflated: a province of about four million places (about 120 bytes a place).
pub const MAX_IMPORT_BODY: usize = 512 * 1024 * 1024;
/// Largest body of any other request.
pub const MAX_SMALL_BODY: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let bulk = Router::new()
        // Sync replies are compressed at level 2 (zlib's fast search without lazy matches): the default level (6)
        // took about 7% of the server's CPU under a burst of syncs, level 3 still 5%, for replies a tenth and 4%
        // smaller (docs/benchmarks.md). Other responses keep the default.
        .route("/api/v1/sync", post(sync).layer(CompressionLayer::new().quality(CompressionLevel::Precise(2))))
        // Gzip request bodies are inflated here; the handler limits the inflated body as it reads it.
        .layer(tower_http::decompression::RequestDecompressionLayer::new())
        .layer(axum::middleware::from_fn(refuse_declared_oversize));
    let territory = Router::new()
        .route("/api/v1/territory/import", post(import))
        .layer(tower_http::decompression::RequestDecompressionLayer::new())
        .layer(axum::middleware::from_fn(refuse_declared_oversize_import));
    let small = Router::new()
        .route("/api/v1/auth/login", post(login).layer(axum::middleware::map_response(no_store)))
        .route("/api/v1/auth/refresh", post(accounts::refresh).layer(axum::middleware::map_response(no_store)))
        .route("/api/v1/auth/logout", post(accounts::logout))
        .route(
            "/api/v1/devices",
            post(enrol).layer(axum::middleware::map_response(no_store)).get(accounts::list_devices),
        )
        .route("/api/v1/devices/{id}/revoke", post(accounts::revoke_device))
        .route("/api/v1/me", get(me))
        .route("/api/v1/users", post(create_user))
        .route("/api/v1/users/{username}/disable", post(accounts::disable_user))
        .route("/api/v1/users/{username}/unlock", post(accounts::unlock_user))
        .route("/api/v1/audit", get(accounts::audit_log))
        .route("/api/v1/teams", post(create_team))
        .route("/api/v1/assignments/{grid}", put(assign))
        .route("/api/v1/reports/coverage", get(coverage))
        .layer(DefaultBodyLimit::max(MAX_SMALL_BODY));
    Router::new()
        .merge(crate::ops::routes())
        .merge(bulk)
        .merge(territory)
        .merge(small)
        .merge(crate::settings::routes().layer(DefaultBodyLimit::max(MAX_SMALL_BODY)))
        .merge(crate::dashboard::routes())
        .merge(crate::field_app::router())
        .merge(crate::reports_api::routes().layer(DefaultBodyLimit::max(MAX_SMALL_BODY)))
        .merge(crate::tasks_api::routes().layer(DefaultBodyLimit::max(MAX_SMALL_BODY)))
        .merge(crate::review_api::routes().layer(DefaultBodyLimit::max(MAX_SMALL_BODY)))
        .merge(crate::roster::routes().layer(DefaultBodyLimit::max(MAX_SMALL_BODY)))
        .merge(crate::ca_api::routes().layer(DefaultBodyLimit::max(MAX_SMALL_BODY)))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .with_state(state)
}

/// Replies that carry tokens must not be kept by a browser's or a proxy's cache (a shared computer's cache
/// would hand them to the next user).
async fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}

/// Refuses a bulk request whose declared length is already over the limit, before reading any of it. Past the
/// inflation layer the body's length is unknown, so without this the server would read 64 MiB only to refuse it.
pub async fn refuse_declared_oversize(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    refuse_declared_over(MAX_BULK_BODY, "sync fewer grids at a time", request, next).await
}

async fn refuse_declared_oversize_import(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    refuse_declared_over(MAX_IMPORT_BODY, "import the territory a few towns at a time", request, next).await
}

async fn refuse_declared_over(
    limit: usize,
    advice: &str,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the request body is {n} bytes; the limit is {limit} ({advice})"),
        )
        .into_response(),
        _ => next.run(request).await,
    }
}

pub(crate) fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    body.map(|Json(v)| v).map_err(|e| match e {
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "request body too large")
        }
        JsonRejection::BytesRejection(e) => bodies::read_error(&e),
        other => ApiError::bad_request(format!("invalid request body: {}", other.body_text())),
    })
}

#[derive(Deserialize)]
struct Credentials {
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

async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    body: Result<Json<Credentials>, JsonRejection>,
) -> ApiResult<Json<LoginReply>> {
    let c = json_body(body)?;
    let user = check_credentials(&state, &c, addr).await?;
    audit::record(&state.db, Some(&user.username), "login", &format!("session from {addr}")).await;
    accounts::open_session(&state, user).await.map(Json)
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

async fn enrol(
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

async fn me(session: Session) -> Json<Claims> {
    Json(session.0)
}

async fn sync(State(state): State<AppState>, device: DeviceAuth, headers: HeaderMap, body: Body) -> Response {
    // A large body holds one of a few permits until it is answered.
    let (body, _large_body) = match bodies::read_sync_body(&state.uploads, body, MAX_BULK_BODY).await {
        Ok(read) => read,
        Err(e) => return e.into_response(),
    };
    let is_cbor = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(protocol::CONTENT_TYPE));
    let started = std::time::Instant::now();
    let result = async {
        if !is_cbor {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("sync requests are {}", protocol::CONTENT_TYPE),
            ));
        }
        let req: SyncRequest = protocol::decode(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
        ingest::sync(&state, &device, req).await
    }
    .await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) if e.status.is_client_error() => "rejected",
        Err(_) => "error",
    };
    metrics::counter!(crate::ops::SYNC_REQUESTS, "outcome" => outcome).increment(1);
    metrics::histogram!(crate::ops::SYNC_SECONDS).record(started.elapsed().as_secs_f64());
    match result {
        Ok(resp) => ([(header::CONTENT_TYPE, protocol::CONTENT_TYPE)], protocol::encode(&resp)).into_response(),
        Err(e) => {
            if e.status.is_client_error() {
                ingest::audit_rejection(&state, &device, &e).await;
            }
            e.into_response()
        }
    }
}

#[derive(Deserialize)]
struct ImportQuery {
    #[serde(default)]
    dry_run: bool,
}

/// A territory file is received into a temporary file (inflated, if it comes gzipped) and read from there, so that
/// the server's memory holds only what the import keeps per place, whatever the file's size.
async fn import(
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

async fn create_user(
    State(state): State<AppState>,
    StaffSession(session): StaffSession,
    body: Result<Json<NewUser>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let u = json_body(body)?;
    if session.0.role == Role::Lead {
        let team = accounts::own_team(&state, &session).await?;
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
struct NewTeam {
    name: String,
    #[serde(default)]
    lead: Option<String>,
}

async fn create_team(
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
struct Assignment {
    team: String,
}

async fn assign(
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

#[derive(Deserialize)]
struct CoverageQuery {
    #[serde(default)]
    by: GroupBy,
    #[serde(default)]
    area: Option<String>,
}

async fn coverage(
    State(state): State<AppState>,
    session: Session,
    query: Result<Query<CoverageQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<CoverageRow>>> {
    session.require(&[Role::Office, Role::Lead, Role::Viewer])?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let area = scoped_area(&state, &session, q.area.filter(|a| !a.is_empty())).await?;
    let team = match session.0.role {
        Role::Lead => Some(accounts::own_team(&state, &session).await?),
        _ => None,
    };
    reports::coverage(&state, q.by, area.as_deref(), team.as_deref()).await.map(Json)
}

/// A viewer reads only their own area and what lies below it; others read everything.
pub(crate) async fn scoped_area(
    state: &AppState,
    session: &Session,
    requested: Option<String>,
) -> ApiResult<Option<String>> {
    if session.0.role != Role::Viewer {
        return Ok(requested);
    }
    let (own,): (Option<String>,) =
        sqlx::query_as("SELECT area FROM users WHERE id = $1").bind(&session.0.sub).fetch_one(&state.db.pool).await?;
    let own = own.ok_or_else(|| ApiError::forbidden("this viewer account has no area; ask the office to set one"))?;
    let Some(requested) = requested else {
        return Ok(Some(own));
    };
    let mut cursor = Some(requested.clone());
    while let Some(code) = cursor {
        if code == own {
            return Ok(Some(requested));
        }
        cursor = sqlx::query_as::<_, (Option<String>,)>("SELECT parent_code FROM areas WHERE code = $1")
            .bind(&code)
            .fetch_optional(&state.db.pool)
            .await?
            .and_then(|(p,)| p);
    }
    Err(ApiError::forbidden(format!("area {requested} is outside your area {own}")))
}
