//! Why the domain refuses a request, in its own terms. The domain folders answer with `Refusal`, never with an
//! HTTP status; `http::error` maps each kind to a status and the API's error body.

use crate::store::StoreError;
use std::fmt::Display;

#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The request itself is wrong: a value malformed, out of range or missing.
    #[error("{0}")]
    Invalid(String),
    /// The credentials are missing or not valid.
    #[error("{0}")]
    Unauthorized(String),
    /// The caller may not do this (a grid or task not its team's).
    #[error("{0}")]
    Forbidden(String),
    /// Something the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts what is stored now (already done, already taken, changed meanwhile).
    #[error("{0}")]
    Conflict(String),
    /// Well formed but not acceptable as it stands; `code` tells clients why (e.g. `invalid_csv`).
    #[error("{message}")]
    Unacceptable { code: &'static str, message: String },
    /// More than the server takes in one request; `code` tells clients what (e.g. `sync_too_large`).
    #[error("{message}")]
    TooLarge { code: &'static str, message: String },
    /// Too many attempts: refused without looking further, until `retry_after_secs` have passed.
    #[error("{message}")]
    TooManyAttempts { message: String, retry_after_secs: u64 },
    /// The server is busy with work that comes first: come back after `retry_after_secs`; nothing was taken.
    #[error("{message}")]
    Busy { message: String, retry_after_secs: u64 },
    /// An unexpected failure: the detail is for the log, not for the client.
    #[error("{0}")]
    Internal(String),
    /// Storage could not do it (not found, conflict, place id taken, full, database).
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Refused<T> = Result<T, Refusal>;

impl Refusal {
    pub fn invalid(message: impl Into<String>) -> Self {
        Refusal::Invalid(message.into())
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Refusal::Unauthorized(message.into())
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Refusal::Forbidden(message.into())
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Refusal::NotFound(message.into())
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Refusal::Conflict(message.into())
    }
    pub fn unacceptable(code: &'static str, message: impl Into<String>) -> Self {
        Refusal::Unacceptable { code, message: message.into() }
    }
    pub fn internal(detail: impl Display) -> Self {
        Refusal::Internal(detail.to_string())
    }
}

impl From<sqlx::Error> for Refusal {
    fn from(e: sqlx::Error) -> Self {
        Refusal::Store(e.into())
    }
}

impl From<client_core::grid::doc::DocError> for Refusal {
    fn from(e: client_core::grid::doc::DocError) -> Self {
        Refusal::Store(e.into())
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("readable source folder") {
            let path = entry.expect("readable source entry").path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// Each source file under `server/src`, with its path relative to it.
    fn sources() -> Vec<(String, String)> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let mut out: Vec<(String, String)> = files
            .iter()
            .map(|f| {
                let rel = f.strip_prefix(&src).expect("under src").to_string_lossy().replace('\\', "/");
                (rel, std::fs::read_to_string(f).expect("readable source file"))
            })
            .collect();
        out.sort();
        out
    }

    /// Only `http/` builds HTTP errors.
    #[test]
    fn the_domain_refuses_without_http_errors() {
        let http_error = concat!("Api", "Error");
        let strays: Vec<String> = sources()
            .into_iter()
            .filter(|(rel, text)| !rel.starts_with("http/") && text.contains(http_error))
            .map(|(rel, _)| rel)
            .collect();
        assert!(strays.is_empty(), "HTTP errors outside http/ (refuse with Refusal instead): {strays:?}");
    }

    /// Whether the source names the `http` module through `crate`: directly, or in a group of `crate`'s items.
    fn uses_http(text: &str) -> bool {
        if text.contains(concat!("crate::", "http")) {
            return true;
        }
        text.match_indices(concat!("crate::", "{")).any(|(at, open)| {
            let (mut depth, mut item) = (0, String::new());
            for c in text[at + open.len()..].chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        if item.trim().starts_with("http") {
                            return true;
                        }
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            item.trim().starts_with("http")
        })
    }

    /// Nothing below `http/` depends on it. Only the wiring above it names it: `lib.rs`, which builds the router
    /// and serves it (and keeps the HTTP layer's shared state, such as the upload permits, in `AppState`), and
    /// `serving.rs`, which re-exports for a team's hub the parts of `http` it serves the same way.
    #[test]
    fn nothing_outside_http_depends_on_it() {
        const WIRING: &[&str] = &["lib.rs", "serving.rs"];
        let strays: Vec<String> = sources()
            .into_iter()
            .filter(|(rel, text)| !rel.starts_with("http/") && !WIRING.contains(&rel.as_str()) && uses_http(text))
            .map(|(rel, _)| rel)
            .collect();
        assert!(strays.is_empty(), "files outside http/ that use it (the domain answers in its own terms): {strays:?}");
        assert!(uses_http(concat!("use crate", "::{store, http::auth::DeviceAuth};")));
        assert!(!uses_http(concat!("use crate", "::{store::{grids, http_free}, AppState};")));
    }
}
