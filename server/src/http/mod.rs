//! The HTTP layer: the router, the request extractors and body limits, the mapping of errors to statuses and the
//! one error body, and one module per resource. It is the only part of the server that knows HTTP status codes;
//! the domain folders and `store` below it answer in their own terms.

pub mod accounts;
pub mod auth;
pub mod blobs;
pub mod bodies;
pub mod bulletins;
pub mod ca;
pub mod campaign;
pub mod client_addr;
pub mod dashboard;
pub mod enrolment;
pub mod error;
pub mod extract;
pub mod field_app;
pub mod listen;
pub mod people;
pub mod photos;
pub mod places;
pub mod probes;
pub mod reports;
pub mod roster;
pub mod settings;
pub mod submissions;
pub mod sync;
pub mod tasks;
pub mod territory;

use crate::http::error::ApiError;
use crate::AppState;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use std::sync::Arc;
use tower_http::compression::{CompressionLayer, CompressionLevel};

pub use bodies::{MAX_BULK_BODY, MAX_IMPORT_BODY, MAX_SMALL_BODY};

/// The API as `serve` runs it: the router, with compression and tracing, and a panic in a handler answered with
/// 500 and the usual error body; the server keeps serving, and the request's transaction (never committed) rolls
/// back.
pub fn app(state: AppState) -> Router {
    router(state)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            ApiError::internal("a request handler panicked").into_response()
        }))
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

pub fn router(state: AppState) -> Router {
    let bulk = Router::new()
        // Sync replies are compressed at level 2 (zlib's fast search without lazy matches): the default level (6)
        // took about 7% of the server's CPU under a burst of syncs, level 3 still 5%, for replies a tenth and 4%
        // smaller (docs/benchmarks.md). Other responses keep the default.
        .route("/api/v1/sync", post(sync::sync).layer(CompressionLayer::new().quality(CompressionLevel::Precise(2))))
        // Gzip request bodies are inflated here; the handler limits the inflated body as it reads it.
        .layer(tower_http::decompression::RequestDecompressionLayer::new())
        .layer(axum::middleware::from_fn(refuse_declared_oversize));
    let territory = Router::new()
        .route("/api/v1/territory/import", post(territory::import))
        .route("/api/v1/territory/imports", post(territory::start_import))
        .route("/api/v1/territory/imports/{id}", get(territory::import_status))
        .route("/api/v1/territory/template.csv", get(territory::csv_template))
        .route("/api/v1/territory/template.xlsx", get(territory::xlsx_template))
        .layer(tower_http::decompression::RequestDecompressionLayer::new())
        .layer(axum::middleware::from_fn(refuse_declared_oversize_import));
    let small = Router::new()
        .route("/api/v1/auth/login", post(accounts::login).layer(axum::middleware::map_response(no_store)))
        .route("/api/v1/auth/refresh", post(accounts::refresh).layer(axum::middleware::map_response(no_store)))
        .route("/api/v1/auth/logout", post(accounts::logout))
        .route(
            "/api/v1/devices",
            post(enrolment::enrol).layer(axum::middleware::map_response(no_store)).get(accounts::list_devices),
        )
        .route("/api/v1/devices/{id}/revoke", post(accounts::revoke_device))
        .route("/api/v1/me", get(accounts::me))
        .route("/api/v1/users", post(accounts::create_user).get(people::list_users))
        .route("/api/v1/users/{username}/disable", post(accounts::disable_user))
        .route("/api/v1/users/{username}/unlock", post(accounts::unlock_user))
        .route("/api/v1/audit", get(accounts::audit_log))
        .route("/api/v1/teams", post(accounts::create_team).get(people::list_teams))
        .route("/api/v1/assignments/{grid}", put(accounts::assign).delete(people::unassign))
        .route("/api/v1/reports/coverage", get(reports::coverage))
        .layer(DefaultBodyLimit::max(MAX_SMALL_BODY));
    Router::new()
        .merge(probes::routes())
        .merge(bulk)
        .merge(territory)
        .merge(small)
        .merge(settings::routes().layer(DefaultBodyLimit::max(MAX_SMALL_BODY)))
        .merge(campaign::routes())
        .merge(bulletins::routes())
        .merge(enrolment::routes().layer(DefaultBodyLimit::max(MAX_SMALL_BODY)))
        .merge(dashboard::routes())
        .merge(field_app::router({
            let campaigns = state.campaigns.clone();
            Arc::new(move || campaigns.current().rules_json.clone())
        }))
        .merge(reports::routes().layer(DefaultBodyLimit::max(MAX_SMALL_BODY)))
        .merge(tasks::routes().layer(DefaultBodyLimit::max(MAX_SMALL_BODY)))
        .merge(places::routes().layer(DefaultBodyLimit::max(MAX_SMALL_BODY)))
        .merge(people::routes().layer(DefaultBodyLimit::max(MAX_SMALL_BODY)))
        .merge(roster::routes().layer(DefaultBodyLimit::max(MAX_SMALL_BODY)))
        .merge(submissions::routes().layer(DefaultBodyLimit::max(MAX_SMALL_BODY)))
        .merge(ca::routes().layer(DefaultBodyLimit::max(MAX_SMALL_BODY)))
        .merge(blobs::routes())
        .merge(photos::routes())
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
