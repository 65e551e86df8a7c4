//! Server-wide settings chosen by the office, with their allowed values, and where they are stored.

use crate::store::db::{now_ms, Db};

/// Whether household contact names and phones are sent to the devices of the team holding the grid.
pub const SHARE_CONTACTS: &str = "share_contacts";

/// Known settings: name, allowed values, default.
pub const KNOWN: &[(&str, &[&str], &str)] = &[(SHARE_CONTACTS, &["on", "off"], "off")];

/// A setting's stored value, or its default.
pub async fn get_value(db: &Db, name: &str) -> Result<String, sqlx::Error> {
    let default = KNOWN.iter().find(|k| k.0 == name).map(|k| k.2).unwrap_or_default();
    let row: Option<(String,)> =
        sqlx::query_as("SELECT value FROM settings WHERE name = $1").bind(name).fetch_optional(&db.pool).await?;
    Ok(row.map(|r| r.0).unwrap_or_else(|| default.to_string()))
}

/// Stores a setting's value; the caller has checked it is one of the allowed values.
pub async fn set_value(db: &Db, name: &str, value: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO settings (name, value, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind(value)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(())
}
