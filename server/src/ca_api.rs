//! Endpoints of the Doorstep CA: its certificate for anyone (to install on phones, with the fingerprint to check
//! it by), and hub certificates for a team lead's device.

use crate::auth::LeadDevice;
use crate::error::{ApiError, ApiResult};
use crate::tls_ca::CaInfo;
use crate::{audit, AppState};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

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

#[derive(Debug, Serialize, Deserialize)]
pub struct HubCertificateRequest {
    /// A PKCS#10 certificate request (PEM) for the hub's ECDSA P-256 key, naming the hub's addresses.
    pub csr: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct HubCertificateReply {
    /// The hub's certificate (PEM), signed by the Doorstep CA.
    pub certificate: String,
    /// The CA's certificate (PEM).
    pub ca_certificate: String,
    pub names: Vec<String>,
    pub not_after: chrono::DateTime<chrono::Utc>,
}

/// A hub certificate for the calling device, which must be a team lead's (or the office's) and in a team. The
/// account's current role and team are read from the database: a lead moved to another role gets none.
async fn hub_certificate(
    State(state): State<AppState>,
    LeadDevice(device): LeadDevice,
    body: Result<Json<HubCertificateRequest>, JsonRejection>,
) -> ApiResult<Json<HubCertificateReply>> {
    let (role, team): (String, Option<String>) = sqlx::query_as("SELECT role, team FROM users WHERE id = $1")
        .bind(&device.claims.sub)
        .fetch_one(&state.db.pool)
        .await?;
    if !matches!(role.as_str(), "lead" | "office") {
        return Err(ApiError::forbidden(format!(
            "only a team lead's (or the office's) device may obtain a hub certificate; {} is a {role}",
            device.claims.usr
        )));
    }
    let team = team.ok_or_else(|| ApiError::forbidden("a hub serves a team, and you are in none; ask the office"))?;
    let request = crate::api::json_body(body)?;
    let issued = state
        .keys
        .ca()
        .issue_hub_certificate(&request.csr, &team, chrono::Utc::now())
        .map_err(ApiError::bad_request)?;
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
