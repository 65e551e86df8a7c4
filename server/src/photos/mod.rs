//! Photos: the evidence a visit carries; `check` is what the server verifies before it keeps one.

pub mod check;
pub mod retention;
pub mod review;
pub mod upload;
