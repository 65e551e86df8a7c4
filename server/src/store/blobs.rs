//! The content-addressed store's index (`blobs`: each file's size and type, by its SHA-256) and who may read a
//! file (`blobs.rs` holds the files).

use crate::store::db::{now_ms, Db};
use crate::store::documents::EVERYONE;
use crate::store::error::StoreResult;

/// Records a file once written; a file stored already keeps its row.
pub async fn insert(db: &Db, sha256: &str, size: u64, content_type: &str, by: &str) -> StoreResult<()> {
    let (_gate, mut tx) = db.begin_write().await?;
    index(&mut tx, sha256, size, content_type, by).await?;
    tx.commit().await?;
    Ok(())
}

/// `insert` within the caller's write transaction.
pub async fn index(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    sha256: &str,
    size: u64,
    content_type: &str,
    by: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO blobs (sha256, size, content_type, stored_at, stored_by) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(sha256)
    .bind(i64::try_from(size).unwrap_or(i64::MAX))
    .bind(content_type)
    .bind(now_ms())
    .bind(by)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Forgets a file's row (its file is deleted next).
pub async fn delete(db: &Db, sha256: &str) -> StoreResult<()> {
    let (_gate, mut tx) = db.begin_write().await?;
    sqlx::query("DELETE FROM blobs WHERE sha256 = $1").bind(sha256).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// A stored file's size and type.
pub async fn size_and_type(db: &Db, sha256: &str) -> StoreResult<Option<(u64, String)>> {
    let row: Option<(i64, String)> = sqlx::query_as("SELECT size, content_type FROM blobs WHERE sha256 = $1")
        .bind(sha256)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(|(size, content_type)| (u64::try_from(size).unwrap_or(0), content_type)))
}

/// Whether a device of `team` may read the file: it is attached to a bulletin not withdrawn whose audience is
/// everyone or includes the team.
pub async fn attached_for(db: &Db, sha256: &str, team: Option<&str>) -> StoreResult<bool> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT a.bulletin_id FROM bulletin_attachments a JOIN bulletins b ON b.id = a.bulletin_id \
         JOIN document_audience d ON d.kind = 'bulletin' AND d.doc_id = b.id \
         WHERE a.sha256 = $1 AND b.withdrawn_at IS NULL AND (d.team = $2 OR d.team = $3) LIMIT 1",
    )
    .bind(sha256)
    .bind(EVERYONE)
    .bind(team.unwrap_or(EVERYONE))
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.is_some())
}
