//! Enrolling a phone over HTTP: `POST /api/v1/devices` with a username and password or with a one-time
//! enrolment code, and the codes themselves: issued (with each code's QR code, for the printed sheet), listed and
//! revoked by the office or a lead (their own team's). Also what an enrolled phone reports of itself after a
//! sync (`POST /api/v1/devices/status`: its app version and its unsent records), shown on the devices page.

use crate::accounts::enrolment::{self, CodeInfo, CodeProblem, IssuedCode, DEFAULT_HOURS};
use crate::accounts::people::{self, UserRecord};
use crate::accounts::tokens::{Role, DEVICE_AUDIENCE, DEVICE_TTL_SECS};
use crate::accounts::{audit, devices, throttle};
use crate::http::accounts::{check_credentials, claims_for, Credentials};
use crate::http::auth::{DeviceAuth, Session, StaffSession};
use crate::http::client_addr::ClientAddr;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{json_body, own_team};
use crate::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use client_core::sign::PublicKey;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/enrolment-codes", post(issue).layer(axum::middleware::map_response(super::no_store)).get(list))
        .route("/api/v1/enrolment-codes/{id}/revoke", post(revoke))
        .route("/api/v1/enrolment-codes/lookup", post(look_up))
        .route("/api/v1/devices/status", post(report_status))
}

#[derive(Deserialize)]
pub struct DeviceStatus {
    app_version: String,
    unsent: i64,
}

