//! Login throttling against password guessing. Every attempt takes a place in the database's counters before
//! its password is checked, in one atomic statement per counter, so that however many attempts arrive at once
//! (and on however many server instances) no more passwords are checked than the limits allow:
//!
//! - per account and client address: `max_failures` per window, strictly;
//! - per client address, whatever the account: `max_failures_per_address` per window, strictly;
//! - per account from all addresses: past `account_failures_before_pace` in a window, attempts on the account
//!   are paced (one every `pace_secs`) rather than refused, so that strangers cannot lock a volunteer out.
//!
//! An attempt whose password is right gives its places back: only failures use up a limit.

use crate::refusal::Refusal;
use crate::store::db::{now_ms, Db};
use crate::store::{throttle, StoreResult};
use std::net::IpAddr;

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Failed logins allowed per account and client address within the window.
    pub max_failures: i64,
    /// Failed logins allowed per client address, whatever the accounts, within the window.
    pub max_failures_per_address: i64,
    /// Failed logins on one account from all addresses within the window, after which attempts on it are paced.
    pub account_failures_before_pace: i64,
    /// While an account is paced, one attempt on it every this many seconds.
    pub pace_secs: i64,
    pub window_secs: i64,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            max_failures: 10,
            max_failures_per_address: 100,
            account_failures_before_pace: 50,
            pace_secs: 30,
            window_secs: 15 * 60,
        }
    }
}

/// The places an admitted attempt holds in the counters (key and the start of the window it counted in).
#[must_use = "a successful login gives its places back with `succeeded`"]
pub struct Admission {
    held: Vec<(String, i64)>,
}

/// The part of a client address that counts as one client: the IPv4 address, or an IPv6 address's /64 network
/// (one subscriber's line usually gets a whole /64, so its addresses are no more than one guesser).
pub fn client_key(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{net}/64")
            }
        },
    }
}

/// Usernames as typed may be anything (up to the body limit): counters name them by digest, a fixed length.
fn account_key(username: &str) -> String {
    crate::accounts::tokens::token_digest(username)
}

fn pair_prefix(account: &str) -> String {
    format!("pair:{account}:")
}

/// Admits a login attempt for `username` from `addr`, or refuses it (429, with when to try again) without
/// checking the password. An admitted attempt that fails keeps its places: that is the failure counted.
pub async fn admit(db: &Db, policy: ThrottlePolicy, username: &str, addr: IpAddr) -> Result<Admission, Refusal> {
    prune_now_and_then(db, policy).await;
    let account = account_key(username);
    let client = client_key(addr);
    let mut admission = Admission { held: Vec::with_capacity(3) };
    let strict = [
        (format!("{}{client}", pair_prefix(&account)), policy.max_failures, "for this account from your address"),
        (format!("addr:{client}"), policy.max_failures_per_address, "from your address"),
    ];
    for (key, limit, scope) in strict {
        match take_place(db, &key, limit, policy.window_secs).await? {
            Some(window_start) => admission.held.push((key, window_start)),
            None => {
                let wait = seconds_until_window_ends(db, &key, policy.window_secs).await?;
                admission.give_back(db).await?;
                return Err(refusal(format!("too many failed logins {scope}"), wait));
            }
        }
    }
    let account_key = format!("acct:{account}");
    match take_place(db, &account_key, policy.account_failures_before_pace, policy.window_secs).await? {
        Some(window_start) => admission.held.push((account_key, window_start)),
        None => {
            if let Err(wait) = take_paced_turn(db, &format!("pace:{account}"), policy.pace_secs).await? {
                admission.give_back(db).await?;
                return Err(refusal(
                    format!(
                        "this account has had many failed logins; for now it takes one attempt every {} seconds",
                        policy.pace_secs
                    ),
                    wait,
                ));
            }
        }
    }
    Ok(admission)
}

impl Admission {
    /// The password was right: the attempt is not a failure, its places go back.
    pub async fn succeeded(self, db: &Db) -> StoreResult<()> {
        self.give_back(db).await
    }

    async fn give_back(self, db: &Db) -> StoreResult<()> {
        for (key, window_start) in self.held {
            // Only within the window it was taken in: a window that has since started again does not owe it.
            throttle::uncount_attempt(db, &key, window_start).await?;
        }
        Ok(())
    }
}

fn refusal(why: String, wait_secs: i64) -> Refusal {
    let wait = wait_secs.max(1);
    Refusal::TooManyAttempts { message: format!("{why}; try again in {wait} seconds"), retry_after_secs: wait as u64 }
}

/// Counts one more attempt under `key` if it has fewer than `limit` in the current window (starting a new
/// window once the last one has passed), in one statement: concurrent attempts each see the others' counts.
/// Returns the start of the window it counted in, or None when the limit is reached.
async fn take_place(db: &Db, key: &str, limit: i64, window_secs: i64) -> StoreResult<Option<i64>> {
    let now = now_ms();
    throttle::count_attempt(db, key, limit, now, now - window_secs * 1000).await
}

