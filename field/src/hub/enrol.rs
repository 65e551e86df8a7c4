//! Enrolment at a team hub: the field web app, loaded from the hub, enrols at its own address (and looks up an
//! enrolment code there first), and the hub passes the request to the server unchanged and the server's answer
//! back. Only the server can enrol a device (it
//! assigns the actor and signs the token), so this works only while the hub can reach it.

use super::error::ApiError;
use super::exchange::Hub;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// Credentials, a device name and a public key: far below this.
pub const MAX_ENROL_BODY: usize = 16 * 1024;

static UPSTREAM: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client")
});

/// `POST /api/v1/devices` and `POST /api/v1/enrolment-codes/lookup` at the hub: forwarded to the same path of
/// the server the lead's profile is enrolled with.
pub async fn forward_enrolment(State(hub): State<Arc<Hub>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let server = hub.device.server.trim_end_matches('/');
    let content_type =
        headers.get(header::CONTENT_TYPE).cloned().unwrap_or(HeaderValue::from_static("application/json"));
    let sent = UPSTREAM
        .post(format!("{server}{}", uri.path()))
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await;
    let answer = match sent {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!(error = %e, "enrolment through the hub: the server cannot be reached");
            let message = format!(
                "this hub cannot reach the server ({server}) now, and only the server can enrol a device; \
                 enrol again once the hub is online"
            );
            return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_unreachable", message).into_response();
        }
    };
    let status = answer.status();
    let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
    // A refusal of the login limits says when to try again.
    let retry_after = answer.headers().get(header::RETRY_AFTER).cloned();
    match answer.bytes().await {
        Ok(bytes) => {
            let mut resp = (status, bytes).into_response();
            if let Some(ct) = content_type {
                resp.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            if let Some(wait) = retry_after {
                resp.headers_mut().insert(header::RETRY_AFTER, wait);
            }
            // A device token is in it: no cache on the way may keep it.
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "server_unreachable",
            format!("the server's answer to the enrolment broke off ({e}); enrol again"),
        )
        .into_response(),
    }
}
