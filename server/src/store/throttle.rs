//! The login throttle's counters as stored (`login_throttle`): one row per key, counted and paced in single
//! statements so that concurrent attempts (on any number of server instances) each see the others.

use crate::store::db::Db;
use crate::store::StoreResult;

/// Counts one more attempt under `key` if it has fewer than `limit` since `window_floor` (starting a new window
/// at `now` once the last one began at or before `window_floor`). Returns the start of the window it counted in,
/// or None when the limit is reached.
pub async fn count_attempt(db: &Db, key: &str, limit: i64, now: i64, window_floor: i64) -> StoreResult<Option<i64>> {
    let row: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO login_throttle (throttle_key, failures, window_start) VALUES ($1, 1, $2) \
         ON CONFLICT (throttle_key) DO UPDATE SET \
           failures = CASE WHEN login_throttle.window_start <= $3 THEN 1 ELSE login_throttle.failures + 1 END, \
           window_start = CASE WHEN login_throttle.window_start <= $3 THEN $2 ELSE login_throttle.window_start END \
         WHERE login_throttle.window_start <= $3 OR login_throttle.failures < $4 \
         RETURNING window_start",
    )
    .bind(key)
    .bind(now)
    .bind(window_floor)
    .bind(limit)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(|(start,)| start))
}

/// Gives back an attempt counted under `key`, only within the window it was counted in.
pub async fn uncount_attempt(db: &Db, key: &str, window_start: i64) -> StoreResult<()> {
    sqlx::query(
        "UPDATE login_throttle SET failures = failures - 1 \
         WHERE throttle_key = $1 AND window_start = $2 AND failures > 0",
    )
    .bind(key)
    .bind(window_start)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Takes the paced turn under `key` if it has opened by `now`, moving the next one to `next`; returns whether
/// it was taken.
pub async fn take_turn(db: &Db, key: &str, now: i64, next: i64) -> StoreResult<bool> {
    let taken: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO login_throttle (throttle_key, failures, window_start) VALUES ($1, 0, $2) \
         ON CONFLICT (throttle_key) DO UPDATE SET window_start = $2 \
         WHERE login_throttle.window_start <= $3 \
         RETURNING window_start",
    )
    .bind(key)
    .bind(next)
    .bind(now)
    .fetch_optional(&db.pool)
    .await?;
    Ok(taken.is_some())
}

/// The `window_start` of a key's row (a window's start, or when a pace's next turn opens), if it has one.
pub async fn window_start(db: &Db, key: &str) -> StoreResult<Option<i64>> {
    let start: Option<(i64,)> = sqlx::query_as("SELECT window_start FROM login_throttle WHERE throttle_key = $1")
        .bind(key)
        .fetch_optional(&db.pool)
        .await?;
    Ok(start.map(|(s,)| s))
}

/// Deletes the rows of the keys `account_key` and `pace_key` and of every key starting with `prefix` (letters,
/// digits and colons only: nothing LIKE takes as a wildcard). Returns how many there were.
pub async fn forget_keys(db: &Db, account_key: &str, pace_key: &str, prefix: &str) -> StoreResult<u64> {
    let done =
        sqlx::query("DELETE FROM login_throttle WHERE throttle_key = $1 OR throttle_key = $2 OR throttle_key LIKE $3")
            .bind(account_key)
            .bind(pace_key)
            .bind(format!("{prefix}%"))
            .execute(&db.pool)
            .await?;
    Ok(done.rows_affected())
}

/// Deletes the rows whose window started before `floor`.
pub async fn prune_before(db: &Db, floor: i64) -> StoreResult<()> {
    sqlx::query("DELETE FROM login_throttle WHERE window_start < $1").bind(floor).execute(&db.pool).await?;
    Ok(())
}
