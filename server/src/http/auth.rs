//! The request extractors that check a token on every call: `Session` for people, `DeviceAuth` for enrolled
//! field devices, and the role-checking `OfficeSession`, `StaffSession`, `PublisherSession` and `LeadDevice`.

use crate::accounts::tokens::{Claims, Role, DEVICE_AUDIENCE, SESSION_AUDIENCE};
use crate::accounts::{directory, people};
use crate::http::error::ApiError;
use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::unauthorized("missing bearer token; log in first"))
}

/// A person's session (office, lead, viewer; volunteers too, for reading).
#[derive(Debug, Clone)]
pub struct Session(pub Claims);

impl Session {
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.0.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("the {} role may not do this", self.0.role.as_str())))
        }
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let mut claims = state.keys.verify(bearer(parts)?, SESSION_AUDIENCE)?;
        check_account_now(state, &mut claims, true).await?;
        Ok(Session(claims))
    }
}

/// An enrolled, unrevoked device.
#[derive(Debug, Clone)]
pub struct DeviceAuth {
    pub claims: Claims,
    pub device_id: String,
    pub actor: automerge::ActorId,
}

/// The device as the sync knows it, from its verified token.
impl From<&DeviceAuth> for crate::sync::Device {
    fn from(device: &DeviceAuth) -> Self {
        crate::sync::Device {
            device_id: device.device_id.clone(),
            user_id: device.claims.sub.clone(),
            username: device.claims.usr.clone(),
            actor: device.actor.clone(),
        }
    }
}

impl FromRequestParts<AppState> for DeviceAuth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let mut claims = state.keys.verify(bearer(parts)?, DEVICE_AUDIENCE)?;
        let device_id = claims.dev.clone().ok_or_else(|| ApiError::unauthorized("device token without device"))?;
        check_account_now(state, &mut claims, false).await?;
        let row = people::device_of(&state.db, &device_id, &claims.sub).await?;
        let (actor_hex, revoked) = row.ok_or_else(|| ApiError::unauthorized("unknown device; enrol again"))?;
        if revoked.is_some() {
            return Err(ApiError::unauthorized("this device has been revoked by the office"));
        }
        let actor = actor_hex.parse().map_err(|_| ApiError::internal("stored actor id is not hex"))?;
        Ok(DeviceAuth { claims, device_id, actor })
    }
}

/// Checks the account as stored now and brings the token's claims up to date with it: an unknown or disabled
/// account is refused, and so is a session token issued before the second of the account's last password reset;
/// the role and team are the stored ones, so that a change by the office applies at the caller's next request,
/// not when the token expires.
async fn check_account_now(state: &AppState, claims: &mut Claims, session: bool) -> Result<(), ApiError> {
    let Some(now) = directory::account_now(&state.db, &claims.sub).await? else {
        return Err(ApiError::unauthorized("unknown account"));
    };
    if now.disabled_at.is_some() {
        return Err(ApiError::unauthorized("this account has been disabled"));
    }
    if session && now.sessions_valid_after.is_some_and(|after| claims.iat < after / 1000) {
        return Err(ApiError::unauthorized("this session ended when the password was reset; log in again"));
    }
    claims.role = now.role;
    claims.team = now.team;
    Ok(())
}

/// An office session. As an extractor it runs before the body extractor, so that nobody else gets the server to
/// read (or inflate) a body it will refuse.
#[derive(Debug, Clone)]
pub struct OfficeSession(pub Session);

impl FromRequestParts<AppState> for OfficeSession {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let session = Session::from_request_parts(parts, state).await?;
        session.require(&[Role::Office])?;
        Ok(OfficeSession(session))
    }
}

/// A session of the office or a team lead, checked before the body is read (as `OfficeSession`).
#[derive(Debug, Clone)]
pub struct StaffSession(pub Session);

impl FromRequestParts<AppState> for StaffSession {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let session = Session::from_request_parts(parts, state).await?;
        session.require(&[Role::Office, Role::Lead])?;
        Ok(StaffSession(session))
    }
}

/// Whether the session may publish bulletins (and upload their attachments): the office, or an account the office
/// allows (`users.may_publish`, read now).
pub async fn may_publish(state: &AppState, session: &Session) -> Result<bool, ApiError> {
    Ok(session.0.role == Role::Office || crate::store::bulletins::may_publish(&state.db, &session.0.sub).await?)
}

/// A session that may publish bulletins, checked before the body is read (as `OfficeSession`).
#[derive(Debug, Clone)]
pub struct PublisherSession(pub Session);

impl FromRequestParts<AppState> for PublisherSession {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let session = Session::from_request_parts(parts, state).await?;
        if may_publish(state, &session).await? {
            return Ok(PublisherSession(session));
        }
        Err(ApiError::forbidden(format!(
            "{} may not publish bulletins or upload their attachments; the office can allow it on the people page",
            session.0.usr
        )))
    }
}

/// An enrolled device whose account is now, in the database, a team lead's or the office's (who may run a team
/// hub); checked before the body is read (as `OfficeSession`).
#[derive(Debug, Clone)]
pub struct LeadDevice(pub DeviceAuth);

impl FromRequestParts<AppState> for LeadDevice {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let device = DeviceAuth::from_request_parts(parts, state).await?;
        let role = people::role_of(&state.db, &device.claims.sub).await?;
        if !matches!(role.as_str(), "lead" | "office") {
            return Err(ApiError::forbidden(format!(
                "only a team lead's (or the office's) device may obtain a hub certificate; {} is a {role}",
                device.claims.usr
            )));
        }
        Ok(LeadDevice(device))
    }
}
