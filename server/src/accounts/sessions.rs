//! Refresh tokens: stored as digests, used once (each refresh rotates it), revocable at logout or when the
//! account is disabled.

use crate::accounts::tokens::REFRESH_TTL_SECS;
use crate::store::db::Db;
use crate::store::{sessions, StoreResult};

/// Stores a new refresh token's digest for a user, valid for `REFRESH_TTL_SECS` from `now_ms`.
pub async fn store_refresh_token(db: &Db, user_id: &str, digest: &str, now_ms: i64) -> StoreResult<()> {
    sessions::insert_refresh_token(db, user_id, digest, now_ms, now_ms + REFRESH_TTL_SECS * 1000).await
}

/// Uses up a live refresh token and gives the username it belongs to; `None` if the token is unknown, expired
/// or already used or revoked. The revoking update comes first, so that two refreshes with one token cannot
/// both succeed.
pub async fn use_refresh_token(db: &Db, digest: &str, now_ms: i64) -> StoreResult<Option<String>> {
    if !sessions::revoke_live_refresh_token(db, digest, now_ms).await? {
        return Ok(None);
    }
    Ok(Some(sessions::refresh_token_owner(db, digest).await?))
}

/// Revokes a refresh token (logout); an unknown or already revoked one is left as it is.
pub async fn revoke_refresh_token(db: &Db, digest: &str, now_ms: i64) -> StoreResult<()> {
    sessions::revoke_refresh_token(db, digest, now_ms).await
}
