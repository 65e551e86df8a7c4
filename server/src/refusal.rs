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
    /// Something the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts what is stored now (already done, already taken, changed meanwhile).
    #[error("{0}")]
    Conflict(String),
    /// Well formed but not acceptable as it stands; `code` tells clients why (e.g. `invalid_csv`).
    #[error("{message}")]
    Unacceptable { code: &'static str, message: String },
    /// Too many attempts: refused without looking further, until `retry_after_secs` have passed.
    #[error("{message}")]
    TooManyAttempts { message: String, retry_after_secs: u64 },
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

    /// Only `http/` builds HTTP errors; `sync/` (the receiving side of a sync, whose refusals are mapped to the
    /// protocol's errors in one place) still does too.
    #[test]
    fn the_domain_refuses_without_http_errors() {
        let http_error = concat!("Api", "Error");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let mut strays: Vec<String> = files
            .iter()
            .map(|f| (f, f.strip_prefix(&src).expect("under src").to_string_lossy().replace('\\', "/")))
            .filter(|(_, rel)| !rel.starts_with("http/") && !rel.starts_with("sync/"))
            .filter(|(f, _)| std::fs::read_to_string(f).expect("readable source file").contains(http_error))
            .map(|(_, rel)| rel)
            .collect();
        strays.sort();
        assert!(strays.is_empty(), "HTTP errors outside http/ (refuse with Refusal instead): {strays:?}");
    }
}
