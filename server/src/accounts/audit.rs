//! The audit log: who did what and when (logins, imports, assignments, enrolments, rejected syncs).

use crate::store::db::{now_ms, Db};

/// Records an event. A failure to write the audit row is logged, never fatal to the request it describes.
pub async fn record(db: &Db, username: Option<&str>, action: &str, detail: &str) {
    let result = sqlx::query("INSERT INTO audit (at, username, action, detail) VALUES ($1, $2, $3, $4)")
        .bind(now_ms())
        .bind(username)
        .bind(action)
        .bind(detail)
        .execute(&db.pool)
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, action, "could not write the audit log");
    }
}
