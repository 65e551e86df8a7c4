//! Storage of bulletins as the dashboard and the reports read them (`bulletins`, `bulletin_attachments`), of who
//! read which (`document_entries` of kind `bulletin`), and whom each is meant for, in people.

use crate::store::db::Db;
use crate::store::error::StoreResult;
use client_core::bulletin::Attachment;
use sqlx::{Any, Transaction};

type Tx = Transaction<'static, Any>;

/// A bulletin's row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BulletinRow {
    pub id: String,
    pub edition: i64,
    pub title: String,
    pub body: String,
    pub kind: String,
    pub fraud_type: String,
    pub priority: String,
    pub audience: String,
    pub expires_at: Option<i64>,
    pub published_at: i64,
    pub published_by: String,
    pub updated_at: i64,
    pub withdrawn_at: Option<i64>,
}

const COLUMNS: &str = "id, edition, title, body, kind, fraud_type, priority, audience, expires_at, published_at, \
                       published_by, updated_at, withdrawn_at";

/// Writes a bulletin's row (a new one, or its new edition) and its attachments.
pub async fn put(tx: &mut Tx, b: &BulletinRow, attachments: &[Attachment]) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO bulletins (id, edition, title, body, kind, fraud_type, priority, audience, expires_at, \
         published_at, published_by, updated_at, withdrawn_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (id) DO UPDATE SET \
         edition = excluded.edition, title = excluded.title, body = excluded.body, kind = excluded.kind, \
         fraud_type = excluded.fraud_type, priority = excluded.priority, audience = excluded.audience, \
         expires_at = excluded.expires_at, updated_at = excluded.updated_at",
    )
    .bind(&b.id)
    .bind(b.edition)
    .bind(&b.title)
    .bind(&b.body)
    .bind(&b.kind)
    .bind(&b.fraud_type)
    .bind(&b.priority)
    .bind(&b.audience)
    .bind(b.expires_at)
    .bind(b.published_at)
    .bind(&b.published_by)
    .bind(b.updated_at)
    .bind(b.withdrawn_at)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM bulletin_attachments WHERE bulletin_id = $1").bind(&b.id).execute(&mut **tx).await?;
    for (i, a) in attachments.iter().enumerate() {
        sqlx::query(
            "INSERT INTO bulletin_attachments (bulletin_id, position, sha256, name, content_type, size) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&b.id)
        .bind(i as i64)
        .bind(&a.sha256)
        .bind(&a.name)
        .bind(&a.content_type)
        .bind(i64::try_from(a.size).unwrap_or(i64::MAX))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

pub async fn set_withdrawn(tx: &mut Tx, id: &str, at: i64) -> StoreResult<()> {
    sqlx::query("UPDATE bulletins SET withdrawn_at = $1, updated_at = $1 WHERE id = $2 AND withdrawn_at IS NULL")
        .bind(at)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn get(db: &Db, id: &str) -> StoreResult<Option<BulletinRow>> {
    let sql = format!("SELECT {COLUMNS} FROM bulletins WHERE id = $1");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&db.pool).await?)
}

/// Every bulletin, newest first.
pub async fn list(db: &Db) -> StoreResult<Vec<BulletinRow>> {
    let sql = format!("SELECT {COLUMNS} FROM bulletins ORDER BY published_at DESC, id");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&db.pool).await?)
}

/// Bulletins published in `[from, to)` (ms) and not withdrawn, oldest first.
pub async fn published_between(db: &Db, from: i64, to: i64) -> StoreResult<Vec<BulletinRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM bulletins WHERE published_at >= $1 AND published_at < $2 AND withdrawn_at IS NULL \
         ORDER BY published_at, id"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(from).bind(to).fetch_all(&db.pool).await?)
}

/// Bulletins past their expiry and not yet withdrawn.
pub async fn expired(db: &Db, now: i64) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM bulletins WHERE expires_at <= $1 AND withdrawn_at IS NULL ORDER BY id")
            .bind(now)
            .fetch_all(&db.pool)
            .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

pub async fn attachments(db: &Db, id: &str) -> StoreResult<Vec<Attachment>> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT sha256, name, content_type, size FROM bulletin_attachments WHERE bulletin_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(sha256, name, content_type, size)| Attachment {
            sha256,
            name,
            content_type,
            size: u64::try_from(size).unwrap_or(0),
        })
        .collect())
}

/// The teams a bulletin is meant for ('*': every device).
pub async fn audience_teams(db: &Db, id: &str) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT team FROM document_audience WHERE kind = 'bulletin' AND doc_id = $1 ORDER BY team")
            .bind(id)
            .fetch_all(&db.pool)
            .await?;
    Ok(rows.into_iter().map(|(t,)| t).collect())
}

