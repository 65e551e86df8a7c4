//! Durable storage of grid documents: a snapshot plus appended changes per grid, compacted from time to time,
//! behind a per-grid lock and a cache that is checked against the stored version before every use.

use crate::store::db::{in_list, now_ms, values_list, Backend, Db, WriteGuard, MAX_BINDS};
use crate::store::error::StoreError;
use automerge::{ActorId, Change};
use client_core::protocol::hex_heads;
use client_core::GridDoc;
use sqlx::pool::PoolConnection;
use sqlx::AnyConnection;
use sqlx::{Any, Transaction};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;

/// Appended changes after which the next write folds them into a new snapshot.
const COMPACT_AFTER_CHANGES: i64 = 500;

/// A loaded grid and the stored version it reflects.
pub struct Cached {
    pub version: i64,
    pub log_count: i64,
    pub doc: GridDoc,
}

pub type GridSlot = Arc<tokio::sync::Mutex<Option<Cached>>>;

/// Exclusive access to one grid for the length of a read-check-write.
pub struct GridLock {
    pub code: String,
    guard: OwnedMutexGuard<Option<Cached>>,
    size: SlotSize,
    _held: Held,
}

/// Counts a grid as held by a request while its lock lives: a held grid's document cannot be dropped from
/// memory, so the count (and its peak, both exported as metrics) is what a burst of syncs keeps loaded.
struct Held(Arc<HeldCount>);

#[derive(Default)]
struct HeldCount {
    now: AtomicU64,
    peak: AtomicU64,
}

impl Held {
    fn new(count: &Arc<HeldCount>) -> Held {
        let now = count.now.fetch_add(1, Ordering::Relaxed) + 1;
        let peak = count.peak.fetch_max(now, Ordering::Relaxed).max(now);
        metrics::gauge!(crate::ops::GRIDS_HELD).set(now as f64);
        metrics::gauge!(crate::ops::GRIDS_HELD_PEAK).set(peak as f64);
        Held(count.clone())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let now = self.0.now.fetch_sub(1, Ordering::Relaxed) - 1;
        metrics::gauge!(crate::ops::GRIDS_HELD).set(now as f64);
    }
}

impl GridLock {
    /// Puts a document in the slot (or empties it) and counts it against the cache's budget.
    fn set_cached(&mut self, cached: Option<Cached>) {
        self.size.set(cached.as_ref().map_or(0, |c| estimated_bytes(&c.doc)));
        *self.guard = cached;
    }
}

/// Default bound of the document cache: the estimated memory of the grid documents it keeps loaded
/// (`doorstep serve --doc-cache-mb`).
pub const DEFAULT_CACHE_BYTES: u64 = 64 << 20;

/// Memory of a loaded document per automerge operation, for the cache's estimate. Measured: a 100-place grid
/// of about 630 operations takes about 94 KiB loaded (its stored snapshot, 2.9 KB); with 70 visits applied,
/// 1,300 operations take about 82 KiB, so the estimate errs on the large side once visits arrive.
const BYTES_PER_OP: u64 = 150;

/// Slots without a document are cheap but not free: beyond this many, idle empty ones are dropped too.
const EMPTY_SLOTS_KEPT: usize = 10_000;

/// The estimated memory of a loaded document, with the bytes of the recent changes it keeps.
fn estimated_bytes(doc: &GridDoc) -> u64 {
    use automerge::ReadDoc;
    // At least one operation's worth, so that every cached document counts.
    doc.automerge().stats().num_ops.max(1) * BYTES_PER_OP + doc.recent_changes_bytes() as u64
}

/// What one slot's document is counted for, and the total over all slots, kept up to date by whoever holds the
/// slot's lock.
#[derive(Clone)]
struct SlotSize {
    slot: Arc<AtomicU64>,
    total: Arc<AtomicU64>,
}

impl SlotSize {
    fn set(&self, bytes: u64) {
        // Added before the old size is taken off, so that the total never wraps below zero.
        self.total.fetch_add(bytes, Ordering::Relaxed);
        let before = self.slot.swap(bytes, Ordering::Relaxed);
        self.total.fetch_sub(before, Ordering::Relaxed);
    }
}

