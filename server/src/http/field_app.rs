//! The volunteers' web app at `/field/`: an installable, offline-first app whose every file is compiled into
//! the binary (built from `web/field/` into `server/assets/field/`), plus the coverage rules as JSON.
//!
//! `router()` needs no server state, so any Doorstep server that answers the device API can mount it.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// Same origin only; the automerge core is WebAssembly, which needs `wasm-unsafe-eval` to be compiled.
const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
                   img-src 'self' data:; connect-src 'self'; worker-src 'self'; manifest-src 'self'; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The service worker names its cache after this; the build leaves it as a placeholder in `sw.js`.
const VERSION_PLACEHOLDER: &str = "__DOORSTEP_FIELD_VERSION__";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:literal) => {
        Asset { name: $name, content_type: $type, body: include_bytes!(concat!("../../assets/field/", $name)) }
    };
}

static BUILT: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("automerge.wasm", "application/wasm"),
    asset!("manifest.webmanifest", "application/manifest+json"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("sw.js", "text/javascript; charset=utf-8"),
];

static RULES: LazyLock<Vec<u8>> =
    LazyLock::new(|| serde_json::to_vec(&client_core::grid::rules_table::rules_table()).expect("rules serialize"));

/// The version the service worker caches under: a digest of every built file and of the rules, so a binary
/// with any of them changed makes installed apps fetch the new files.
pub static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hash = Sha256::new();
    for (name, body) in BUILT.iter().map(|a| (a.name, a.body)).chain([("rules.json", RULES.as_slice())]) {
        hash.update(name.as_bytes());
        hash.update((body.len() as u64).to_le_bytes());
        hash.update(body);
    }
    hash.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
});

static SERVICE_WORKER: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let built = BUILT.iter().find(|a| a.name == "sw.js").expect("sw.js is built in");
    String::from_utf8_lossy(built.body).replace(VERSION_PLACEHOLDER, &VERSION).into_bytes()
});

fn body_of(name: &str) -> Option<(&'static str, &'static [u8])> {
    match name {
        "rules.json" => Some(("application/json", RULES.as_slice())),
        "sw.js" => Some(("text/javascript; charset=utf-8", SERVICE_WORKER.as_slice())),
        _ => BUILT.iter().find(|a| a.name == name).map(|a| (a.content_type, a.body)),
    }
}

fn serve(name: &str) -> Response {
    let Some((content_type, body)) = body_of(name) else {
        return (StatusCode::NOT_FOUND, "no such file in the field app").into_response();
    };
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The service worker keeps the offline copy; the browser's own cache must not hold stale files.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    resp
}

/// The app's routes: `/field` redirects to `/field/`, which serves the page; `/field/<file>` serves its files.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/field", get(|| async { Redirect::permanent("/field/") }))
        .route("/field/", get(|| async { serve("index.html") }))
        .route("/field/{file}", get(|Path(file): Path<String>| async move { serve(&file) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_caches_every_file_under_the_version_of_all() {
        assert_eq!(VERSION.len(), 16);
        let sw = String::from_utf8_lossy(&SERVICE_WORKER).into_owned();
        assert!(!sw.contains(VERSION_PLACEHOLDER) && sw.contains(VERSION.as_str()));
        for name in BUILT.iter().map(|a| a.name).chain(["rules.json"]).filter(|n| *n != "sw.js") {
            assert!(sw.contains(&format!("\"{name}\"")), "sw.js does not cache {name}");
        }
    }
}
