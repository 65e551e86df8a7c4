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

/// One event of the audit log.
pub struct AuditRecord {
    /// Milliseconds since the epoch.
    pub at_ms: i64,
    pub username: Option<String>,
    pub action: String,
    pub detail: String,
}

/// Events at or after `since_ms`, in the order they were written; at most 10,000.
pub async fn read_since(db: &Db, since_ms: i64) -> Result<Vec<AuditRecord>, sqlx::Error> {
    let rows: Vec<(i64, Option<String>, String, String)> =
        sqlx::query_as("SELECT at, username, action, detail FROM audit WHERE at >= $1 ORDER BY id LIMIT 10000")
            .bind(since_ms)
            .fetch_all(&db.pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(at_ms, username, action, detail)| AuditRecord { at_ms, username, action, detail })
        .collect())
}
