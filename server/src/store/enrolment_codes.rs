//! One-time enrolment codes as stored (`enrolment_codes`): a person's, or a team's shared one for a number of
//! phones. Issuing (only the code's digest is kept), listing, revoking, and claiming a use in the transaction
//! that enrols the device.

use crate::store::db::Db;
use crate::store::StoreResult;
use sqlx::{Any, Transaction};

type Tx = Transaction<'static, Any>;

/// A code as listed: id, its person's username (none for a team's code), its team, uses, used, issued by,
/// issued, expires, last used, last device, revoked (ms).
pub type CodeRow =
    (String, Option<String>, Option<String>, i64, i64, String, i64, i64, Option<i64>, Option<String>, Option<i64>);

/// Whom a new code enrols: a person (by user id), or any volunteer of a team, up to `uses` phones.
pub enum Holder<'a> {
    Person(&'a str),
    Team { team: &'a str, uses: i64 },
}

/// A new code's row.
pub struct NewCode<'a> {
    pub id: &'a str,
    pub code_hash: &'a str,
    pub holder: Holder<'a>,
    pub issued_by: &'a str,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// Stores a new code in the caller's transaction, and revokes the earlier codes of the same person (or the same
/// team's shared codes) that still had uses left: the newest sheet is the one that works.
pub async fn insert_replacing(tx: &mut Tx, code: NewCode<'_>) -> StoreResult<()> {
    let (user_id, team, uses) = match code.holder {
        Holder::Person(user_id) => (Some(user_id), None, 1),
        Holder::Team { team, uses } => (None, Some(team), uses),
    };
    sqlx::query(
        "UPDATE enrolment_codes SET revoked_at = $1 \
         WHERE (user_id = $2 OR (user_id IS NULL AND team = $3)) AND used < uses AND revoked_at IS NULL",
    )
    .bind(code.issued_at)
    .bind(user_id)
    .bind(team)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO enrolment_codes (id, code_hash, user_id, team, uses, used, issued_by, issued_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8)",
    )
    .bind(code.id)
    .bind(code.code_hash)
    .bind(user_id)
    .bind(team)
    .bind(uses)
    .bind(code.issued_by)
    .bind(code.issued_at)
    .bind(code.expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Codes issued since `since` (ms), of everyone (`team` is empty) or of one team, newest first.
pub async fn list(db: &Db, team: &str, since: i64) -> StoreResult<Vec<CodeRow>> {
    Ok(sqlx::query_as(
        "SELECT c.id, u.username, COALESCE(c.team, u.team), c.uses, c.used, c.issued_by, c.issued_at, c.expires_at, \
                c.used_at, c.device_id, c.revoked_at \
         FROM enrolment_codes c LEFT JOIN users u ON u.id = c.user_id \
         WHERE ($1 = '' OR COALESCE(c.team, u.team) = $1) AND c.issued_at >= $2 \
         ORDER BY c.issued_at DESC, u.username LIMIT 5000",
    )
    .bind(team)
    .bind(since)
    .fetch_all(&db.pool)
    .await?)
}

/// The team of a code (a team's, or its person's): `None` if there is no such code, `Some(None)` if its person
/// is in no team.
pub async fn owner_team(db: &Db, id: &str) -> StoreResult<Option<Option<String>>> {
    let row: Option<(Option<String>,)> = sqlx::query_as(
        "SELECT COALESCE(c.team, u.team) FROM enrolment_codes c LEFT JOIN users u ON u.id = c.user_id WHERE c.id = $1",
    )
    .bind(id)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(|(team,)| team))
}

/// Revokes a code that still has uses left; false if it was used up or revoked already.
pub async fn revoke(db: &Db, id: &str, now_ms: i64) -> StoreResult<bool> {
    let done =
        sqlx::query("UPDATE enrolment_codes SET revoked_at = $1 WHERE id = $2 AND used < uses AND revoked_at IS NULL")
            .bind(now_ms)
            .bind(id)
            .execute(&db.pool)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// The state of the code with this digest: its id, its person's username or its team, expiry, uses, used, and
/// when it was revoked.
pub type CodeState = (String, Option<String>, Option<String>, i64, i64, i64, Option<i64>);

pub async fn by_hash(db: &Db, code_hash: &str) -> StoreResult<Option<CodeState>> {
    Ok(sqlx::query_as(
        "SELECT c.id, u.username, c.team, c.expires_at, c.uses, c.used, c.revoked_at \
         FROM enrolment_codes c LEFT JOIN users u ON u.id = c.user_id WHERE c.code_hash = $1",
    )
    .bind(code_hash)
    .fetch_optional(&db.pool)
    .await?)
}

/// Usernames of a team's active members with one of `roles`, in order.
pub async fn active_members(db: &Db, team: &str, roles: &[&str]) -> StoreResult<Vec<String>> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT username, role FROM users WHERE team = $1 AND disabled_at IS NULL ORDER BY username")
            .bind(team)
            .fetch_all(&db.pool)
            .await?;
    Ok(rows.into_iter().filter(|(_, role)| roles.contains(&role.as_str())).map(|(u, _)| u).collect())
}

/// Takes one use of the code for `device_id`, in the caller's transaction, if it has one left and is unrevoked
/// and unexpired at `now_ms`: of two phones racing for a code's last use, exactly one gets it.
pub async fn claim(tx: &mut Tx, id: &str, device_id: &str, now_ms: i64) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE enrolment_codes SET used = used + 1, used_at = $1, device_id = $2 \
         WHERE id = $3 AND used < uses AND revoked_at IS NULL AND expires_at > $1",
    )
    .bind(now_ms)
    .bind(device_id)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}
