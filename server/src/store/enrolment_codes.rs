//! One-time enrolment codes as stored (`enrolment_codes`): issuing (only the code's digest is kept), listing,
//! revoking, and claiming one for a device in the transaction that enrols it.

use crate::store::db::Db;
use crate::store::StoreResult;
use sqlx::{Any, Transaction};

type Tx = Transaction<'static, Any>;

/// A code as listed: id, username, the user's team, issued by, issued, expires, used, device, revoked (ms).
pub type CodeRow = (String, String, Option<String>, String, i64, i64, Option<i64>, Option<String>, Option<i64>);

/// A new code's row.
pub struct NewCode<'a> {
    pub id: &'a str,
    pub code_hash: &'a str,
    pub user_id: &'a str,
    pub issued_by: &'a str,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// Stores a new code in the caller's transaction, and revokes the user's earlier codes that are still unused: the
/// newest sheet is the one that works.
pub async fn insert_replacing(tx: &mut Tx, code: NewCode<'_>) -> StoreResult<()> {
    sqlx::query(
        "UPDATE enrolment_codes SET revoked_at = $1 WHERE user_id = $2 AND used_at IS NULL AND revoked_at IS NULL",
    )
    .bind(code.issued_at)
    .bind(code.user_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO enrolment_codes (id, code_hash, user_id, issued_by, issued_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(code.id)
    .bind(code.code_hash)
    .bind(code.user_id)
    .bind(code.issued_by)
    .bind(code.issued_at)
    .bind(code.expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Codes issued since `since` (ms), of everyone (`team` is empty) or of one team's members, newest first.
pub async fn list(db: &Db, team: &str, since: i64) -> StoreResult<Vec<CodeRow>> {
    Ok(sqlx::query_as(
        "SELECT c.id, u.username, u.team, c.issued_by, c.issued_at, c.expires_at, c.used_at, c.device_id, c.revoked_at \
         FROM enrolment_codes c JOIN users u ON u.id = c.user_id \
         WHERE ($1 = '' OR u.team = $1) AND c.issued_at >= $2 ORDER BY c.issued_at DESC, u.username LIMIT 5000",
    )
    .bind(team)
    .bind(since)
    .fetch_all(&db.pool)
    .await?)
}

/// The team of a code's user: `None` if there is no such code, `Some(None)` if the user is in no team.
pub async fn owner_team(db: &Db, id: &str) -> StoreResult<Option<Option<String>>> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT u.team FROM enrolment_codes c JOIN users u ON u.id = c.user_id WHERE c.id = $1")
            .bind(id)
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.map(|(team,)| team))
}

/// Revokes a code that is still unused; false if it was used or revoked already.
pub async fn revoke(db: &Db, id: &str, now_ms: i64) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE enrolment_codes SET revoked_at = $1 WHERE id = $2 AND used_at IS NULL AND revoked_at IS NULL",
    )
    .bind(now_ms)
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The state of the code with this digest: its id, its person's username, expiry, and when it was used or
/// revoked.
pub type CodeState = (String, String, i64, Option<i64>, Option<i64>);

pub async fn by_hash(db: &Db, code_hash: &str) -> StoreResult<Option<CodeState>> {
    Ok(sqlx::query_as(
        "SELECT c.id, u.username, c.expires_at, c.used_at, c.revoked_at \
         FROM enrolment_codes c JOIN users u ON u.id = c.user_id WHERE c.code_hash = $1",
    )
    .bind(code_hash)
    .fetch_optional(&db.pool)
    .await?)
}

/// Usernames of a team's active volunteers and leads, in order.
pub async fn enrollable_members(db: &Db, team: &str) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT username FROM users WHERE team = $1 AND disabled_at IS NULL AND role IN ('volunteer', 'lead') \
         ORDER BY username",
    )
    .bind(team)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(|(u,)| u).collect())
}

/// Marks the code used by `device_id`, in the caller's transaction, if it is still unused, unrevoked and
/// unexpired at `now_ms`: of two phones enrolling with one code at once, exactly one gets it.
pub async fn claim(tx: &mut Tx, id: &str, device_id: &str, now_ms: i64) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE enrolment_codes SET used_at = $1, device_id = $2 \
         WHERE id = $3 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $1",
    )
    .bind(now_ms)
    .bind(device_id)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}
