//! The database: one SQL dialect-neutral pool (sqlx `Any`) over SQLite (default) or PostgreSQL, chosen from
//! the URL scheme, with each backend's own migrations.

use sqlx::any::{AnyPoolOptions, AnyQueryResult};
use sqlx::{AnyConnection, AnyPool, Executor};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
    /// SQLite allows one writer; taking this before a write transaction queues writers here instead of
    /// failing with "database is locked". PostgreSQL relies on row locks instead.
    write_gate: Option<Arc<Mutex<()>>>,
}

pub type WriteGuard = Option<tokio::sync::OwnedMutexGuard<()>>;

/// The default database of a data directory.
pub fn sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("doorstep.db").display())
}

impl Db {
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            anyhow::bail!("unsupported database URL {url:?}: use sqlite://PATH or postgres://...");
        };
        let mut options = AnyPoolOptions::new();
        if backend == Backend::Sqlite {
            // A local file's connection does not go stale: no round trip to its worker thread to test it before
            // every use.
            options = options.max_connections(8).test_before_acquire(false).after_connect(|conn, _| {
                Box::pin(async move {
                    // FULL: a committed sync survives power loss, not just a crash.
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;")
                        .await?;
                    Ok(())
                })
            });
        } else {
            options = options.max_connections(16);
        }
        let pool =
            options.connect(url).await.map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", redact(url)))?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        let write_gate = (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(())));
        Ok(Db { pool, backend, write_gate })
    }

    /// Waits for the right to write (SQLite); a no-op on PostgreSQL.
    pub async fn write_gate(&self) -> WriteGuard {
        match &self.write_gate {
            Some(gate) => Some(gate.clone().lock_owned().await),
            None => None,
        }
    }
}

/// Hides the password in a database URL for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..s], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn affected(r: &AnyQueryResult) -> u64 {
    r.rows_affected()
}

/// The most bound values one statement carries: under SQLite's limit (32,766) and PostgreSQL's (65,535).
pub const MAX_BINDS: usize = 30_000;

/// `(…, …), (…)`: placeholders for `rows` rows of `cols` values, bound in order from the statement's first.
pub fn values_list(conn: &AnyConnection, rows: usize, cols: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 5);
    let mut placeholder = placeholders(conn);
    for r in 0..rows {
        out.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            placeholder(&mut out);
        }
        out.push(')');
    }
    out
}

/// `…, …`: placeholders for `n` values (an `IN` list), bound in order from the statement's first.
pub fn in_list(conn: &AnyConnection, n: usize) -> String {
    let mut out = String::with_capacity(n * 5);
    let mut placeholder = placeholders(conn);
    for i in 0..n {
        if i > 0 {
            out.push_str(", ");
        }
        placeholder(&mut out);
    }
    out
}

/// Writes the next placeholder in the backend's style: `$1`, `$2`, … on PostgreSQL; bare `?` on SQLite, which
/// numbers them in order. SQLite takes `$1` as a name and finds each name by a linear search, when parsing a
/// statement and again when sqlx binds each value: quadratic in the values of a multi-row statement, where it
/// cost a quarter of the server's CPU in a sync.
fn placeholders(conn: &AnyConnection) -> impl FnMut(&mut String) {
    let sqlite = conn.backend_name() == <sqlx::Sqlite as sqlx::Database>::NAME;
    let mut next = 0usize;
    move |out: &mut String| {
        next += 1;
        if sqlite {
            out.push('?');
        } else {
            out.push('$');
            out.push_str(&next.to_string());
        }
    }
}