/// One grid's lock and cached document, when it was last used, and what its document is counted for.
struct Entry {
    slot: GridSlot,
    used: u64,
    size: Arc<AtomicU64>,
}

pub struct GridRepo {
    db: Db,
    /// Per grid: its lock and cached document.
    slots: Mutex<HashMap<String, Entry>>,
    clock: AtomicU64,
    /// Estimated memory of all cached documents, and the bound beyond which idle ones are dropped.
    cached_bytes: Arc<AtomicU64>,
    budget: u64,
    /// Grids locked by requests right now, and the most at once.
    held: Arc<HeldCount>,
    /// This process's automerge actor for the registry changes it writes.
    actor: ActorId,
}

impl GridRepo {
    /// A repository whose cache keeps loaded documents up to an estimated `cache_bytes` of memory.
    pub fn new(db: Db, cache_bytes: u64) -> Self {
        GridRepo {
            db,
            slots: Mutex::new(HashMap::new()),
            clock: Default::default(),
            cached_bytes: Default::default(),
            budget: cache_bytes,
            held: Default::default(),
            actor: ActorId::random(),
        }
    }

    /// The slot of a grid, marked as just used. While the cached documents are estimated above the budget, the
    /// least recently used idle ones are dropped; a document in use stays, so the bound can be exceeded by the
    /// documents that requests hold at that moment.
    fn slot(&self, code: &str) -> (GridSlot, SlotSize) {
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut slots = self.slots.lock().expect("slot map poisoned");
        let entry = slots.entry(code.to_string()).or_insert_with(|| Entry {
            slot: GridSlot::default(),
            used: now,
            size: Default::default(),
        });
        entry.used = now;
        let taken = (entry.slot.clone(), SlotSize { slot: entry.size.clone(), total: self.cached_bytes.clone() });
        let over_budget = || self.cached_bytes.load(Ordering::Relaxed) > self.budget;
        if over_budget() || slots.len() > EMPTY_SLOTS_KEPT {
            let mut idle: Vec<(u64, String)> = slots
                .iter()
                // Only the map holds an idle slot: nobody has it locked or is waiting for it.
                .filter(|(_, e)| Arc::strong_count(&e.slot) == 1)
                .map(|(c, e)| (e.used, c.clone()))
                .collect();
            idle.sort_unstable();
            for (_, c) in idle {
                let empty = slots[&c].size.load(Ordering::Relaxed) == 0;
                if empty || over_budget() {
                    let gone = slots.remove(&c).expect("listed above");
                    self.cached_bytes.fetch_sub(gone.size.load(Ordering::Relaxed), Ordering::Relaxed);
                }
            }
        }
        metrics::gauge!(crate::ops::DOC_CACHE_GRIDS).set(slots.len() as f64);
        metrics::gauge!(crate::ops::DOC_CACHE_BYTES).set(self.cached_bytes.load(Ordering::Relaxed) as f64);
        taken
    }

    pub fn actor(&self) -> &ActorId {
        &self.actor
    }

    /// Locks grids in sorted order (so two requests never deadlock on each other).
    pub async fn lock_many(&self, codes: &[String]) -> Vec<GridLock> {
        let mut sorted: Vec<String> = codes.to_vec();
        sorted.sort();
        sorted.dedup();
        let mut out = Vec::with_capacity(sorted.len());
        for code in sorted {
            let (slot, size) = self.slot(&code);
            let guard = slot.lock_owned().await;
            out.push(GridLock { code, guard, size, _held: Held::new(&self.held) });
        }
        out
    }

    /// The heads of a grid as stored (for verification after copies and restores).
    pub async fn load_for_check(&self, code: &str) -> Result<Vec<automerge::ChangeHash>, StoreError> {
        let mut conn = self.db.pool.acquire().await?;
        Ok(self.load(code, &mut conn).await?.heads())
    }

