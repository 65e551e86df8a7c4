//! Operations endpoints: liveness (`/healthz`), readiness (`/readyz`, the database answers) and Prometheus
//! metrics (`/metrics`, on its own listen address).

use crate::ops::prometheus;
use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

/// The probes, served on the API's address (load balancers and orchestrators call them there).
pub fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(|| async { "ok" })).route("/readyz", get(ready))
}

/// The metrics, served only on their own address (`doorstep serve --metrics-listen`): they tell how busy the
/// server is and what it refused, which is the operator's business alone, and the API's address is usually
/// open to every phone.
pub fn metrics_routes() -> Router {
    Router::new().route("/metrics", get(metrics_text))
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    match state.db.answers().await {
        Ok(_) => (StatusCode::OK, "ready".to_string()),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable".to_string())
        }
    }
}

async fn metrics_text() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], prometheus().render())
}
