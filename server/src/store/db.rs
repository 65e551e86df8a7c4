//! The database: one SQL dialect-neutral pool (sqlx `Any`) over SQLite (default) or PostgreSQL, chosen from
//! the URL scheme, with each backend's own migrations.

use sqlx::any::{AnyPoolOptions, AnyQueryResult};
use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a database URL names, from its scheme.
    pub fn of_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

#[derive(Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
    /// SQLite allows one writer; taking this before a write transaction queues writers here instead of
    /// failing with "database is locked". PostgreSQL relies on row locks instead.
    write_gate: Option<Arc<Mutex<()>>>,
    /// Where write transactions run: on SQLite one connection kept open, so that its page cache stays warm (SQLite
    /// empties a connection's cache whenever another connection wrote since its last transaction, and syncs then
    /// read back from the file the pages they change); on PostgreSQL the pool itself.
    writer: AnyPool,
    /// SQLite only: the thread that drives syncs' write transactions (`Db::write_job`).
    writer_thread: Option<Arc<WriterThread>>,
}

/// The thread that drives syncs' write transactions on SQLite, with a runtime of its own. While a sync holds the
/// write gate every other writer waits, so its statements must not wait too: on the runtime's threads each
/// statement's reply queued behind other syncs' document work (with one runtime thread instead of two, the gate
/// was held half as long again per visit, docs/benchmarks.md (j)). Here the reply wakes this thread at once, and
/// `serve` runs the runtime's threads at a lower priority ([`RUNTIME_NICE`]) than this one and SQLite's writing
/// connection, whose thread is started from here. Stops when the last clone of its `Db` is dropped.
struct WriterThread {
    handle: tokio::runtime::Handle,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl WriterThread {
    fn start() -> std::io::Result<WriterThread> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new().name(WRITER_THREAD_NAME.to_string()).spawn(move || {
            runtime.block_on(async {
                stopped.await.ok();
            })
        })?;
        Ok(WriterThread { handle, _stop: stop })
    }
}

/// The writer thread's name, as `ps -L` and `/proc/PID/task/*/comm` show it.
pub const WRITER_THREAD_NAME: &str = "doorstep-writer";

/// How much lower than normal (`nice`) `serve` runs the runtime's threads on SQLite, so that the writer thread
/// and SQLite's writing connection get a CPU before the document work of the syncs waiting for the gate. Only
/// lowered, never raised: no privilege is needed. With the writer thread and 5, a 200-device burst held the gate
/// 68–78% of the time instead of 86–90%, and a fifth to a third less per visit (docs/benchmarks.md (j)).
pub const RUNTIME_NICE: i32 = 5;

/// The right to write, held until dropped (SQLite; empty on PostgreSQL). Records how long it was held: the sum
/// of those times over a period is how busy SQLite's single writer was.
pub struct WriteGuard(Option<(tokio::sync::OwnedMutexGuard<()>, std::time::Instant)>);

impl WriteGuard {
    /// No gate: the database orders writers itself (PostgreSQL).
    pub fn none() -> WriteGuard {
        WriteGuard(None)
    }
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        if let Some((_, since)) = &self.0 {
            metrics::histogram!(crate::ops::WRITE_GATE_HELD).record(since.elapsed().as_secs_f64());
        }
    }
}

/// The default database of a data directory.
pub fn sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("doorstep.db").display())
}

