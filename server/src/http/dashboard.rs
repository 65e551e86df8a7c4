//! The office dashboard at `/`: a single page, its scripts and styles, compiled into the binary so it works with
//! no internet and no separate web server.

use crate::AppState;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("../../assets/index.html");

/// The page's scripts and styles, served at `/assets/<name>`: `app.js` (the shell, the session and the reading
/// views) and one script per part of the office console, each registering its views with `app.js`.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.js", JS, include_str!("../../assets/app.js")),
    ("app.css", CSS, include_str!("../../assets/app.css")),
    ("submissions.js", JS, include_str!("../../assets/submissions.js")),
    ("territory.js", JS, include_str!("../../assets/territory.js")),
    ("enrol.js", JS, include_str!("../../assets/enrol.js")),
    ("people.js", JS, include_str!("../../assets/people.js")),
    ("bulletins.js", JS, include_str!("../../assets/bulletins.js")),
    ("photos.js", JS, include_str!("../../assets/photos.js")),
];

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Same-origin only: the page loads nothing from elsewhere and runs no inline script.
const CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
}

pub fn routes() -> Router<AppState> {
    let mut router = Router::new().route("/", get(|| async { asset("text/html; charset=utf-8", INDEX) }));
    for &(name, content_type, body) in ASSETS {
        router = router.route(&format!("/assets/{name}"), get(move || async move { asset(content_type, body) }));
    }
    router
}
