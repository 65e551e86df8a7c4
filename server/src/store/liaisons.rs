//! The liaison roster as stored (`roster_entries`): the 分管领导 and 联络员 each area names, replaced per area.

use crate::store::db::Db;
use crate::store::StoreResult;

/// One stored roster entry.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EntryRecord {
    pub entry_id: String,
    pub area_code: String,
    pub position: i64,
    pub duty: String,
    pub name: String,
    pub unit: String,
    pub post: String,
    pub phone: String,
    pub note: String,
    pub updated_by: String,
    pub updated_at: i64,
}

const COLUMNS: &str = "entry_id, area_code, position, duty, name, unit, post, phone, note, updated_by, updated_at";

/// Every entry, by area and position.
pub async fn all_entries(db: &Db) -> StoreResult<Vec<EntryRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM roster_entries ORDER BY area_code, position");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&db.pool).await?)
}

/// Replaces an area's entries with `entries` (their `area_code` is the area's), in one transaction.
pub async fn replace_area(db: &Db, area: &str, entries: &[EntryRecord]) -> StoreResult<()> {
    let (_gate, mut tx) = db.begin_write().await?;
    sqlx::query("DELETE FROM roster_entries WHERE area_code = $1").bind(area).execute(&mut *tx).await?;
    let sql = format!("INSERT INTO roster_entries ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)");
    for e in entries {
        sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(&e.entry_id)
            .bind(area)
            .bind(e.position)
            .bind(&e.duty)
            .bind(&e.name)
            .bind(&e.unit)
            .bind(&e.post)
            .bind(&e.phone)
            .bind(&e.note)
            .bind(&e.updated_by)
            .bind(e.updated_at)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Every area with its name, kind and parent: the tree the roster and submissions are scoped by.
pub async fn area_tree(db: &Db) -> StoreResult<Vec<(String, String, String, Option<String>)>> {
    Ok(sqlx::query_as("SELECT code, name, kind, parent_code FROM areas ORDER BY code").fetch_all(&db.pool).await?)
}