impl Db {
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let Some(backend) = Backend::of_url(url) else {
            anyhow::bail!("unsupported database URL {url:?}: use sqlite://PATH or postgres://...");
        };
        // Owns its URL, so that the writer thread can open the writing connection with it.
        let open = |options: AnyPoolOptions| {
            let url = url.to_string();
            async move {
                options.connect(&url).await.map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", redact(&url)))
            }
        };
        let (pool, writer, writer_thread) = match backend {
            Backend::Sqlite => {
                create_private_sqlite_file(url)?;
                let pool = open(sqlite_options(SqliteRole::Reader).max_connections(8)).await?;
                sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
                // Never closed for being idle or old: its cache is what it is kept for. Opened from the writer
                // thread, so that the connection's own thread starts at that thread's priority.
                let writer_thread = WriterThread::start()?;
                let writer = sqlite_options(SqliteRole::Writer).max_connections(1);
                let writer = writer_thread.handle.spawn(open(writer.idle_timeout(None).max_lifetime(None))).await??;
                tokio::spawn(checkpoint_in_background(pool.clone()));
                (pool, writer, Some(Arc::new(writer_thread)))
            }
            Backend::Postgres => {
                let pool = open(AnyPoolOptions::new().max_connections(16)).await?;
                sqlx::migrate!("./migrations/postgres").run(&pool).await?;
                (pool.clone(), pool, None)
            }
        };
        let write_gate = (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(())));
        Ok(Db { pool, backend, write_gate, writer, writer_thread })
    }

    /// Runs a sync's write job (it waits for the gate, writes and commits) on the writer thread on SQLite, in
    /// place on PostgreSQL, where writers do not queue behind one another. On SQLite a started job runs to its
    /// end even if the caller stops waiting (on PostgreSQL its transaction rolls back with the caller, as
    /// before). Fails only if the job panicked.
    pub async fn write_job<T: Send + 'static>(
        &self,
        job: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Result<T, tokio::task::JoinError> {
        match &self.writer_thread {
            Some(thread) => thread.handle.spawn(job).await,
            None => Ok(job.await),
        }
    }

    /// Whether the database answers a trivial statement (readiness).
    pub async fn answers(&self) -> crate::store::StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Waits for the right to write (SQLite; a no-op on PostgreSQL) and opens a write transaction. Whoever holds
    /// the guard is the only writer in this process until it drops it.
    pub async fn begin_write(&self) -> Result<(WriteGuard, Transaction<'static, Any>), sqlx::Error> {
        let gate = match &self.write_gate {
            Some(gate) => {
                let asked = std::time::Instant::now();
                let guard = gate.clone().lock_owned().await;
                metrics::histogram!(crate::ops::WRITE_GATE_WAIT).record(asked.elapsed().as_secs_f64());
                Some((guard, std::time::Instant::now()))
            }
            None => None,
        };
        let tx = match self.backend {
            // IMMEDIATE: the transaction holds SQLite's write lock from its first statement. A deferred one reads
            // a snapshot first and, if a single-statement write through the reading pool (audit, throttle,
            // device status) committed before its own first write, fails at once with "database is locked"
            // (SQLITE_BUSY_SNAPSHOT, which no busy timeout waits out).
            Backend::Sqlite => match self.writer.begin_with("BEGIN IMMEDIATE").await {
                Ok(tx) => tx,
                Err(e) => {
                    // A commit that failed (a full or failing disk) can leave the one writing connection inside a
                    // transaction nothing will end, and every later BEGIN would fail until a restart. Reopened, it
                    // begins afresh; an error that persists is the caller's.
                    tracing::warn!(error = %e, "the writing connection could not begin a transaction; reopening it");
                    self.reopen_writer().await?;
                    self.writer.begin_with("BEGIN IMMEDIATE").await?
                }
            },
            Backend::Postgres => self.writer.begin().await?,
        };
        Ok((WriteGuard(gate), tx))
    }

    /// Closes SQLite's writing connection and opens a new one, on the writer thread (at its priority), left idle
    /// in the writer's pool for the next write.
    async fn reopen_writer(&self) -> Result<(), sqlx::Error> {
        let writer = self.writer.clone();
        let reopen = async move {
            writer.acquire().await?.close().await?;
            writer.acquire().await.map(drop)
        };
        match &self.writer_thread {
            Some(thread) => thread.handle.spawn(reopen).await.map_err(|_| sqlx::Error::WorkerCrashed)?,
            None => reopen.await,
        }
    }
}