    /// The stored version and log length of each of `codes` that has a document, in one statement.
    pub async fn stored_versions(
        &self,
        conn: &mut AnyConnection,
        codes: &[String],
    ) -> Result<HashMap<String, (i64, i64)>, StoreError> {
        let mut out = HashMap::with_capacity(codes.len());
        for chunk in codes.chunks(MAX_BINDS) {
            if chunk.is_empty() {
                continue;
            }
            let list = in_list(conn, chunk.len());
            let sql = format!("SELECT grid_code, version, log_count FROM grid_docs WHERE grid_code IN ({list})");
            let mut query = sqlx::query_as::<_, (String, i64, i64)>(sqlx::AssertSqlSafe(sql));
            for code in chunk {
                query = query.bind(code);
            }
            out.extend(query.fetch_all(&mut *conn).await?.into_iter().map(|(c, v, l)| (c, (v, l))));
        }
        Ok(out)
    }

    /// Reads one grid's current document under a brief lock (no write follows, so nothing is held for long).
    /// `stored` is its version as read just before (from `stored_versions`): when the cached copy is at that
    /// version no database access is needed; otherwise the version is read again under the lock.
    /// `f` must leave the document as stored: what it changes would be taken for stored.
    pub async fn with_current<T>(
        &self,
        code: &str,
        stored: Option<(i64, i64)>,
        f: impl FnOnce(Option<&mut Cached>) -> T,
    ) -> Result<T, StoreError> {
        let mut locks = self.lock_many(&[code.to_string()]).await;
        let lock = &mut locks[0];
        let fresh = matches!((&*lock.guard, stored), (Some(c), Some((v, _))) if c.version == v);
        if fresh {
            metrics::counter!(crate::ops::DOC_CACHE_HITS).increment(1);
            return Ok(f(lock.guard.as_mut()));
        }
        let mut conn = self.db.pool.acquire().await?;
        let cached = self.current(lock, &mut conn).await?;
        Ok(f(cached))
    }

    /// Locks grids for a read-check-write: in this process, and on PostgreSQL also across server instances
    /// (transaction-scoped advisory locks, taken in sorted order). Reads go through the returned session.
    pub async fn begin(&self, codes: &[String]) -> Result<(Vec<GridLock>, GridSession), StoreError> {
        let locks = self.lock_many(codes).await;
        let session = match self.db.backend {
            Backend::Postgres => {
                let mut tx = self.shared_with_imports().await?;
                for lock in &locks {
                    sqlx::query("SELECT pg_advisory_xact_lock($1)")
                        .bind(advisory_key(&lock.code))
                        .execute(&mut *tx)
                        .await?;
                }
                GridSession { tx: Some(tx), reader: None, db: self.db.clone() }
            }
            // One process owns an SQLite file: the in-process locks suffice, and reads stay outside the write
            // transaction so that it starts (behind the write gate) only when there is something to write.
            Backend::Sqlite => {
                GridSession { tx: None, reader: Some(self.db.pool.acquire().await?), db: self.db.clone() }
            }
        };
        Ok((locks, session))
    }

    /// A transaction holding the territory import's lock shared, as every grid write on PostgreSQL does, so that
    /// an import excludes them all with one lock (`begin_import`). While an import runs this waits without
    /// holding a database connection, so that syncs piling up behind a long import leave the pool to the rest.
    async fn shared_with_imports(&self) -> Result<Transaction<'static, Any>, StoreError> {
        loop {
            let mut tx = self.db.pool.begin().await?;
            let (got,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_xact_lock_shared($1)")
                .bind(advisory_key(IMPORT_LOCK))
                .fetch_one(&mut *tx)
                .await?;
            if got {
                return Ok(tx);
            }
            tx.rollback().await?;
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }

    /// Locks the grids of a territory import, however many, and opens its write transaction: in this process
    /// grid by grid, and on PostgreSQL with one lock that excludes every other grid write across instances (a
    /// lock per grid would exhaust PostgreSQL's lock table at province scale). Reads go through the transaction.
    pub async fn begin_import(
        &self,
        codes: &[String],
    ) -> Result<(Vec<GridLock>, WriteGuard, Transaction<'static, Any>), StoreError> {
        let locks = self.lock_many(codes).await;
        let (gate, mut tx) = self.db.begin_write().await?;
        if self.db.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(advisory_key(IMPORT_LOCK)).execute(&mut *tx).await?;
        }
        Ok((locks, gate, tx))
    }

