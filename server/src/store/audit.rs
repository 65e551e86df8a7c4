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

/// Which events to read: those at or after `since_ms` and before `until_ms` (if given), of one person and of one
/// action or family of actions (`campaign` takes `campaign.apply`), the oldest or the newest `limit` of them.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub since_ms: i64,
    pub until_ms: Option<i64>,
    pub username: Option<String>,
    pub action: Option<String>,
    pub newest_first: bool,
    pub limit: i64,
}

/// The events the filter selects, in the order it asks for.
pub async fn events_matching(db: &Db, filter: &AuditFilter) -> StoreResult<Vec<AuditRecord>> {
    let order = if filter.newest_first { "DESC" } else { "ASC" };
    let action = filter.action.as_deref().unwrap_or("");
    // The family: the action followed by a dot and anything, with LIKE's wildcards in it taken literally.
    let family = format!("{}.%", action.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
    let sql = format!(
        "SELECT at, username, action, detail FROM audit WHERE at >= $1 AND ($2 < 0 OR at < $2) \
         AND ($3 = '' OR username = $3) AND ($4 = '' OR action = $4 OR action LIKE $5 ESCAPE '\\') \
         ORDER BY id {order} LIMIT $6"
    );
    let rows: Vec<(i64, Option<String>, String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(filter.since_ms)
        .bind(filter.until_ms.unwrap_or(-1))
        .bind(filter.username.as_deref().unwrap_or(""))
        .bind(action)
        .bind(family)
        .bind(filter.limit)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(at_ms, username, action, detail)| AuditRecord { at_ms, username, action, detail })
        .collect())
}