/// A device says which app it runs and how many records it holds unconfirmed; not audited (it comes after every
/// sync), and only about itself.
async fn report_status(
    State(state): State<AppState>,
    device: DeviceAuth,
    body: Result<Json<DeviceStatus>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let status = json_body(body)?;
    devices::note_status(&state.db, &device.device_id, status.app_version.trim(), status.unsent).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What a phone sends to enrol: a username and password, or an enrolment code; its name and public key.
#[derive(Deserialize)]
pub struct EnrolRequest {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    /// A one-time enrolment code from a printed sheet, instead of a username and password.
    #[serde(default)]
    code: Option<String>,
    /// With a team's shared code: whose phone this is (one of the team's volunteers).
    #[serde(default)]
    member: Option<String>,
    #[serde(default)]
    device_name: Option<String>,
    /// The device's Ed25519 public key (hex): changes it signs can travel through a hub.
    #[serde(default)]
    public_key: Option<String>,
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
    body: Result<Json<EnrolRequest>, JsonRejection>,
) -> ApiResult<Json<EnrolReply>> {
    let request = json_body(body)?;
    let public_key = request
        .public_key
        .as_deref()
        .map(|k| PublicKey::from_hex(k).map_err(|e| ApiError::bad_request(format!("public_key: {e}"))))
        .transpose()?;
    let name: String = request.device_name.unwrap_or_else(|| "device".into()).chars().take(100).collect();
    let (user, code_id) = match (request.code, request.username, request.password) {
        (Some(code), None, None) => {
            let (code_id, user) = redeemable(&state, &code, request.member.as_deref(), addr).await?;
            (user, Some(code_id))
        }
        (None, Some(username), Some(password)) => {
            (check_credentials(&state, &Credentials { username, password }, addr).await?, None)
        }
        _ => {
            return Err(ApiError::bad_request(
                "send either an enrolment code (\"code\") or a username and password, not both",
            ))
        }
    };
    if user.role == Role::Viewer {
        return Err(ApiError::forbidden("viewers read reports; they do not enrol field devices"));
    }
    let enrolled =
        people::enrol_device_claiming(&state.db, &user.id, &name, public_key.as_ref(), code_id.as_deref()).await?;
    // Another phone took the code between the check and the claim: one code, one phone.
    let (device_id, actor) = enrolled.ok_or_else(|| code_refused(CodeProblem::Used))?;
    let mut claims = claims_for(&user, DEVICE_AUDIENCE, DEVICE_TTL_SECS, Some(device_id.clone()));
    claims.act = Some(actor.clone());
    claims.key = public_key.map(|k| k.to_hex());
    // After the device's row is committed: a roster read from this instant on lists it.
    claims.enrolled_ms = Some(chrono::Utc::now().timestamp_millis());
    let how = code_id.map(|id| format!(" with enrolment code {id}")).unwrap_or_default();
    audit::record(&state.db, Some(&user.username), "device.enrol", &format!("device {device_id} ({name}){how}")).await;
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

/// A code's person, within the login limits of the caller's address: a wrong code counts as a failed login, so
/// an address cannot try codes faster than it could try passwords.
async fn redeemable(
    state: &AppState,
    code: &str,
    member: Option<&str>,
    addr: IpAddr,
) -> ApiResult<(String, UserRecord)> {
    let key = format!("enrolment code {}", enrolment::normalise(code));
    let admission = throttle::admit(&state.db, state.login_throttle, &key, addr).await?;
    match enrolment::redeemable(&state.db, code, member).await? {
        Ok(found) => {
            admission.succeeded(&state.db).await?;
            Ok(found)
        }
        Err(problem) => {
            let detail = format!("from {addr}: {}", problem.message());
            audit::record(&state.db, None, "enrolment.code.refused", &detail).await;
            Err(code_refused(problem))
        }
    }
}

/// A refused code: 401, with a code of its own per reason (the field app says it in the volunteer's language);
/// a team's code with no name, or a name it does not enrol, 400.
fn code_refused(problem: CodeProblem) -> ApiError {
    let status = match problem {
        CodeProblem::ChooseMember | CodeProblem::NotAMember => StatusCode::BAD_REQUEST,
        _ => StatusCode::UNAUTHORIZED,
    };
    ApiError::new(status, problem.code(), problem.message())
}

#[derive(Deserialize)]
pub struct LookupRequest {
    code: String,
}

/// What a code is for, before the phone enrols with it: a person's (their name, to confirm) or a team's (its
/// volunteers' names, to choose from). Within the login limits, as enrolling is: a wrong code is a failure.
async fn look_up(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    body: Result<Json<LookupRequest>, JsonRejection>,
) -> ApiResult<Json<enrolment::CodeLookup>> {
    let request = json_body(body)?;
    let key = format!("enrolment code {}", enrolment::normalise(&request.code));
    let admission = throttle::admit(&state.db, state.login_throttle, &key, addr).await?;
    match enrolment::look_up(&state.db, &request.code).await? {
        Ok(found) => {
            admission.succeeded(&state.db).await?;
            Ok(Json(found))
        }
        Err(problem) => {
            let detail = format!("from {addr}: {}", problem.message());
            audit::record(&state.db, None, "enrolment.code.refused", &detail).await;
            Err(code_refused(problem))
        }
    }
}

#[derive(Deserialize)]
pub struct IssueRequest {
    /// The people to issue codes for, by username.
    #[serde(default)]
    usernames: Vec<String>,
    /// Or a whole team: a code for each of its active volunteers and leads, or, with `shared_uses`, one code its
    /// volunteers share for that many phones.
    #[serde(default)]
    team: Option<String>,
    #[serde(default)]
    shared_uses: Option<i64>,
    #[serde(default)]
    hours: Option<i64>,
    /// The address phones open (the server's, or a team hub's at base), printed in each QR code.
    address: String,
}

/// A code as issued, with where the phone opens it and that address as a QR code (SVG) for the sheet.
#[derive(Serialize, Deserialize, Debug)]
pub struct IssuedSheetEntry {
    #[serde(flatten)]
    pub code: IssuedCode,
    /// The field app's address with the code: what the QR code holds.
    pub url: String,
    pub qr_svg: String,
}

/// Issues codes for the named people or a whole team, all or none; a lead only for their own team.
async fn issue(
    State(state): State<AppState>,
    StaffSession(session): StaffSession,
    body: Result<Json<IssueRequest>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Vec<IssuedSheetEntry>>)> {
    let request = json_body(body)?;
    let address = checked_address(&request.address)?;
    let hours = request.hours.unwrap_or(DEFAULT_HOURS);
    if let Some(uses) = request.shared_uses {
        let Some(team) = request.team.as_deref().filter(|_| request.usernames.is_empty()) else {
            return Err(ApiError::bad_request("a shared code is for a team: name the team, and no usernames"));
        };
        if session.0.role == Role::Lead && own_team(&state, &session).await? != team {
            return Err(ApiError::forbidden("a lead issues enrolment codes for their own team only"));
        }
        let code = enrolment::issue_shared(&state.db, &session.0.usr, team, uses, hours).await?;
        let detail = format!("shared code {} for team {team}, {uses} phones, until {}", code.id, code.expires_at);
        audit::record(&state.db, Some(&session.0.usr), "enrolment.code.issue", &detail).await;
        return Ok((StatusCode::CREATED, Json(vec![sheet_entry(&address, code)?])));
    }
    let mut users: Vec<UserRecord> = match (&request.team, request.usernames.is_empty()) {
        (Some(team), true) => enrolment::enrollable_members(&state.db, team).await?,
        (None, false) => {
            let mut users = Vec::with_capacity(request.usernames.len());
            for name in &request.usernames {
                let user = people::find_user(&state.db, name).await?;
                users.push(user.ok_or_else(|| ApiError::not_found(format!("no user named {name:?}")))?);
            }
            users
        }
        _ => return Err(ApiError::bad_request("name either a team or usernames to issue enrolment codes for")),
    };
    // A name given twice gets one code (a second would revoke the first).
    let mut seen = std::collections::HashSet::new();
    users.retain(|u| seen.insert(u.id.clone()));
    if session.0.role == Role::Lead {
        let team = own_team(&state, &session).await?;
        if let Some(other) = users.iter().find(|u| u.team.as_deref() != Some(team.as_str())) {
            return Err(ApiError::forbidden(format!(
                "a lead issues enrolment codes for their own team ({team}) only, and {} is not in it",
                other.username
            )));
        }
    }
    let issued = enrolment::issue(&state.db, &session.0.usr, &users, hours).await?;
    for code in &issued {
        let who = code.username.as_deref().unwrap_or_default();
        let detail = format!("code {} for {who} until {}", code.id, code.expires_at);
        audit::record(&state.db, Some(&session.0.usr), "enrolment.code.issue", &detail).await;
    }
    let entries = issued.into_iter().map(|code| sheet_entry(&address, code)).collect::<ApiResult<Vec<_>>>()?;
    Ok((StatusCode::CREATED, Json(entries)))
}

/// A code's card on the sheet: the field app's address with the code, and that address as a QR code.
fn sheet_entry(address: &str, code: IssuedCode) -> ApiResult<IssuedSheetEntry> {
    let url = format!("{address}/field/#/enrol/{}", code.code);
    let qr_svg = qr_svg(&url)?;
    Ok(IssuedSheetEntry { code, url, qr_svg })
}

/// The address printed in the codes: an http(s) origin (scheme, host and port), nothing after it.
fn checked_address(address: &str) -> ApiResult<String> {
    let trimmed = address.trim().trim_end_matches('/');
    let rest = trimmed.strip_prefix("https://").or_else(|| trimmed.strip_prefix("http://"));
    let valid = rest.is_some_and(|host| {
        !host.is_empty() && host.len() <= 200 && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
    });
    if !valid {
        return Err(ApiError::bad_request(format!(
            "address must be the address phones open, like https://doorstep.example.org or https://192.168.1.20:8090, \
             not {address:?}"
        )));
    }
    Ok(trimmed.to_string())
}

/// A QR code of `text` as an SVG image, medium error correction (a sheet may be creased or smudged).
fn qr_svg(text: &str) -> ApiResult<String> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| ApiError::internal(format!("QR code: {e}")))?;
    Ok(code.render::<qrcode::render::svg::Color>().min_dimensions(200, 200).quiet_zone(true).build())
}