    /// The current document of a locked grid, or `None` if the grid has no document yet.
    pub async fn current<'a>(
        &self,
        lock: &'a mut GridLock,
        conn: &mut AnyConnection,
    ) -> Result<Option<&'a mut Cached>, StoreError> {
        let stored = self.stored_versions(conn, std::slice::from_ref(&lock.code)).await?.remove(&lock.code);
        self.current_at(lock, conn, stored).await
    }

    /// As `current`, with the stored version already read while the lock was held.
    async fn current_at<'a>(
        &self,
        lock: &'a mut GridLock,
        conn: &mut AnyConnection,
        stored: Option<(i64, i64)>,
    ) -> Result<Option<&'a mut Cached>, StoreError> {
        let Some((version, log_count)) = stored else {
            lock.set_cached(None);
            return Ok(None);
        };
        let fresh = matches!(&*lock.guard, Some(c) if c.version == version);
        if fresh {
            metrics::counter!(crate::ops::DOC_CACHE_HITS).increment(1);
        } else {
            metrics::counter!(crate::ops::DOC_CACHE_LOADS).increment(1);
            let doc = self.load(&lock.code, conn).await?;
            lock.set_cached(Some(Cached { version, log_count, doc }));
        }
        Ok(lock.guard.as_mut())
    }

    async fn load(&self, code: &str, conn: &mut AnyConnection) -> Result<GridDoc, StoreError> {
        let (snapshot,): (Vec<u8>,) = sqlx::query_as("SELECT snapshot FROM grid_snapshots WHERE grid_code = $1")
            .bind(code)
            .fetch_one(&mut *conn)
            .await?;
        let mut doc = GridDoc::load(&snapshot)?;
        let rows: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT bytes FROM grid_changes WHERE grid_code = $1 ORDER BY seq")
            .bind(code)
            .fetch_all(&mut *conn)
            .await?;
        let changes = rows
            .into_iter()
            .map(|(b,)| Change::from_bytes(b))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::internal(format!("stored change of grid {code} unreadable: {e}")))?;
        doc.apply_changes(changes)?;
        doc.set_actor(self.actor.clone());
        Ok(doc)
    }

    /// Writes new changes of a locked grid inside the caller's transaction and returns what the cache must
    /// hold once that transaction commits.
    pub async fn persist(
        &self,
        tx: &mut Transaction<'static, Any>,
        lock: &GridLock,
        before: Option<(i64, i64)>,
        doc: &GridDoc,
        new_changes: &[Change],
    ) -> Result<(i64, i64), StoreError> {
        let written = self.persist_many(tx, &[GridWrite { lock, before, doc, new_changes }]).await?;
        Ok(written[0])
    }

    /// Writes the new changes of several locked grids inside the caller's transaction and returns, in the same
    /// order, what each cache slot must hold once that transaction commits. Grids that only gain changes (most)
    /// share two statements, whatever their number: the appended changes, and the new versions.
    pub async fn persist_many(
        &self,
        tx: &mut Transaction<'static, Any>,
        writes: &[GridWrite<'_>],
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        let now = now_ms();
        let mut versions = Vec::with_capacity(writes.len());
        let mut appended: Vec<(&str, i64, &Change)> = Vec::new();
        let mut updated: Vec<VersionUpdate> = Vec::new();
        for write in writes {
            let code = write.lock.code.as_str();
            let heads = hex_heads(&write.doc.heads());
            let added = write.new_changes.len() as i64;
            match write.before {
                None => {
                    sqlx::query(
                        "INSERT INTO grid_docs (grid_code, version, log_count, heads, updated_at) VALUES ($1, 1, 0, $2, $3)",
                    )
                    .bind(code)
                    .bind(&heads)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                    sqlx::query("INSERT INTO grid_snapshots (grid_code, snapshot) VALUES ($1, $2)")
                        .bind(code)
                        .bind(write.doc.save())
                        .execute(&mut **tx)
                        .await?;
                    versions.push((1, 0));
                }
                Some((version, log_count)) if log_count + added > COMPACT_AFTER_CHANGES => {
                    sqlx::query("DELETE FROM grid_changes WHERE grid_code = $1").bind(code).execute(&mut **tx).await?;
                    sqlx::query("UPDATE grid_snapshots SET snapshot = $1 WHERE grid_code = $2")
                        .bind(write.doc.save())
                        .bind(code)
                        .execute(&mut **tx)
                        .await?;
                    let done = sqlx::query(
                        "UPDATE grid_docs SET version = $1, log_count = 0, heads = $2, updated_at = $3 \
                         WHERE grid_code = $4 AND version = $5",
                    )
                    .bind(version + 1)
                    .bind(&heads)
                    .bind(now)
                    .bind(code)
                    .bind(version)
                    .execute(&mut **tx)
                    .await?;
                    check_updated(done.rows_affected(), 1)?;
                    versions.push((version + 1, 0));
                }
                Some((version, log_count)) => {
                    appended.extend(write.new_changes.iter().zip(log_count + 1..).map(|(c, seq)| (code, seq, c)));
                    updated.push(VersionUpdate { code, version: version + 1, log_count: log_count + added, heads });
                    versions.push((version + 1, log_count + added));
                }
            }
        }
        append_changes(tx, &appended).await?;
        update_versions(tx, &updated, now).await?;
        Ok(versions)
    }
}

