//! The volunteers' web app at `/field/`: an installable, offline-first app whose every file is compiled into
//! the binary (built from `web/field/` into `server/assets/field/`), plus the rules of the campaign in force as
//! JSON.
//!
//! `router()` needs no server state but a source of the rules, so any Doorstep server that answers the device
//! API can mount it (the hub does).

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use client_core::campaign::Campaign;
use client_core::grid::rules_table::rules_table;
use sha2::{Digest, Sha256};
use std::sync::{Arc, LazyLock};

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

/// The rules the app counts with (`rules.json`), as the server or hub serving it holds them now: the campaign's
/// version changes them without a new build.
pub type RulesSource = Arc<dyn Fn() -> Arc<Vec<u8>> + Send + Sync>;

pub fn rules_json(campaign: &Campaign, version: i64) -> Vec<u8> {
    serde_json::to_vec(&rules_table(campaign, version)).expect("rules serialize")
}

/// A digest of every built file.
static BUILT_DIGEST: LazyLock<Sha256> = LazyLock::new(|| {
    let mut hash = Sha256::new();
    for a in BUILT {
        hash.update(a.name.as_bytes());
        hash.update((a.body.len() as u64).to_le_bytes());
        hash.update(a.body);
    }
    hash
});

/// The version the service worker caches under: a digest of every built file and of the rules, so that a binary
/// with any of them changed, or a new campaign version, makes installed apps fetch the new files.
pub fn version(rules: &[u8]) -> String {
    let mut hash = BUILT_DIGEST.clone();
    hash.update(b"rules.json");
    hash.update((rules.len() as u64).to_le_bytes());
    hash.update(rules);
    hash.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn service_worker(rules: &[u8]) -> Vec<u8> {
    let built = BUILT.iter().find(|a| a.name == "sw.js").expect("sw.js is built in");
    String::from_utf8_lossy(built.body).replace(VERSION_PLACEHOLDER, &version(rules)).into_bytes()
}

fn body_of(name: &str, rules: &RulesSource) -> Option<(&'static str, Vec<u8>)> {
    match name {
        "rules.json" => Some(("application/json", rules().to_vec())),
        "sw.js" => Some(("text/javascript; charset=utf-8", service_worker(&rules()))),
        _ => BUILT.iter().find(|a| a.name == name).map(|a| (a.content_type, a.body.to_vec())),
    }
}

fn serve(name: &str, rules: &RulesSource) -> Response {
    let Some((content_type, body)) = body_of(name, rules) else {
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
pub fn router<S: Clone + Send + Sync + 'static>(rules: RulesSource) -> Router<S> {
    let page = rules.clone();
    Router::new()
        .route("/field", get(|| async { Redirect::permanent("/field/") }))
        .route("/field/", get(move || async move { serve("index.html", &page) }))
        .route("/field/{file}", get(move |Path(file): Path<String>| async move { serve(&file, &rules) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_caches_every_file_under_the_version_of_all() {
        let rules = rules_json(Campaign::default_campaign(), 0);
        let version = version(&rules);
        assert_eq!(version.len(), 16);
        let sw = String::from_utf8_lossy(&service_worker(&rules)).into_owned();
        assert!(!sw.contains(VERSION_PLACEHOLDER) && sw.contains(version.as_str()));
        let other = rules_json(Campaign::default_campaign(), 1);
        assert_ne!(super::version(&other), version, "a new campaign version makes apps fetch the files again");
        for name in BUILT.iter().map(|a| a.name).chain(["rules.json"]).filter(|n| *n != "sw.js") {
            assert!(sw.contains(&format!("\"{name}\"")), "sw.js does not cache {name}");
        }
    }
}
