//! Endpoints of the Doorstep CA: its certificate for anyone (to install on phones, with the fingerprint to check
//! it by), hub certificates for a team lead's device, and for every device of a team the server-signed list of
//! the team's hub devices whose certificates no longer count.
//!
//! A hub certificate names its team and device, and each address it names is the team's: no other team's lead
//! gets a certificate for it while the team's hubs hold it (`HUB_NAME_HOLD_DAYS` beyond their last certificate),
//! so a lead of one team cannot pose as another team's hub at the address that team's phones reach it at.

use crate::accounts::audit;
use crate::http::auth::{DeviceAuth, LeadDevice};
use crate::http::error::{ApiError, ApiResult};
use crate::tls::ca::{CaInfo, HubIdentity, IssuedCertificate};
use crate::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use client_core::sign::{KeyPair, PublicKey};
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
        .route("/api/v1/hub/trust", get(hub_trust))
}

/// How long an address stays a team's after its hubs' last certificate for it expired: phones of the team keep
/// the field app (and its data) under that address, so it is not certified to another team meanwhile.
pub const HUB_NAME_HOLD_DAYS: i64 = 30;

const DAY_MS: i64 = 24 * 3600 * 1000;

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
    let request = crate::http::extract::json_body(body)?;
    let now = chrono::Utc::now();
    let hub = HubIdentity { team: team.clone(), device_id: device.device_id.clone() };
    let issued = state.keys.ca().issue_hub_certificate(&request.csr, &hub, now).map_err(ApiError::bad_request)?;
    // Signed first, handed out only once its names are the team's (and the certificate recorded).
    record_certificate(&state, &hub, &issued, now).await?;
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

/// Claims the certificate's names (but loopback addresses) for the team and records the certificate, in one
/// transaction: a name another team's hubs hold is refused (409) and nothing is recorded.
async fn record_certificate(
    state: &AppState,
    hub: &HubIdentity,
    issued: &IssuedCertificate,
    now: chrono::DateTime<chrono::Utc>,
) -> ApiResult<()> {
    let now_ms = now.timestamp_millis();
    let not_after = issued.not_after.timestamp_millis();
    let held_until = not_after + HUB_NAME_HOLD_DAYS * DAY_MS;
    let (_gate, mut tx) = state.db.begin_write().await?;
    // A loopback address reaches the phone or laptop itself, never another machine: it is nobody's to hold.
    let held = issued.names.iter().filter(|name| !name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()));
    for name in held {
        let claimed = sqlx::query(
            "INSERT INTO hub_names (name, team, held_until) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET team = excluded.team, held_until = excluded.held_until \
             WHERE hub_names.team = excluded.team OR hub_names.held_until <= $4",
        )
        .bind(name)
        .bind(&hub.team)
        .bind(held_until)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            let (until,): (i64,) = sqlx::query_as("SELECT held_until FROM hub_names WHERE name = $1")
                .bind(name)
                .fetch_one(&mut *tx)
                .await?;
            let until = chrono::DateTime::from_timestamp_millis(until).unwrap_or(now);
            return Err(ApiError::conflict(format!(
                "{name} is the address of another team's hub until {} (its phones reach their hub there), so it \
                 cannot be certified to team {}'s hub; give this machine another address on the base's network (a \
                 DHCP reservation, or another name under .home.arpa) and ask again",
                until.format("%Y-%m-%d %H:%M UTC"),
                hub.team
            )));
        }
    }
    sqlx::query(
        "INSERT INTO hub_certificates (serial, team, device_id, names, issued_at, not_after) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&issued.serial)
    .bind(&hub.team)
    .bind(&hub.device_id)
    .bind(issued.names.join(" "))
    .bind(now_ms)
    .bind(not_after)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The server's statement of which hub devices of a team no longer count: each held a hub certificate of the
/// team that has not expired, and its device was revoked, its account disabled, or is no longer a lead (or the
/// office) of the team. A device refuses a hub whose certificate names such a device.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HubTrust {
    pub team: String,
    /// When the server read it (milliseconds since the epoch): a device keeps the newest it received.
    pub at_ms: i64,
    /// Device ids, sorted.
    pub withdrawn: Vec<String>,
}

/// A `HubTrust` as the server signed it, so that hubs can pass it on to the team's devices.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SignedHubTrust {
    /// The `HubTrust` as JSON text: exactly what was signed.
    pub statement: String,
    /// The server's Ed25519 signature (hex).
    pub signature: String,
}

impl SignedHubTrust {
    pub fn sign(trust: &HubTrust, key: &KeyPair) -> SignedHubTrust {
        let statement = serde_json::to_string(trust).expect("plain data serialises");
        SignedHubTrust { signature: key.sign_hub_trust(&statement), statement }
    }

    /// The statement, if the server's key signed it.
    pub fn verify(&self, server: &PublicKey) -> Result<HubTrust, String> {
        if !server.verifies_hub_trust(&self.statement, &self.signature) {
            return Err("the list of withdrawn hubs is not signed by the server".into());
        }
        serde_json::from_str(&self.statement).map_err(|e| format!("the list of withdrawn hubs is damaged: {e}"))
    }
}

/// `GET /api/v1/hub/trust`: the signed `HubTrust` of the calling device's team (its current team).
async fn hub_trust(State(state): State<AppState>, device: DeviceAuth) -> ApiResult<Json<SignedHubTrust>> {
    let (team,): (Option<String>,) = sqlx::query_as("SELECT team FROM users WHERE id = $1")
        .bind(&device.claims.sub)
        .fetch_one(&state.db.pool)
        .await?;
    let team = team.ok_or_else(|| ApiError::forbidden("you are in no team, so no team hub serves you"))?;
    let at_ms = chrono::Utc::now().timestamp_millis();
    let withdrawn: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT c.device_id FROM hub_certificates c \
         LEFT JOIN devices d ON d.device_id = c.device_id LEFT JOIN users u ON u.id = d.user_id \
         WHERE c.team = $1 AND c.not_after > $2 \
         AND (u.id IS NULL OR d.revoked_at IS NOT NULL OR u.disabled_at IS NOT NULL \
              OR u.role NOT IN ('lead', 'office') OR u.team IS NULL OR u.team <> $1) \
         ORDER BY c.device_id",
    )
    .bind(&team)
    .bind(at_ms)
    .fetch_all(&state.db.pool)
    .await?;
    let trust = HubTrust { team, at_ms, withdrawn: withdrawn.into_iter().map(|(d,)| d).collect() };
    Ok(Json(SignedHubTrust::sign(&trust, state.keys.server_key())))
}