/// One locked grid's new state, to write: the stored version and log length it was read at (`None`: not
/// stored yet), the document with the new changes applied, and those changes.
pub struct GridWrite<'a> {
    pub lock: &'a GridLock,
    pub before: Option<(i64, i64)>,
    pub doc: &'a GridDoc,
    pub new_changes: &'a [Change],
}

/// A grid's row after appending changes; `version` is the new one, which replaces `version - 1`.
struct VersionUpdate<'a> {
    code: &'a str,
    version: i64,
    log_count: i64,
    heads: String,
}

/// Appends changes to their grids' logs, as (grid, sequence number, change).
async fn append_changes(tx: &mut Transaction<'static, Any>, rows: &[(&str, i64, &Change)]) -> Result<(), StoreError> {
    const COLS: usize = 4;
    for chunk in rows.chunks(MAX_BINDS / COLS) {
        let sql = format!(
            "INSERT INTO grid_changes (grid_code, seq, hash, bytes) VALUES {}",
            values_list(tx, chunk.len(), COLS)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (code, seq, change) in chunk {
            query = query.bind(*code).bind(*seq).bind(change.hash().to_string()).bind(change.raw_bytes().to_vec());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Moves each grid to its new version, only from the version it was read at.
async fn update_versions(
    tx: &mut Transaction<'static, Any>,
    rows: &[VersionUpdate<'_>],
    now: i64,
) -> Result<(), StoreError> {
    const COLS: usize = 5;
    for chunk in rows.chunks(MAX_BINDS / COLS) {
        let sql = format!(
            "WITH v (grid_code, version, log_count, heads, updated_at) AS (VALUES {}) \
             UPDATE grid_docs SET version = v.version, log_count = v.log_count, heads = v.heads, \
             updated_at = v.updated_at FROM v \
             WHERE grid_docs.grid_code = v.grid_code AND grid_docs.version = v.version - 1",
            values_list(tx, chunk.len(), COLS)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            query = query.bind(row.code).bind(row.version).bind(row.log_count).bind(&row.heads).bind(now);
        }
        let done = query.execute(&mut **tx).await?;
        check_updated(done.rows_affected(), chunk.len())?;
    }
    Ok(())
}

/// The advisory lock a territory import holds exclusively and other grid writes shared; no grid code contains
/// a space, so it is no grid's key.
const IMPORT_LOCK: &str = "territory import";

/// A stable 64-bit advisory lock key for a grid code.
fn advisory_key(code: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("doorstep-grid:{code}").as_bytes());
    i64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// The database side of a locked read-check-write on grids: where to read, then where to write.
pub struct GridSession {
    tx: Option<Transaction<'static, Any>>,
    reader: Option<PoolConnection<Any>>,
    db: Db,
}

impl GridSession {
    pub fn reader(&mut self) -> &mut AnyConnection {
        match (&mut self.tx, &mut self.reader) {
            (Some(tx), _) => tx,
            (None, Some(conn)) => conn,
            (None, None) => unreachable!("a grid session always has a connection"),
        }
    }

    /// The transaction holding the grids' advisory locks (PostgreSQL); none on SQLite, whose session reads on a
    /// connection of the reading pool.
    pub fn transaction(&mut self) -> Option<&mut Transaction<'static, Any>> {
        self.tx.as_mut()
    }

    /// Gives the reading connection back to the pool once the session's reads are done (SQLite), so that a
    /// further read of the same request takes a connection without holding one: requests that each held one
    /// and waited for a second would otherwise wait for one another once the pool is exhausted. The session
    /// may then only switch to writing (`into_writer`).
    pub fn release_reader(&mut self) {
        self.reader = None;
    }

    /// Switches to writing: waits for SQLite's write gate and opens the transaction (on PostgreSQL the
    /// transaction holding the advisory locks continues).
    pub async fn into_writer(mut self) -> Result<(WriteGuard, Transaction<'static, Any>), StoreError> {
        drop(self.reader.take());
        match self.tx.take() {
            Some(tx) => Ok((WriteGuard::none(), tx)),
            None => Ok(self.db.begin_write().await?),
        }
    }
}

/// The version check makes a concurrent writer on another instance fail instead of interleaving.
fn check_updated(rows: u64, expected: usize) -> Result<(), StoreError> {
    if rows == expected as u64 {
        Ok(())
    } else {
        Err(StoreError::conflict("a grid changed concurrently while this request wrote it; retry"))
    }
}

impl GridRepo {
    /// After the transaction committed: the cache now holds the new document.
    pub fn commit_cache(lock: &mut GridLock, version_and_log: (i64, i64), doc: GridDoc) {
        lock.set_cached(Some(Cached { version: version_and_log.0, log_count: version_and_log.1, doc }));
    }

    /// Takes a locked grid's document out of the cache to change it: until `commit_cache` puts it back after
    /// the transaction commits, the slot is empty, so any failure in between leaves nothing half-applied in
    /// memory (the next use reloads the document from the database).
    /// `stored`: the grid's version read while the lock was held (from `stored_versions`).
    pub async fn take_current(
        &self,
        lock: &mut GridLock,
        conn: &mut AnyConnection,
        stored: Option<(i64, i64)>,
    ) -> Result<Option<Cached>, StoreError> {
        self.current_at(lock, conn, stored).await?;
        let cached = lock.guard.take();
        lock.size.set(0);
        Ok(cached)
    }

    /// After a failed transaction: forget the cached copy so the next use reloads from the database.
    pub fn discard_cache(lock: &mut GridLock) {
        lock.set_cached(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use client_core::grid::model::{AreaKind, GridInfo, Place, PlaceKind};

    /// A grid document with `places` places, as the territory import writes it.
    fn grid_doc(code: &str, places: usize) -> GridDoc {
        let mut doc = GridDoc::genesis();
        let info = GridInfo {
            code: code.to_string(),
            name: code.to_string(),
            village_code: "V1".into(),
            village_name: "village".into(),
            village_kind: AreaKind::Village,
            town_code: "T1".into(),
            town_name: "town".into(),
        };
        let places: Vec<Place> = (0..places)
            .map(|i| Place {
                id: format!("{code}-P{i}"),
                kind: PlaceKind::Household,
                label: format!("house {i}"),
                address: None,
                lat: None,
                lon: None,
            })
            .collect();
        doc.update_registry(&info, &places, &HashMap::new()).unwrap();
        doc
    }

    async fn store(repo: &GridRepo, code: &str) {
        store_doc(repo, code, &grid_doc(code, 50)).await
    }

    async fn store_doc(repo: &GridRepo, code: &str, doc: &GridDoc) {
        let (locks, session) = repo.begin(&[code.to_string()]).await.unwrap();
        let (_gate, mut tx) = session.into_writer().await.unwrap();
        repo.persist(&mut tx, &locks[0], None, doc, &[]).await.unwrap();
        tx.commit().await.unwrap();
    }

    fn cached(repo: &GridRepo) -> Vec<String> {
        let slots = repo.slots.lock().unwrap();
        let mut codes: Vec<String> =
            slots.iter().filter(|(_, e)| e.size.load(Ordering::Relaxed) > 0).map(|(c, _)| c.clone()).collect();
        codes.sort();
        codes
    }

    /// Frames in the database's write-ahead log: those written since the last complete checkpoint restarted it.
    async fn wal_frames(db: &Db) -> i64 {
        let (_, frames, _): (i64, i64, i64) =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&db.pool).await.unwrap();
        frames
    }

    /// A visit a device records, as its change to the grid.
    fn visit_change(doc: &mut GridDoc, actor: u8, place: &str) -> Change {
        doc.set_actor(automerge::ActorId::from(vec![actor; 16]));
        let visit = client_core::grid::model::Visit {
            id: uuid::Uuid::now_v7(),
            place_id: place.into(),
            volunteer: format!("v{actor}"),
            device: format!("d{actor}"),
            at: client_core::grid::doc::millis_to_time(1_700_000_000_000),
            outcome: client_core::grid::model::Outcome::Completed,
            deliveries: Default::default(),
            note: None,
            gps: None,
            photos: Vec::new(),
        };
        doc.add_visit(&visit).unwrap()
    }

    /// Storing new changes of a grid writes its version, heads and log, never its snapshot again: in SQLite a row
    /// whose length changes (as heads do when devices write concurrently) is written whole, with every page of a
    /// snapshot held in it.
    #[tokio::test]
    async fn storing_changes_leaves_the_snapshot_unwritten() {
        let dir = tempfile::tempdir().unwrap();
        let repo = GridRepo::new(Db::connect(&crate::store::db::sqlite_url(dir.path())).await.unwrap(), 1 << 20);
        // A registry that compresses like a real one: addresses and coordinates.
        let mut doc = grid_doc("G1", 0);
        let info = doc.grid_info().unwrap().unwrap();
        let places: Vec<Place> = (0..2000u32)
            .map(|i| Place {
                id: format!("G1-P{i}"),
                kind: PlaceKind::Household,
                label: format!("house {}", i.wrapping_mul(7919) % 10_007),
                address: Some(format!("{} Long Street, building {}", i.wrapping_mul(104_729) % 9_973, i % 37)),
                lat: Some(30.0 + f64::from(i.wrapping_mul(2_654_435_761)) / 1e12),
                lon: Some(120.0 + f64::from(i.wrapping_mul(40_503)) / 1e9),
            })
            .collect();
        doc.update_registry(&info, &places, &HashMap::new()).unwrap();
        let snapshot_pages = doc.save().len() / 4096;
        assert!(snapshot_pages >= 8, "a snapshot of {snapshot_pages} pages is too small to tell");
        store_doc(&repo, "G1", &doc).await;
        // Two devices' visits made concurrently: the grid goes from one head to two.
        let mut other = doc.fork();
        let changes = vec![visit_change(&mut doc, 1, "G1-P0"), visit_change(&mut other, 2, "G1-P1")];
        doc.apply_changes(vec![changes[1].clone()]).unwrap();
        assert_eq!(doc.heads().len(), 2);
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&repo.db.pool).await.unwrap();
        assert_eq!(wal_frames(&repo.db).await, 0);

        let (locks, session) = repo.begin(&["G1".to_string()]).await.unwrap();
        let (_gate, mut tx) = session.into_writer().await.unwrap();
        let writes = [GridWrite { lock: &locks[0], before: Some((1, 0)), doc: &doc, new_changes: &changes }];
        assert_eq!(repo.persist_many(&mut tx, &writes).await.unwrap(), vec![(2, 2)]);
        tx.commit().await.unwrap();
        let frames = wal_frames(&repo.db).await;
        assert!(frames < 6, "storing two changes wrote {frames} pages (the snapshot has {snapshot_pages})");
        drop(locks);
        let mut conn = repo.db.pool.acquire().await.unwrap();
        assert_eq!(repo.load("G1", &mut conn).await.unwrap().heads().len(), 2, "the stored grid has both changes");
    }

    #[tokio::test]
    async fn grids_count_as_held_while_locked_and_the_peak_stays() {
        let dir = tempfile::tempdir().unwrap();
        let repo = GridRepo::new(Db::connect(&crate::store::db::sqlite_url(dir.path())).await.unwrap(), 1 << 20);
        let held = |repo: &GridRepo| (repo.held.now.load(Ordering::Relaxed), repo.held.peak.load(Ordering::Relaxed));
        let two = repo.lock_many(&["A".to_string(), "B".to_string()]).await;
        assert_eq!(held(&repo), (2, 2));
        drop(two);
        assert_eq!(held(&repo), (0, 2));
        let one = repo.lock_many(&["C".to_string()]).await;
        assert_eq!(held(&repo), (1, 2));
        drop(one);
        assert_eq!(held(&repo), (0, 2));
    }

    #[tokio::test]
    async fn idle_documents_beyond_the_byte_budget_are_dropped_but_held_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&crate::store::db::sqlite_url(dir.path())).await.unwrap();
        // As loaded from the database: a snapshot, without recent changes' bytes.
        let one = estimated_bytes(&GridDoc::load(&grid_doc("G00", 50).save()).unwrap());
        let repo = GridRepo::new(db, 3 * one);
        for i in 0..10 {
            store(&repo, &format!("G{i:02}")).await;
        }
        store(&repo, "held").await;
        let mut held = repo.lock_many(&["held".to_string()]).await;
        let mut conn = repo.db.pool.acquire().await.unwrap();
        assert!(repo.current(&mut held[0], &mut conn).await.unwrap().is_some());
        drop(conn);
        for i in 0..10 {
            assert!(repo.with_current(&format!("G{i:02}"), None, |c| c.is_some()).await.unwrap());
        }
        let kept = cached(&repo);
        // Each use drops idle documents down to the budget before it loads its own.
        let total = repo.cached_bytes.load(Ordering::Relaxed);
        assert!(total <= 4 * one, "{total} bytes cached for a budget of {}: {kept:?}", 3 * one);
        assert!(kept.contains(&"held".to_string()), "a locked grid is never dropped: {kept:?}");
        assert!(kept.contains(&"G09".to_string()), "the most recent stays: {kept:?}");
        assert!(!kept.contains(&"G00".to_string()), "the oldest idle one went: {kept:?}");
        // The running total is the sum of what the slots hold.
        let sum: u64 = repo.slots.lock().unwrap().values().map(|e| e.size.load(Ordering::Relaxed)).sum();
        assert_eq!(total, sum);

        // A document taken out to be changed counts for nothing until it is put back.
        let mut conn = repo.db.pool.acquire().await.unwrap();
        let stored = repo.stored_versions(&mut conn, &["held".to_string()]).await.unwrap().remove("held");
        let taken = repo.take_current(&mut held[0], &mut conn, stored).await.unwrap().unwrap();
        assert_eq!(repo.cached_bytes.load(Ordering::Relaxed), total - one);
        GridRepo::commit_cache(&mut held[0], (taken.version, taken.log_count), taken.doc);
        assert_eq!(repo.cached_bytes.load(Ordering::Relaxed), total);
    }
}
