//! Endpoints of the Doorstep CA: its certificate for anyone (to install on phones, with the fingerprint to check
//! it by), hub certificates for a team lead's device, and for every device of a team the server-signed list of
//! the team's hub devices whose certificates no longer count.
//!
//! A hub certificate names its team and device, and each address it names is the team's: no other team's lead
//! gets a certificate for it while the team's hubs hold it (`tls::hubs::HUB_NAME_HOLD_DAYS` beyond their last
//! certificate), so a lead of one team cannot pose as another team's hub at the address that team's phones reach
//! it at. Those records are kept by `tls::hubs`.

use crate::accounts::{audit, people};
use crate::http::auth::{DeviceAuth, LeadDevice};
use crate::http::error::{ApiError, ApiResult};
use crate::tls::ca::{CaInfo, HubIdentity};
use crate::tls::hubs;
use crate::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use client_core::hub_certs::{HubCertificateReply, HubCertificateRequest, HubTrust, SignedHubTrust};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/ca",
            get(|State(state): State<AppState>| async move { info_response(state.keys.ca().certificate_pem()) }),
        )
        .route(
            "/api/v1/ca.pem",
            get(|State(state): State<AppState>| async move { file_response(state.keys.ca().certificate_pem()) }),
        )
        .route("/api/v1/hub/certificate", post(hub_certificate))
        .route("/api/v1/hub/trust", get(hub_trust))
}

/// `GET /api/v1/ca`: name, fingerprint and PEM of a CA certificate (the server's, or the copy a hub holds).
pub fn info_response(pem: &str) -> Response {
    match CaInfo::from_pem(pem) {
        Ok(info) => Json(info).into_response(),
        Err(e) => ApiError::internal(format!("the CA certificate: {e}")).into_response(),
    }
}

/// `GET /api/v1/ca.pem`: the certificate as a file a phone offers to install.
pub fn file_response(pem: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/x-x509-ca-cert"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"doorstep-ca.crt\""),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        pem.to_string(),
    )
        .into_response()
}

/// A hub certificate for the calling device, which must be a team lead's (or the office's) and in a team. The
/// account's current role and team are read from the database: a lead moved to another role gets none.
async fn hub_certificate(
    State(state): State<AppState>,
    LeadDevice(device): LeadDevice,
    body: Result<Json<HubCertificateRequest>, JsonRejection>,
) -> ApiResult<Json<HubCertificateReply>> {
    let (role, team) = people::role_and_team(&state.db, &device.claims.sub).await?;
    if !matches!(role.as_str(), "lead" | "office") {
        return Err(ApiError::forbidden(format!(
            "only a team lead's (or the office's) device may obtain a hub certificate; {} is a {role}",
            device.claims.usr
        )));
    }
    let team = team.ok_or_else(|| ApiError::forbidden("a hub serves a team, and you are in none; ask the office"))?;
    let request = crate::http::extract::json_body(body)?;
    let now = chrono::Utc::now();
    let hub = HubIdentity { team: team.clone(), device_id: device.device_id.clone() };
    let issued = state.keys.ca().issue_hub_certificate(&request.csr, &hub, now).map_err(ApiError::bad_request)?;
    // Signed first, handed out only once its names are the team's (and the certificate recorded).
    hubs::record_certificate(&state.db, &hub, &issued, now).await?;
    let detail = format!(
        "team {team}, device {}: {} until {}, serial {}",
        device.device_id,
        issued.names.join(", "),
        issued.not_after.to_rfc3339(),
        issued.serial
    );
    audit::record(&state.db, Some(&device.claims.usr), "hub.certificate", &detail).await;
    Ok(Json(HubCertificateReply {
        certificate: issued.certificate_pem,
        ca_certificate: state.keys.ca().certificate_pem().to_string(),
        names: issued.names,
        not_after: issued.not_after,
    }))
}

/// `GET /api/v1/hub/trust`: the signed `HubTrust` of the calling device's team (its current team).
async fn hub_trust(State(state): State<AppState>, device: DeviceAuth) -> ApiResult<Json<SignedHubTrust>> {
    let team = people::team_of(&state.db, &device.claims.sub).await?;
    let team = team.ok_or_else(|| ApiError::forbidden("you are in no team, so no team hub serves you"))?;
    let at_ms = chrono::Utc::now().timestamp_millis();
    let withdrawn = hubs::withdrawn_hub_devices(&state.db, &team, at_ms).await?;
    let trust = HubTrust { team, at_ms, withdrawn };
    Ok(Json(SignedHubTrust::sign(&trust, state.keys.server_key())))
}
