//! Login throttling against password guessing: failures are counted per account and per client address in
//! the database (so every server instance sees the same counts), within a fixed window.

use crate::db::{now_ms, Db};
use crate::error::ApiError;
use axum::http::StatusCode;

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Failed logins allowed per account within the window; an address gets ten times as many.
    pub max_failures: i64,
    pub window_secs: i64,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy { max_failures: 10, window_secs: 15 * 60 }
    }
}

pub fn keys(username: &str, addr: Option<std::net::IpAddr>) -> Vec<(String, i64)> {
    let mut keys = vec![(format!("user:{username}"), 1)];
    if let Some(ip) = addr {
        keys.push((format!("ip:{ip}"), 10));
    }
    keys
}

/// Refuses the attempt (429) while a key is over its limit; the password is not even checked, so guessing
/// costs the attacker nothing but also burns no server CPU.
pub async fn check(db: &Db, policy: ThrottlePolicy, keys: &[(String, i64)]) -> Result<(), ApiError> {
    let now = now_ms();
    for (key, factor) in keys {
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT failures, window_start FROM login_throttle WHERE throttle_key = $1")
                .bind(key)
                .fetch_optional(&db.pool)
                .await?;
        if let Some((failures, start)) = row {
            let ends = start + policy.window_secs * 1000;
            if now < ends && failures >= policy.max_failures * factor {
                let wait = (ends - now + 999) / 1000;
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_attempts",
                    format!("too many failed logins; try again in {wait} seconds"),
                ));
            }
        }
    }
    Ok(())
}

pub async fn record_failure(db: &Db, policy: ThrottlePolicy, keys: &[(String, i64)]) -> Result<(), ApiError> {
    let now = now_ms();
    let window_floor = now - policy.window_secs * 1000;
    for (key, _) in keys {
        sqlx::query(
            "INSERT INTO login_throttle (throttle_key, failures, window_start) VALUES ($1, 1, $2) \
             ON CONFLICT (throttle_key) DO UPDATE SET \
               failures = CASE WHEN login_throttle.window_start < $3 THEN 1 ELSE login_throttle.failures + 1 END, \
               window_start = CASE WHEN login_throttle.window_start < $3 THEN $2 ELSE login_throttle.window_start END",
        )
        .bind(key)
        .bind(now)
        .bind(window_floor)
        .execute(&db.pool)
        .await?;
    }
    Ok(())
}

pub async fn clear_account(db: &Db, username: &str) -> Result<(), ApiError> {
    sqlx::query("DELETE FROM login_throttle WHERE throttle_key = $1")
        .bind(format!("user:{username}"))
        .execute(&db.pool)
        .await?;
    Ok(())
}
