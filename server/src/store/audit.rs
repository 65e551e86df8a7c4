//! The audit log as stored (`audit`): events appended, read back in the order they were written.

use crate::store::db::Db;
use crate::store::StoreResult;

/// One event of the audit log.
pub struct AuditRecord {
    /// Milliseconds since the epoch.
    pub at_ms: i64,
    pub username: Option<String>,
    pub action: String,
    pub detail: String,
}

/// Appends an event.
pub async fn append_event(db: &Db, at_ms: i64, username: Option<&str>, action: &str, detail: &str) -> StoreResult<()> {
    sqlx::query("INSERT INTO audit (at, username, action, detail) VALUES ($1, $2, $3, $4)")
        .bind(at_ms)
        .bind(username)
        .bind(action)
        .bind(detail)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Events at or after `since_ms`, in the order they were written; at most 10,000.
pub async fn events_since(db: &Db, since_ms: i64) -> StoreResult<Vec<AuditRecord>> {
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