#[derive(Deserialize)]
pub struct ListQuery {
    /// Codes issued in the last this many days (default 30).
    #[serde(default)]
    days: Option<i64>,
}

/// Codes issued lately (office: all; a lead: their team's), newest first; never the codes themselves.
async fn list(
    State(state): State<AppState>,
    StaffSession(session): StaffSession,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<CodeInfo>>> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let days = q.days.unwrap_or(30);
    if !(1..=3660).contains(&days) {
        return Err(ApiError::bad_request("days must be between 1 and 3660"));
    }
    let team = match session.0.role {
        Role::Lead => Some(own_team(&state, &session).await?),
        _ => None,
    };
    Ok(Json(enrolment::list(&state.db, team.as_deref(), days).await?))
}

/// Withdraws an unused code (a sheet lost or printed by mistake).
async fn revoke(State(state): State<AppState>, session: Session, Path(id): Path<String>) -> ApiResult<StatusCode> {
    session.require(&[Role::Office, Role::Lead])?;
    let team = enrolment::owner_team(&state.db, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no enrolment code {id}")))?;
    if session.0.role == Role::Lead && team != Some(own_team(&state, &session).await?) {
        return Err(ApiError::forbidden("a lead may only withdraw their own team's enrolment codes"));
    }
    if !enrolment::revoke(&state.db, &id).await? {
        return Err(ApiError::conflict(format!("enrolment code {id} was used or withdrawn already")));
    }
    audit::record(&state.db, Some(&session.0.usr), "enrolment.code.revoke", &id).await;
    Ok(StatusCode::NO_CONTENT)
}
