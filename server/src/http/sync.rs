//! `POST /api/v1/sync`: a device's sync request, read within the body limits, handed to `sync`, and answered
//! in CBOR or with the one error body.

use crate::http::auth::DeviceAuth;
use crate::http::bodies;
use crate::http::bodies::MAX_BULK_BODY;
use crate::http::error::ApiError;
use crate::{sync as sync_work, AppState};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use client_core::protocol::{self, SyncRequest};

pub async fn sync(State(state): State<AppState>, device: DeviceAuth, headers: HeaderMap, body: Body) -> Response {
    // Counted from its body's first byte to its answer: work that can wait yields meanwhile.
    let _running = state.syncs_first.sync_running();
    // A large body holds one of a few permits until it is answered.
    let (body, _large_body) = match bodies::read_sync_body(&state.uploads, body, MAX_BULK_BODY).await {
        Ok(read) => read,
        Err(e) => return e.into_response(),
    };
    let is_cbor = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(protocol::CONTENT_TYPE));
    let device = sync_work::Device::from(&device);
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
        Ok(sync_work::sync(&state, &device, req).await?)
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
                sync_work::audit_rejection(&state, &device, &e.message).await;
            }
            e.into_response()
        }
    }
}
