//! The campaign definitions the office applied (`campaigns`): one row per version, the file as applied.

use crate::store::db::Db;
use crate::store::StoreResult;

type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// One applied version: (version, definition file, applied at in ms, applied by).
pub type Version = (i64, String, i64, String);

/// The newest version, if any was applied.
pub async fn newest(db: &Db) -> StoreResult<Option<Version>> {
    Ok(sqlx::query_as(
        "SELECT version, definition, applied_at, applied_by FROM campaigns ORDER BY version DESC LIMIT 1",
    )
    .fetch_optional(&db.pool)
    .await?)
}

/// The version in force at `at_ms`: the newest applied at or before it, if any.
pub async fn in_force_at(db: &Db, at_ms: i64) -> StoreResult<Option<Version>> {
    Ok(sqlx::query_as(
        "SELECT version, definition, applied_at, applied_by FROM campaigns WHERE applied_at <= $1 \
         ORDER BY version DESC LIMIT 1",
    )
    .bind(at_ms)
    .fetch_optional(&db.pool)
    .await?)
}

/// Every applied version's definition, oldest first.
pub async fn definitions(db: &Db) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT definition FROM campaigns ORDER BY version").fetch_all(&db.pool).await?;
    Ok(rows.into_iter().map(|(d,)| d).collect())
}

/// The newest version's number (0: none applied), read through `conn`: in the transaction that applies the next
/// (so that two applies cannot both take it), or in one holding grid locks (a version applied meanwhile by
/// another server instance is seen).
pub async fn newest_version(conn: &mut sqlx::AnyConnection) -> StoreResult<i64> {
    let (v,): (Option<i64>,) = sqlx::query_as("SELECT MAX(version) FROM campaigns").fetch_one(&mut *conn).await?;
    Ok(v.unwrap_or(0))
}

pub async fn insert(tx: &mut Tx, version: i64, definition: &str, at_ms: i64, by: &str) -> StoreResult<()> {
    sqlx::query("INSERT INTO campaigns (version, definition, applied_at, applied_by) VALUES ($1, $2, $3, $4)")
        .bind(version)
        .bind(definition)
        .bind(at_ms)
        .bind(by)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Places per (village, kind, rural) of the places that count (not rejected or merged), for the kinds given.
pub async fn places_by_village_and_kind(db: &Db, kinds: &[String]) -> StoreResult<Vec<(String, String, i64, i64)>> {
    if kinds.is_empty() {
        return Ok(Vec::new());
    }
    let list = (1..=kinds.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT village_code, kind, rural, CAST(COUNT(*) AS BIGINT) FROM places \
         WHERE kind IN ({list}) AND status NOT IN ('rejected', 'merged') GROUP BY village_code, kind, rural"
    );
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    for k in kinds {
        query = query.bind(k);
    }
    Ok(query.fetch_all(&db.pool).await?)
}

/// The ids of the places that count, of this kind and setting, in order.
pub async fn place_ids_of(db: &Db, kind: &str, rural: bool) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT place_id FROM places WHERE kind = $1 AND rural = $2 AND status NOT IN ('rejected', 'merged') \
         ORDER BY place_id",
    )
    .bind(kind)
    .bind(i64::from(rural))
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// The definition of a version, if it was applied.
pub async fn definition_of(db: &Db, version: i64) -> StoreResult<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as("SELECT definition FROM campaigns WHERE version = $1")
        .bind(version)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(|(d,)| d))
}

/// The newest version, if its places are not all recounted yet.
pub async fn not_recounted(db: &Db) -> StoreResult<Option<i64>> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT version, recounted FROM campaigns ORDER BY version DESC LIMIT 1")
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.filter(|(_, done)| *done == 0).map(|(v, _)| v))
}

pub async fn mark_recounted(db: &Db, version: i64) -> StoreResult<()> {
    sqlx::query("UPDATE campaigns SET recounted = 1 WHERE version = $1").bind(version).execute(&db.pool).await?;
    Ok(())
}
