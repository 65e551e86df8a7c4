//! The office's settings as stored (`settings`): one value per name.

use crate::store::db::Db;
use crate::store::StoreResult;

/// A setting's stored value, if it was ever set.
pub async fn stored_value(db: &Db, name: &str) -> StoreResult<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT value FROM settings WHERE name = $1").bind(name).fetch_optional(&db.pool).await?;
    Ok(row.map(|r| r.0))
}

/// Stores a setting's value, replacing the one stored.
pub async fn store_value(db: &Db, name: &str, value: &str, now_ms: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO settings (name, value, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind(value)
    .bind(now_ms)
    .execute(&db.pool)
    .await?;
    Ok(())
}