/// How often the WAL's new pages are copied into the database file (SQLite's checkpoint).
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Checkpoints an SQLite database until its pool closes. SQLite would otherwise checkpoint inside the commit
/// that crosses 1,000 pages of WAL, while that commit holds the write gate and every queued writer waits: here
/// the copy (and the database file's fsync) runs beside the writers instead. A passive checkpoint never blocks
/// them, and copies only what no reader still needs, so a long reader delays it, exactly as it would SQLite's.
async fn checkpoint_in_background(pool: AnyPool) {
    let mut ticks = tokio::time::interval(CHECKPOINT_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if pool.is_closed() {
            return;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
            if pool.is_closed() {
                return;
            }
            tracing::warn!(error = %e, "could not checkpoint the database's write-ahead log; retrying");
        }
    }
}

/// Page cache of each reading SQLite connection: SQLite's default.
const SQLITE_CACHE_KIB: i64 = 2_000;
/// Page cache of the writing SQLite connection: with SQLite's default 2 MB it still read back from the file some
/// of the index pages that a burst of syncs changes. Filled only as pages are used.
const SQLITE_WRITER_CACHE_KIB: i64 = 32 * 1024;

/// What an SQLite connection is for: the pool of readers (which also take the odd small write outside the gate),
/// or the one connection that writes behind the gate.
#[derive(Clone, Copy)]
enum SqliteRole {
    Reader,
    Writer,
}

/// How every SQLite connection is opened. A local file's connection does not go stale: no round trip to its
/// worker thread to test it before every use.
fn sqlite_options(role: SqliteRole) -> AnyPoolOptions {
    // The writer's statements change many rows each (a sync's visits in one statement): SQLite keeps what each
    // statement changed in a statement journal, to undo the statement alone if it fails, and writes the journal
    // to a temporary file past 64 KiB. In memory, a sync's server writes fell by a quarter (docs/benchmarks.md).
    // Readers keep temporary files: a report's sort of a million places would otherwise be held in memory.
    let (cache_kib, temp_store) = match role {
        SqliteRole::Reader => (SQLITE_CACHE_KIB, "DEFAULT"),
        SqliteRole::Writer => (SQLITE_WRITER_CACHE_KIB, "MEMORY"),
    };
    AnyPoolOptions::new().test_before_acquire(false).after_connect(move |conn, _| {
        Box::pin(async move {
            // FULL: a committed sync survives power loss, not just a crash. A negative cache size is in KiB.
            // No checkpoint inside commits: `checkpoint_in_background` does them.
            let pragmas = format!(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; \
                 PRAGMA foreign_keys = ON; PRAGMA cache_size = -{cache_kib}; PRAGMA wal_autocheckpoint = 0; \
                 PRAGMA temp_store = {temp_store};"
            );
            conn.execute(sqlx::AssertSqlSafe(pragmas)).await?;
            Ok(())
        })
    })
}

