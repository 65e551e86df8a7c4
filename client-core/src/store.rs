//! The device's offline store: documents of one kind (grids, urgent tasks) in a folder of a profile, written so
//! that a crash at any instant loses nothing that was acknowledged. Every kind keeps the same files.
//!
//! Per document (a grid's code or a task's id): `<code>.snapshot` (a saved document, replaced atomically by temp
//! file + fsync + rename) and `<code>.log` (an append-only log of changes since the snapshot, one fsynced record
//! per write; each record is length + CRC32 + bytes, so a torn tail from a crash mid-write is detected and dropped on the next
//! open). `<code>.sync.json` holds the heads the server last confirmed. `<code>.sigs` keeps the writers'
//! signatures of other devices' changes received through a hub (to pass them on), `<code>.attest` the server's
//! latest signed statement of its heads. A lock file serialises processes sharing a profile, so two commands
//! never write changes with the same actor sequence number. Every folder and file is its owner's only
//! (`private_files`): they hold the team's households and visits.

use crate::grid::doc::{DocError, GridDoc};
use crate::private_files;
use crate::protocol::{hex_heads, parse_hex_heads, Attestation, ChangeSignature};
use automerge::{Change, ChangeHash};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// Log records after which opening a document folds the log into a new snapshot.
const COMPACT_AFTER_RECORDS: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: {source}")]
    Doc { path: PathBuf, source: Box<DocError> },
    #[error("{path}: {message}")]
    Corrupt { path: PathBuf, message: String },
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}

/// Writes a file so that readers see either the old or the new content, never a mix, even after a crash. The
/// file is its owner's only.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("file")));
    let mut f = private_files::options().write(true).create(true).truncate(true).open(&tmp).map_err(io_err(&tmp))?;
    // A temporary file left by an interrupted write keeps its old mode.
    private_files::restrict(&f).map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(io_err(path))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).expect("serialising plain data cannot fail");
    write_atomic(path, &bytes)
}

