//! The audit log: who did what and when (logins, imports, assignments, enrolments, rejected syncs). Writing an
//! event never fails the request it describes.

use crate::store::audit;
use crate::store::db::{now_ms, Db};
use crate::store::StoreResult;

pub use crate::store::audit::AuditRecord;

/// Records an event. A failure to write the audit row is logged, never fatal to the request it describes.
pub async fn record(db: &Db, username: Option<&str>, action: &str, detail: &str) {
    if let Err(e) = audit::append_event(db, now_ms(), username, action, detail).await {
        tracing::warn!(error = %e, action, "could not write the audit log");
    }
}

/// Events at or after `since_ms`, in the order they were written; at most 10,000.
pub async fn read_since(db: &Db, since_ms: i64) -> StoreResult<Vec<AuditRecord>> {
    audit::events_since(db, since_ms).await
}
