//! The storage layer: the database and its writer, grid documents, the SQL projection of their contents, and
//! moving data between backends. It answers with `StoreError`, which `http::error` maps to statuses.

pub mod area_progress;
pub mod db;
pub mod documents;
pub mod error;
pub mod grids;
pub mod migrate;
pub mod projection;

pub use error::{StoreError, StoreResult};
