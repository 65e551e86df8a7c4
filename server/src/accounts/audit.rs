//! The audit log: who did what and when (logins, imports, assignments, enrolments, rejected syncs). Writing an
//! event never fails the request it describes.

use crate::store::audit;
use crate::store::db::{now_ms, Db};
use crate::store::StoreResult;

pub use crate::store::audit::{AuditFilter, AuditRecord};

/// Records an event. A failure to write the audit row is logged, never fatal to the request it describes.
pub async fn record(db: &Db, username: Option<&str>, action: &str, detail: &str) {
    if let Err(e) = audit::append_event(db, now_ms(), username, action, detail).await {
        tracing::warn!(error = %e, action, "could not write the audit log");
    }
}

/// The most events one read returns.
pub const MAX_EVENTS: i64 = 10_000;

/// The events `filter` selects, at most [`MAX_EVENTS`].
pub async fn read(db: &Db, filter: &AuditFilter) -> StoreResult<Vec<AuditRecord>> {
    audit::events_matching(db, &AuditFilter { limit: filter.limit.clamp(1, MAX_EVENTS), ..filter.clone() }).await
}
