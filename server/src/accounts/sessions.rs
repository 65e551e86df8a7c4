//! Refresh tokens: stored as digests, used once (each refresh rotates it), revocable at logout or when the
//! account is disabled.

use crate::accounts::tokens::REFRESH_TTL_SECS;
use crate::store::db::Db;
use crate::store::StoreResult;

/// Stores a new refresh token's digest for a user, valid for `REFRESH_TTL_SECS` from `now_ms`.
pub async fn store_refresh_token(db: &Db, user_id: &str, digest: &str, now_ms: i64) -> StoreResult<()> {
    sqlx::query("INSERT INTO refresh_tokens (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(digest)
        .bind(user_id)
        .bind(now_ms)
        .bind(now_ms + REFRESH_TTL_SECS * 1000)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Uses up a live refresh token and gives the username it belongs to; `None` if the token is unknown, expired
/// or already used or revoked. The revoking update comes first, so that two refreshes with one token cannot
/// both succeed.
pub async fn use_refresh_token(db: &Db, digest: &str, now_ms: i64) -> StoreResult<Option<String>> {
    let used = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL AND expires_at > $1",
    )
    .bind(now_ms)
    .bind(digest)
    .execute(&db.pool)
    .await?;
    if used.rows_affected() != 1 {
        return Ok(None);
    }
    let (username,): (String,) = sqlx::query_as(
        "SELECT u.username FROM refresh_tokens r JOIN users u ON u.id = r.user_id WHERE r.token_hash = $1",
    )
    .bind(digest)
    .fetch_one(&db.pool)
    .await?;
    Ok(Some(username))
}

/// Revokes a refresh token (logout); an unknown or already revoked one is left as it is.
pub async fn revoke_refresh_token(db: &Db, digest: &str, now_ms: i64) -> StoreResult<()> {
    sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL")
        .bind(now_ms)
        .bind(digest)
        .execute(&db.pool)
        .await?;
    Ok(())
}
