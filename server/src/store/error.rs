//! The storage layer's one error type. It says what went wrong in storage terms; `http::error` maps each kind
//! to a status and the API's error body.

use std::fmt::Display;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Something asked for is not stored.
    #[error("{0}")]
    NotFound(String),
    /// Another writer changed what this one read; nothing was written, and a retry may succeed.
    #[error("{0}")]
    Conflict(String),
    /// A found place's id is already held by a place of another grid (which one is not said: it may be another
    /// team's).
    #[error("grid {grid}: place {place} already belongs to another grid")]
    PlaceTaken { place: String, grid: String },
    /// The database cannot write: its disk is full or failing. Nothing of the transaction was stored.
    #[error("the database cannot write (disk full or failing): {0}")]
    Full(sqlx::Error),
    /// Any other database failure.
    #[error("database: {0}")]
    Database(sqlx::Error),
    /// Stored data that cannot be read back, or an invariant of the stored data that does not hold.
    #[error("{0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    pub fn conflict(message: impl Into<String>) -> Self {
        StoreError::Conflict(message.into())
    }
    pub fn internal(detail: impl Display) -> Self {
        StoreError::Internal(detail.to_string())
    }
    /// The refusal of a found place whose id a place of another grid holds; counted as a rejected change.
    pub fn place_taken(place: &str, grid: &str) -> Self {
        metrics::counter!(crate::ops::CHANGES_REJECTED).increment(1);
        StoreError::PlaceTaken { place: place.to_string(), grid: grid.to_string() }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_storage_full(&e) {
            StoreError::Full(e)
        } else {
            StoreError::Database(e)
        }
    }
}

impl From<client_core::grid::doc::DocError> for StoreError {
    fn from(e: client_core::grid::doc::DocError) -> Self {
        StoreError::Internal(format!("document: {e}"))
    }
}

/// SQLite's SQLITE_FULL (13) and I/O errors (10 and its extended codes, e.g. a write refused by a file-size
/// limit), and PostgreSQL's disk_full (53100).
fn is_storage_full(e: &sqlx::Error) -> bool {
    let Some(code) = e.as_database_error().and_then(|d| d.code()) else { return false };
    match code.parse::<i64>() {
        Ok(n) if !code.starts_with('5') || code.len() != 5 => n == 13 || n & 0xff == 10 || n & 0xff == 13,
        _ => code == "53100",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conflict_keeps_its_message() {
        let e = StoreError::conflict("a grid changed concurrently while this request wrote it; retry");
        assert!(matches!(&e, StoreError::Conflict(m) if m.ends_with("retry")));
    }
}
