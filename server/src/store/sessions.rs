//! Refresh tokens as stored (`refresh_tokens`): their digests, owners, expiry and revocation.

use crate::store::db::Db;
use crate::store::StoreResult;

/// Stores a new refresh token's digest for a user.
pub async fn insert_refresh_token(
    db: &Db,
    user_id: &str,
    digest: &str,
    now_ms: i64,
    expires_at_ms: i64,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO refresh_tokens (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(digest)
        .bind(user_id)
        .bind(now_ms)
        .bind(expires_at_ms)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Revokes a live (unrevoked, unexpired) refresh token; returns whether there was one. One statement, so that two
/// uses of one token cannot both see it live.
pub async fn revoke_live_refresh_token(db: &Db, digest: &str, now_ms: i64) -> StoreResult<bool> {
    let used = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL AND expires_at > $1",
    )
    .bind(now_ms)
    .bind(digest)
    .execute(&db.pool)
    .await?;
    Ok(used.rows_affected() == 1)
}

/// The username of a stored refresh token's owner. Fails if there is no such token.
pub async fn refresh_token_owner(db: &Db, digest: &str) -> StoreResult<String> {
    let (username,): (String,) = sqlx::query_as(
        "SELECT u.username FROM refresh_tokens r JOIN users u ON u.id = r.user_id WHERE r.token_hash = $1",
    )
    .bind(digest)
    .fetch_one(&db.pool)
    .await?;
    Ok(username)
}

/// Revokes a refresh token; an unknown or already revoked one is left as it is.
pub async fn revoke_refresh_token(db: &Db, digest: &str, now_ms: i64) -> StoreResult<()> {
    sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL")
        .bind(now_ms)
        .bind(digest)
        .execute(&db.pool)
        .await?;
    Ok(())
}