/// Whether `user_id` may publish bulletins without being the office.
pub async fn may_publish(db: &Db, user_id: &str) -> StoreResult<bool> {
    let row: Option<(Option<i64>,)> =
        sqlx::query_as("SELECT may_publish FROM users WHERE id = $1").bind(user_id).fetch_optional(&db.pool).await?;
    Ok(matches!(row, Some((Some(_),))))
}

/// An area by code or name, of the given kinds: `(code, name, kind)` of every match.
pub async fn areas_named(db: &Db, code_or_name: &str, kinds: &[&str]) -> StoreResult<Vec<(String, String, String)>> {
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT code, name, kind FROM areas WHERE code = $1 OR name = $1 ORDER BY code")
            .bind(code_or_name)
            .fetch_all(&db.pool)
            .await?;
    Ok(rows.into_iter().filter(|(_, _, k)| kinds.contains(&k.as_str())).collect())
}

/// The teams assigned a grid under the village or community `village`.
pub async fn teams_of_village(db: &Db, village: &str) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT s.team FROM assignments s JOIN areas g ON g.code = s.grid_code WHERE g.parent_code = $1 \
         ORDER BY s.team",
    )
    .bind(village)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(|(t,)| t).collect())
}

/// The teams assigned a grid in the town `town`.
pub async fn teams_of_town(db: &Db, town: &str) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT s.team FROM assignments s JOIN areas g ON g.code = s.grid_code \
         JOIN areas v ON v.code = g.parent_code WHERE v.parent_code = $1 ORDER BY s.team",
    )
    .bind(town)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(|(t,)| t).collect())
}

pub async fn team_exists(db: &Db, team: &str) -> StoreResult<bool> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT name FROM teams WHERE name = $1").bind(team).fetch_optional(&db.pool).await?;
    Ok(row.is_some())
}

/// A person expected to read a bulletin: the active volunteers and leads of its teams.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Reader {
    pub username: String,
    pub team: String,
}

/// The active volunteers and leads of `teams` (every team's, with `everyone`), by team and name.
pub async fn readers_of(db: &Db, teams: &[String], everyone: bool) -> StoreResult<Vec<Reader>> {
    let rows: Vec<Reader> = sqlx::query_as(
        "SELECT username, team FROM users WHERE disabled_at IS NULL AND team IS NOT NULL \
         AND role IN ('volunteer', 'lead') ORDER BY team, username",
    )
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().filter(|r| everyone || teams.contains(&r.team)).collect())
}

/// How many people of `teams` (every team with `*`) read `edition` of bulletin `id`: distinct readers per team as
/// they were when they read it, counted from an index alone (`document_entries_readers`).
pub async fn readers_of_edition(db: &Db, id: &str, edition: i64, teams: &[String]) -> StoreResult<usize> {
    let everyone = teams.iter().any(|t| t == crate::store::documents::EVERYONE);
    // Receipts name the edition read; a later one than the current does not exist.
    let detail = serde_json::json!({ "edition": edition }).to_string();
    let rows: Vec<(Option<String>, i64)> = sqlx::query_as(
        "SELECT team, COUNT(DISTINCT username) FROM document_entries \
         WHERE kind = 'bulletin' AND doc_id = $1 AND detail = $2 GROUP BY team",
    )
    .bind(id)
    .bind(&detail)
    .fetch_all(&db.pool)
    .await?;
    let read = rows
        .into_iter()
        .filter(|(t, _)| everyone || t.as_ref().is_some_and(|t| teams.contains(t)))
        .map(|(_, n)| n)
        .sum::<i64>();
    Ok(usize::try_from(read).unwrap_or(0))
}

/// A receipt as the server received it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReceiptRow {
    pub username: String,
    pub device_id: String,
    pub at: i64,
    pub detail: String,
}

/// The receipts of a bulletin, oldest read first.
pub async fn receipts(db: &Db, id: &str) -> StoreResult<Vec<ReceiptRow>> {
    Ok(sqlx::query_as(
        "SELECT username, device_id, at, detail FROM document_entries WHERE kind = 'bulletin' AND doc_id = $1 \
         ORDER BY at, username",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?)
}

/// The villages (and communities) whose grids each team is assigned: `(team, town name, village code, name)`.
pub async fn villages_of_teams(db: &Db) -> StoreResult<Vec<(String, String, String, String)>> {
    Ok(sqlx::query_as(
        "SELECT DISTINCT s.team, COALESCE(t.name, ''), v.code, v.name FROM assignments s \
         JOIN areas g ON g.code = s.grid_code JOIN areas v ON v.code = g.parent_code \
         LEFT JOIN areas t ON t.code = v.parent_code ORDER BY 2, 4, 1",
    )
    .fetch_all(&db.pool)
    .await?)
}