fn read_cbor<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => crate::protocol::decode(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt { path: path.to_path_buf(), message: e.to_string() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt { path: path.to_path_buf(), message: e.to_string() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// A document the store can keep: a grid or an urgent task (every `sync::DocKind`).
pub trait StoredDoc: Sized {
    fn load(bytes: &[u8]) -> Result<Self, DocError>;
    fn apply_changes(&mut self, changes: Vec<Change>) -> Result<(), DocError>;
    fn save(&self) -> Vec<u8>;
}

impl StoredDoc for GridDoc {
    fn load(bytes: &[u8]) -> Result<Self, DocError> {
        GridDoc::load(bytes)
    }
    fn apply_changes(&mut self, changes: Vec<Change>) -> Result<(), DocError> {
        GridDoc::apply_changes(self, changes)
    }
    fn save(&self) -> Vec<u8> {
        GridDoc::save(self)
    }
}

impl StoredDoc for crate::task::doc::TaskDoc {
    fn load(bytes: &[u8]) -> Result<Self, DocError> {
        crate::task::doc::TaskDoc::load(bytes)
    }
    fn apply_changes(&mut self, changes: Vec<Change>) -> Result<(), DocError> {
        crate::task::doc::TaskDoc::apply_changes(self, changes)
    }
    fn save(&self) -> Vec<u8> {
        crate::task::doc::TaskDoc::save(self)
    }
}

/// What the device knows about the server's copy of a grid.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SyncMark {
    /// Heads the server confirmed holding, comma-separated hex; empty = nothing confirmed.
    pub confirmed: String,
    pub last_sync: Option<chrono::DateTime<chrono::Utc>>,
}

impl SyncMark {
    pub fn confirmed_heads(&self) -> Vec<ChangeHash> {
        parse_hex_heads(&self.confirmed)
    }
    pub fn set_confirmed(&mut self, heads: &[ChangeHash]) {
        self.confirmed = hex_heads(heads);
    }
}

/// A folder of documents of one kind, held under an exclusive lock for as long as the value lives.
#[derive(Debug)]
pub struct DocStore<D> {
    dir: PathBuf,
    _lock: File,
    _kind: PhantomData<fn() -> D>,
}

/// The grids folder of a profile.
pub type GridStore = DocStore<GridDoc>;

impl GridStore {
    /// Codes of the grids held, sorted.
    pub fn grids(&self) -> Result<Vec<String>> {
        self.ids()
    }
}

impl<D: StoredDoc> DocStore<D> {
    /// Opens (creating if needed) the store and waits for any other process using it to finish.
    pub fn open(dir: &Path) -> Result<Self> {
        private_files::create_dir_all(dir).map_err(io_err(dir))?;
        let lock_path = dir.join(".lock");
        let lock = private_files::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        lock.lock().map_err(io_err(&lock_path))?;
        Ok(DocStore { dir: dir.to_path_buf(), _lock: lock, _kind: PhantomData })
    }

    fn path(&self, id: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("{id}.{ext}"))
    }

    /// Ids of the documents held, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let name = entry.map_err(io_err(&self.dir))?.file_name();
            if let Some(code) = name.to_str().and_then(|n| n.strip_suffix(".snapshot")) {
                out.push(code.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Loads a document: its snapshot plus every intact log record.
    pub fn load(&self, name: &str) -> Result<D> {
        let snap_path = self.path(name, "snapshot");
        let snapshot = fs::read(&snap_path).map_err(io_err(&snap_path))?;
        let mut doc = D::load(&snapshot)
            .map_err(|source| StoreError::Doc { path: snap_path.clone(), source: Box::new(source) })?;
        let log_path = self.path(name, "log");
        let (records, intact_len) = read_log(&log_path)?;
        let changes = records
            .into_iter()
            .map(|r| {
                Change::from_bytes(r)
                    .map_err(|e| StoreError::Corrupt { path: log_path.clone(), message: e.to_string() })
            })
            .collect::<Result<Vec<_>>>()?;
        let count = changes.len();
        doc.apply_changes(changes)
            .map_err(|source| StoreError::Doc { path: log_path.clone(), source: Box::new(source) })?;
        if let Some(len) = intact_len {
            // Drop a torn tail so later appends do not land after garbage.
            let f = OpenOptions::new().write(true).open(&log_path).map_err(io_err(&log_path))?;
            f.set_len(len).and_then(|_| f.sync_all()).map_err(io_err(&log_path))?;
        }
        if count >= COMPACT_AFTER_RECORDS {
            self.replace(name, &doc)?;
        }
        Ok(doc)
    }

    /// Makes a change durable: returns only after it is on disk.
    pub fn append(&self, id: &str, changes: &[Change]) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let path = self.path(id, "log");
        let existed = path.exists();
        let mut buf = Vec::new();
        for c in changes {
            let bytes = c.raw_bytes();
            buf.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            buf.extend_from_slice(&crc32fast::hash(bytes).to_le_bytes());
            buf.extend_from_slice(bytes);
        }
        let mut f = private_files::options().create(true).append(true).open(&path).map_err(io_err(&path))?;
        f.write_all(&buf).and_then(|_| f.sync_data()).map_err(io_err(&path))?;
        if !existed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Replaces a document's files with one snapshot of `doc` (a new document, or compaction). The snapshot is
    /// written before the log is emptied, so a crash in between only replays changes already present.
    pub fn replace(&self, name: &str, doc: &D) -> Result<()> {
        write_atomic(&self.path(name, "snapshot"), &doc.save())?;
        let log = self.path(name, "log");
        match OpenOptions::new().write(true).open(&log) {
            Ok(f) => f.set_len(0).and_then(|_| f.sync_all()).map_err(io_err(&log)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&log)(e)),
        }
    }

    pub fn mark(&self, id: &str) -> Result<SyncMark> {
        Ok(read_json(&self.path(id, "sync.json"))?.unwrap_or_default())
    }

    pub fn set_mark(&self, id: &str, mark: &SyncMark) -> Result<()> {
        write_json_atomic(&self.path(id, "sync.json"), mark)
    }

    /// Contact details of the id's places, if the office shares them with this device.
    pub fn contacts(&self, id: &str) -> Result<Vec<crate::protocol::Contact>> {
        Ok(read_json(&self.path(id, "contacts.json"))?.unwrap_or_default())
    }

    /// Replaces the id's contact details; an empty list deletes the file, so nothing lingers on the device.
    pub fn set_contacts(&self, id: &str, contacts: &[crate::protocol::Contact]) -> Result<()> {
        let path = self.path(id, "contacts.json");
        if !contacts.is_empty() {
            return write_json_atomic(&path, &contacts);
        }
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Writers' signatures of other devices' changes, by change hash.
    pub fn signatures(&self, id: &str) -> Result<HashMap<ChangeHash, ChangeSignature>> {
        let list: Vec<ChangeSignature> = read_cbor(&self.path(id, "sigs"))?.unwrap_or_default();
        Ok(list.into_iter().filter_map(|s| Some((ChangeHash(s.change.as_slice().try_into().ok()?), s))).collect())
    }

    /// Keeps signatures durably. Call before appending the changes they sign, so a stored change never lacks
    /// the signature it needs to travel on.
    pub fn add_signatures(&self, id: &str, new: &[ChangeSignature]) -> Result<()> {
        if new.is_empty() {
            return Ok(());
        }
        let mut all = self.signatures(id)?;
        let before = all.len();
        for s in new {
            if let Ok(hash) = s.change.as_slice().try_into() {
                all.entry(ChangeHash(hash)).or_insert_with(|| s.clone());
            }
        }
        if all.len() == before {
            return Ok(());
        }
        self.write_signatures(id, all)
    }

    /// Drops the signatures `keep` says are no longer needed (their changes are stored on the server).
    pub fn retain_signatures(&self, id: &str, keep: impl Fn(&ChangeHash) -> bool) -> Result<()> {
        let all = self.signatures(id)?;
        let before = all.len();
        let kept: HashMap<_, _> = all.into_iter().filter(|(h, _)| keep(h)).collect();
        if kept.len() == before {
            return Ok(());
        }
        self.write_signatures(id, kept)
    }

    fn write_signatures(&self, id: &str, all: HashMap<ChangeHash, ChangeSignature>) -> Result<()> {
        let mut list: Vec<ChangeSignature> = all.into_values().collect();
        list.sort_by(|a, b| a.change.cmp(&b.change));
        write_atomic(&self.path(id, "sigs"), &crate::protocol::encode(&list))
    }

    /// The server's latest signed statement of the heads it holds for this id.
    pub fn attestation(&self, id: &str) -> Result<Option<Attestation>> {
        read_cbor(&self.path(id, "attest"))
    }

    /// Keeps `attestation` if it is newer than the one held.
    pub fn offer_attestation(&self, id: &str, attestation: &Attestation) -> Result<bool> {
        if self.attestation(id)?.is_some_and(|held| held.at >= attestation.at) {
            return Ok(false);
        }
        write_atomic(&self.path(id, "attest"), &crate::protocol::encode(attestation))?;
        Ok(true)
    }

    /// Forgets a id entirely (after its unsent changes were confirmed by the server): every file that held it,
    /// including the temporary files an interrupted atomic write may have left, then the directory entry is synced.
    pub fn remove(&self, id: &str) -> Result<()> {
        for ext in ["snapshot", "log", "sync.json", "contacts.json", "sigs", "attest"] {
            let p = self.path(id, ext);
            let tmp = self.dir.join(format!(".{id}.{ext}.tmp"));
            for p in [p, tmp] {
                match fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(&p)(e)),
                }
            }
        }
        sync_dir(&self.dir)
    }
}

/// Reads the intact records of a log. The second value is `Some(len)` when a torn tail must be cut at `len`.
fn read_log(path: &Path) -> Result<(Vec<Vec<u8>>, Option<u64>)> {
    let mut data = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut data).map_err(io_err(path))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
        Err(e) => return Err(io_err(path)(e)),
    }
    let mut records = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let header = data.get(pos..pos + 8);
        let Some(header) = header else { break };
        let len = u32::from_le_bytes(header[0..4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(header[4..8].try_into().unwrap());
        let Some(body) = data.get(pos + 8..pos + 8 + len) else {
            break;
        };
        if crc32fast::hash(body) != crc {
            break;
        }
        records.push(body.to_vec());
        pos += 8 + len;
    }
    let torn = (pos < data.len()).then_some(pos as u64);
    Ok((records, torn))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::model::{Deliveries, Outcome, Visit};

    fn visit(place: &str) -> Visit {
        Visit {
            id: uuid::Uuid::now_v7(),
            place_id: place.into(),
            volunteer: "amy".into(),
            device: "d1".into(),
            at: chrono::Utc::now(),
            outcome: Outcome::Completed,
            deliveries: Deliveries::of(["handbook"]),
            note: None,
            gps: None,
            photos: Vec::new(),
        }
    }

    #[test]
    fn appended_changes_survive_reopen_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = GridStore::open(dir.path()).unwrap();
        let mut doc = GridDoc::genesis();
        doc.set_actor(automerge::ActorId::random());
        store.replace("G1", &doc).unwrap();
        let c1 = doc.add_visit(&visit("P1")).unwrap();
        store.append("G1", &[c1]).unwrap();
        let c2 = doc.add_visit(&visit("P2")).unwrap();
        store.append("G1", &[c2]).unwrap();
        // Simulate a crash in the middle of a third append.
        let log = dir.path().join("G1.log");
        let mut f = OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let before = fs::metadata(&log).unwrap().len();

        let loaded = store.load("G1").unwrap();
        assert_eq!(loaded.visit_count(), 2);
        assert_eq!(loaded.heads(), doc.heads());
        assert_eq!(fs::metadata(&log).unwrap().len(), before - 6, "torn tail cut");
        assert_eq!(store.grids().unwrap(), ["G1"]);
    }

    #[test]
    fn compaction_keeps_every_visit() {
        let dir = tempfile::tempdir().unwrap();
        let store = GridStore::open(dir.path()).unwrap();
        let mut doc = GridDoc::genesis();
        doc.set_actor(automerge::ActorId::random());
        store.replace("G1", &doc).unwrap();
        for i in 0..COMPACT_AFTER_RECORDS + 1 {
            let c = doc.add_visit(&visit(&format!("P{i}"))).unwrap();
            store.append("G1", &[c]).unwrap();
        }
        assert_eq!(store.load("G1").unwrap().visit_count(), COMPACT_AFTER_RECORDS + 1);
        assert_eq!(fs::metadata(dir.path().join("G1.log")).unwrap().len(), 0, "log folded");
        assert_eq!(store.load("G1").unwrap().visit_count(), COMPACT_AFTER_RECORDS + 1);
    }

    #[test]
    fn marks_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = GridStore::open(dir.path()).unwrap();
        assert_eq!(store.mark("G1").unwrap(), SyncMark::default());
        let doc = GridDoc::genesis();
        let mut mark = SyncMark::default();
        mark.set_confirmed(&doc.heads());
        store.set_mark("G1", &mark).unwrap();
        assert_eq!(store.mark("G1").unwrap().confirmed_heads(), doc.heads());
    }
}
