//! What another Doorstep server, a team's hub, serves the way this one does: listening (plain HTTP or HTTPS,
//! with the same connection limits and graceful shutdown), the field web app, the bound of a sync body and its
//! refusals, and the Doorstep CA certificate's endpoints. A hub uses these and nothing else of `http`, so that
//! devices see one behaviour whichever of the two they sync with.

pub use crate::http::ca::{file_response as ca_file_response, info_response as ca_info_response};
pub use crate::http::field_app::{router as field_app, rules_json as field_rules_json, RulesSource as FieldRules};
pub use crate::http::listen::{bind, serve_app, tls_config};
pub use crate::http::{refuse_declared_oversize, MAX_BULK_BODY};

/// The answer to a request body that could not be read: too slow (408), too large (413), or broken off (400).
pub fn body_read_error(error: &(dyn std::error::Error + 'static)) -> axum::response::Response {
    axum::response::IntoResponse::into_response(crate::http::bodies::read_error(error))
}