/// While an account is paced: takes its next turn if it is free (the turn after it then opens `pace_secs`
/// later), in one statement. The row's `window_start` is when the next turn opens. Err: seconds to wait.
async fn take_paced_turn(db: &Db, key: &str, pace_secs: i64) -> StoreResult<Result<(), i64>> {
    let now = now_ms();
    if throttle::take_turn(db, key, now, now + pace_secs * 1000).await? {
        return Ok(Ok(()));
    }
    let opens = throttle::window_start(db, key).await?;
    Ok(Err(opens.map_or(1, |at| (at - now + 999) / 1000)))
}

async fn seconds_until_window_ends(db: &Db, key: &str, window_secs: i64) -> StoreResult<i64> {
    let start = throttle::window_start(db, key).await?;
    Ok(start.map_or(1, |start| (start + window_secs * 1000 - now_ms() + 999) / 1000))
}

/// The office's unlock: forgets the account's failures from every address and its pace. Limits per address
/// stay (they guard against a guesser, whichever account it tries).
pub async fn unlock_account(db: &Db, username: &str) -> StoreResult<u64> {
    let account = account_key(username);
    let prefix = pair_prefix(&account);
    // The prefix is letters, digits and colons: nothing LIKE takes as a wildcard.
    throttle::forget_keys(db, &format!("acct:{account}"), &format!("pace:{account}"), &prefix).await
}

/// Deletes counters whose window has passed (they would start again from zero anyway) and paces whose next
/// turn is long open, at most once a minute per process, so that guessing with made-up usernames does not
/// grow the table without bound.
async fn prune_now_and_then(db: &Db, policy: ThrottlePolicy) {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST_PRUNE_MS: AtomicI64 = AtomicI64::new(0);
    let now = now_ms();
    let last = LAST_PRUNE_MS.load(Ordering::Relaxed);
    if now - last < 60_000 || LAST_PRUNE_MS.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err() {
        return;
    }
    let floor = now - policy.window_secs.max(policy.pace_secs) * 1000;
    if let Err(e) = throttle::prune_before(db, floor).await {
        tracing::warn!(error = %e, "could not prune old login throttle counters");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_subscriber_counts_as_one_client() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::7".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_eq!(client_key(a), "2001:db8:1:2::/64");
        assert_ne!(client_key(a), client_key("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(client_key("::ffff:192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_eq!(client_key("192.0.2.7".parse().unwrap()), "192.0.2.7");
    }

    /// However many attempts arrive at once, no more than the limit are admitted; those that succeed give their
    /// place back; a window that has passed starts again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_attempts_never_exceed_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&crate::store::db::sqlite_url(dir.path())).await.unwrap();
        let policy = ThrottlePolicy { max_failures: 7, ..Default::default() };
        let addr: IpAddr = "192.0.2.1".parse().unwrap();
        let attempts = (0..100).map(|_| {
            let db = db.clone();
            tokio::spawn(async move { admit(&db, policy, "someone", addr).await })
        });
        let results: Vec<_> = futures_util::future::join_all(attempts).await.into_iter().map(|r| r.unwrap()).collect();
        let admitted: Vec<_> = results.into_iter().filter_map(Result::ok).collect();
        assert_eq!(admitted.len(), 7);
        // One of them had the right password: one more attempt may be checked, and only one.
        let mut admitted = admitted.into_iter();
        admitted.next().unwrap().succeeded(&db).await.unwrap();
        let _failed = admit(&db, policy, "someone", addr).await.unwrap();
        let e = admit(&db, policy, "someone", addr).await.err().unwrap();
        let Refusal::TooManyAttempts { retry_after_secs, .. } = e else { panic!("{e:?}") };
        assert!(retry_after_secs > 0 && retry_after_secs <= policy.window_secs as u64, "{retry_after_secs}");
        // The same account from another address is not affected.
        let _other = admit(&db, policy, "someone", "192.0.2.2".parse().unwrap()).await.unwrap();
    }

    #[tokio::test]
    async fn a_paced_account_takes_one_attempt_per_turn_and_the_office_unlocks_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&crate::store::db::sqlite_url(dir.path())).await.unwrap();
        let policy =
            ThrottlePolicy { max_failures: 2, account_failures_before_pace: 4, pace_secs: 600, ..Default::default() };
        let from = |i: u8| IpAddr::from([192, 0, 2, i]);
        for i in 1..=2 {
            for _ in 0..2 {
                let _failed = admit(&db, policy, "vol", from(i)).await.unwrap();
            }
        }
        // Past the account's threshold: one turn now, the next in ten minutes, from any address.
        let _turn = admit(&db, policy, "vol", from(3)).await.unwrap();
        let e = admit(&db, policy, "vol", from(4)).await.err().unwrap();
        let Refusal::TooManyAttempts { message, retry_after_secs } = e else { panic!("{e:?}") };
        assert!(message.contains("one attempt every 600 seconds"), "{message}");
        assert!(retry_after_secs > 300 && retry_after_secs <= 600, "{retry_after_secs}");
        assert!(unlock_account(&db, "vol").await.unwrap() > 0);
        for _ in 0..2 {
            let _failed = admit(&db, policy, "vol", from(4)).await.unwrap();
        }
        let _again = admit(&db, policy, "vol", from(1)).await.unwrap();
    }
}