/// Creates the database file of an SQLite URL that may create it (`mode=rwc`), empty and for its owner only, if
/// it is missing. SQLite would create it readable by everyone under the usual umask (0644), and it creates the
/// `-wal` and `-shm` files with the database file's mode, so those are private too.
fn create_private_sqlite_file(url: &str) -> anyhow::Result<()> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    // In-memory databases, and paths sqlx would percent-decode, are left to SQLite.
    if path.is_empty() || path.starts_with(':') || path.contains('%') || !query.split('&').any(|p| p == "mode=rwc") {
        return Ok(());
    }
    match client_core::private_files::options().write(true).create_new(true).open(path) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            Err(anyhow::anyhow!("cannot create the database file {path}: {e}"))
        }
        _ => Ok(()),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A sync's write job is driven by the writer thread: it runs to its commit while the caller's runtime is
    /// busy (here its only thread is blocked, as by a long document check). Driven by the runtime, each of its
    /// statements would wait for that thread.
    #[test]
    fn a_write_job_runs_while_the_runtime_is_busy() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db = runtime.block_on(Db::connect(&sqlite_url(dir.path()))).unwrap();
        let (committed, was_committed) = std::sync::mpsc::channel();
        let job_db = db.clone();
        let job = async move {
            let (_gate, mut tx) = job_db.begin_write().await?;
            sqlx::query("CREATE TABLE job_rows (n INTEGER)").execute(&mut *tx).await?;
            for n in 0..20_i64 {
                sqlx::query("INSERT INTO job_rows (n) VALUES ($1)").bind(n).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            committed.send(()).ok();
            Ok::<_, sqlx::Error>(())
        };
        runtime.block_on(async {
            let caller = tokio::spawn(async move { db.write_job(job).await });
            tokio::task::yield_now().await; // the caller starts the job
            let waited = was_committed.recv_timeout(std::time::Duration::from_secs(20));
            assert!(waited.is_ok(), "the write job waited for the caller's runtime");
            caller.await.unwrap().unwrap().unwrap();
        });
    }

    /// A write transaction that read first still writes after another connection's single-statement write
    /// committed in between (with a deferred transaction, SQLite refused it: "database is locked").
    #[tokio::test]
    async fn a_write_through_the_pool_does_not_break_the_writers_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&sqlite_url(dir.path())).await.unwrap();
        {
            let (_gate, mut tx) = db.begin_write().await.unwrap();
            sqlx::query("CREATE TABLE notes (body TEXT)").execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
        }
        let (gate, mut tx) = db.begin_write().await.unwrap();
        let (before,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM notes").fetch_one(&mut *tx).await.unwrap();
        // The pool's write waits for the writer's lock (busy timeout) instead of slipping in before it.
        let pool = db.pool.clone();
        let stray = tokio::spawn(async move {
            sqlx::query("INSERT INTO notes (body) VALUES ('through the pool')").execute(&pool).await
        });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        sqlx::query("INSERT INTO notes (body) VALUES ('by the writer')").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        drop(gate);
        stray.await.unwrap().unwrap();
        let (after,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM notes").fetch_one(&db.pool).await.unwrap();
        assert_eq!((before, after), (0, 2));
    }

    /// Commits leave the write-ahead log to the background checkpoint, which copies it into the database file
    /// soon after: the file grows only through checkpoints.
    #[tokio::test]
    async fn sqlite_checkpoints_run_beside_the_writers() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&sqlite_url(dir.path())).await.unwrap();
        let file_size = || std::fs::metadata(dir.path().join("doorstep.db")).unwrap().len();
        let (_gate, mut tx) = db.begin_write().await.unwrap();
        let (autocheckpoint,): (i64,) = sqlx::query_as("PRAGMA wal_autocheckpoint").fetch_one(&mut *tx).await.unwrap();
        assert_eq!(autocheckpoint, 0, "a commit of the writer would checkpoint");
        sqlx::query("CREATE TABLE filler (bytes BLOB)").execute(&mut *tx).await.unwrap();
        // 8 MiB: past SQLite's own threshold of 1,000 pages.
        for _ in 0..64 {
            sqlx::query("INSERT INTO filler (bytes) VALUES (randomblob(131072))").execute(&mut *tx).await.unwrap();
        }
        let before = file_size();
        tx.commit().await.unwrap();
        drop(_gate);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while file_size() < before + 8 * 1024 * 1024 {
            assert!(std::time::Instant::now() < deadline, "no checkpoint copied the log: {} bytes", file_size());
            tokio::time::sleep(CHECKPOINT_EVERY / 2).await;
        }
    }

    /// A statement that changes many rows keeps its undo journal in the writer's memory: nothing reaches the
    /// disk before the commit (with SQLite's default, over 64 KiB went to a temporary file).
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_writers_statement_journals_stay_in_memory() {
        fn bytes_written_by_this_process() -> u64 {
            let io = std::fs::read_to_string("/proc/self/io").unwrap();
            let line = io.lines().find(|l| l.starts_with("wchar:")).unwrap();
            line["wchar:".len()..].trim().parse().unwrap()
        }
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&sqlite_url(dir.path())).await.unwrap();
        let (gate, mut tx) = db.begin_write().await.unwrap();
        sqlx::query("CREATE TABLE rows (id INTEGER PRIMARY KEY, label TEXT UNIQUE, body TEXT)")
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query(
            "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) \
             INSERT INTO rows SELECT i, 'row ' || i, hex(randomblob(100)) FROM n",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        drop(gate);
        // An empty log: the background checkpoint has nothing left to write.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&db.writer).await.unwrap();
        let (_gate, mut tx) = db.begin_write().await.unwrap();
        let before = bytes_written_by_this_process();
        // Every row and its unique key: a statement SQLite must be able to undo alone, over ~100 pages.
        sqlx::query("UPDATE rows SET label = label || '.', body = body || '.'").execute(&mut *tx).await.unwrap();
        let written = bytes_written_by_this_process() - before;
        assert!(written < 16 * 1024, "the statement wrote {written} bytes before its transaction committed");
        tx.commit().await.unwrap();
    }

    /// Migration 0009 moves each grid's snapshot out of `grid_docs` and keeps it whole.
    #[tokio::test]
    async fn upgrading_moves_snapshots_to_their_own_table() {
        let dir = tempfile::tempdir().unwrap();
        let url = sqlite_url(dir.path());
        {
            sqlx::any::install_default_drivers();
            let pool = sqlite_options(SqliteRole::Reader).connect(&url).await.unwrap();
            let mut before_0009 = sqlx::migrate!("./migrations/sqlite");
            before_0009.migrations =
                std::borrow::Cow::Owned(before_0009.migrations.iter().filter(|m| m.version < 9).cloned().collect());
            before_0009.run(&pool).await.unwrap();
            sqlx::query(
                "INSERT INTO grid_docs (grid_code, snapshot, version, log_count, heads, updated_at) \
                 VALUES ('G1', x'0102030405', 7, 3, 'aa', 1)",
            )
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        let db = Db::connect(&url).await.unwrap();
        let (snapshot,): (Vec<u8>,) = sqlx::query_as("SELECT snapshot FROM grid_snapshots WHERE grid_code = 'G1'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(snapshot, vec![1, 2, 3, 4, 5]);
        let (version, log_count): (i64, i64) =
            sqlx::query_as("SELECT version, log_count FROM grid_docs WHERE grid_code = 'G1'")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!((version, log_count), (7, 3));
        let columns: Vec<(String,)> =
            sqlx::query_as("SELECT name FROM pragma_table_info('grid_docs')").fetch_all(&db.pool).await.unwrap();
        assert!(!columns.iter().any(|(c,)| c == "snapshot"), "grid_docs still holds snapshots: {columns:?}");
    }

    /// SQLite write transactions all run on one connection of their own, the one whose page cache is kept warm:
    /// they need none of the readers' connections, and a temporary table (visible only to the connection that
    /// made it) made in one is still there in the next.
    #[tokio::test]
    async fn sqlite_writes_share_one_connection() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&sqlite_url(dir.path())).await.unwrap();
        let mut readers = Vec::new();
        for _ in 0..8 {
            readers.push(db.pool.acquire().await.unwrap());
        }
        let begin = tokio::time::timeout(std::time::Duration::from_secs(5), db.begin_write());
        let (gate, mut tx) = begin.await.expect("a write waited for a reader's connection").unwrap();
        assert!(gate.0.is_some(), "SQLite writers queue at the gate");
        sqlx::query("CREATE TEMP TABLE writer_mark (x INTEGER)").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        drop(gate);
        for _ in 0..3 {
            let (_gate, mut tx) = db.begin_write().await.unwrap();
            let (marks,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM temp.sqlite_master WHERE name = 'writer_mark'")
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            assert_eq!(marks, 1, "a write transaction ran on another connection");
            let (cache,): (i64,) = sqlx::query_as("PRAGMA cache_size").fetch_one(&mut *tx).await.unwrap();
            assert_eq!(cache, -SQLITE_WRITER_CACHE_KIB, "the writer's page cache in KiB");
            tx.commit().await.unwrap();
        }
    }
}
