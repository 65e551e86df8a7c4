//! The content-addressed store of files (bulletin attachments now, photos later): each file once, named by the
//! SHA-256 of its bytes, under `<data dir>/blobs/<first 2 hex>/<64 hex>`, indexed by the `blobs` table.
//!
//! A file's type is judged by its content, never by its name, and only a few types are taken (`sniff`). A file is
//! written to a temporary file in its final directory, fsynced and renamed, before its row is inserted: a row
//! always names a complete file, and a backup that copies the files after the database holds every file its rows
//! name.
//!
//! Integrity: the hash is computed from the bytes received when a file is put; serving checks only that the file
//! still has the size its row records (a damaged or truncated file is then not served, and putting the same bytes
//! again repairs it). Hashing the whole file at every read would cost a full read per request, ranges included;
//! the readers (devices, hubs) verify the hash of what they downloaded before using it. Its rows are in
//! `store/blobs.rs`.

use crate::store::blobs as stored;
use crate::store::db::Db;
use crate::store::{StoreError, StoreResult};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The largest file the store takes (an attachment, a photo).
pub const MAX_ATTACHMENT_BYTES: usize = client_core::bulletin::MAX_ATTACHMENT_BYTES as usize;

/// The types the store takes, as sniffed from the content.
pub use client_core::bulletin::{is_sha256_hex, ATTACHMENT_TYPES as ACCEPTED_TYPES};

/// A stored file, as its row describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Blob {
    pub sha256: String,
    pub size: u64,
    #[serde(rename = "type")]
    pub content_type: String,
}

/// Why a file was not stored.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    /// Not one of the accepted types, judged by content; the message says what was found.
    #[error("{0}")]
    NotAccepted(String),
    #[error("{0}")]
    TooLarge(String),
    /// The file could not be written to disk (full or failing).
    #[error("cannot write the file: {0}")]
    Disk(std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for PutError {
    fn from(e: sqlx::Error) -> Self {
        PutError::Store(e.into())
    }
}

/// The accepted type of `bytes`, from their first bytes; otherwise a message for the sender naming what was found.
pub fn sniff(bytes: &[u8]) -> Result<&'static str, String> {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    let accepted = if starts(b"\xFF\xD8\xFF") {
        Some("image/jpeg")
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some("image/gif")
    } else if starts(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        Some("image/webp")
    } else if starts(b"%PDF-") {
        Some("application/pdf")
    } else {
        None
    };
    accepted.ok_or_else(|| {
        format!(
            "only JPEG, PNG, WebP and GIF images and PDF documents can be attached (judged by the file's content, \
             not its name); this file is {}",
            what_it_is(bytes)
        )
    })
}

/// What a refused file looks like, in words, for the refusal's message.
fn what_it_is(bytes: &[u8]) -> &'static str {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    // ISO media files (MP4, QuickTime, HEIC) name their brand after `ftyp` at offset 4.
    let iso_media = bytes.get(4..8) == Some(b"ftyp".as_slice());
    if bytes.is_empty() {
        "empty"
    } else if starts(b"PK\x03\x04") {
        "a ZIP archive (Word, Excel and PowerPoint files are ZIP archives: save it as PDF first)"
    } else if iso_media && matches!(bytes.get(8..12), Some(b"heic") | Some(b"heix") | Some(b"mif1")) {
        "a HEIC image (convert it to JPEG first)"
    } else if iso_media {
        "a video (MP4 or QuickTime)"
    } else if starts(b"BM") {
        "a BMP image (convert it to PNG first)"
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        "a TIFF image (convert it to PNG or JPEG first)"
    } else if starts(b"\x1f\x8b") || starts(b"Rar!") || starts(b"7z\xBC\xAF") {
        "a compressed archive"
    } else if starts(b"\x7fELF") || starts(b"MZ") {
        "a program"
    } else if starts(b"\xD0\xCF\x11\xE0") {
        "an old Office document (save it as PDF first)"
    } else if looks_like_text(&bytes[..bytes.len().min(4096)]) {
        "text"
    } else {
        "of a type not recognised"
    }
}

/// UTF-8 without control characters but whitespace (the slice may end inside a character).
fn looks_like_text(head: &[u8]) -> bool {
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default(),
        Err(_) => return false,
    };
    !text.chars().any(|c| c.is_control() && !c.is_whitespace())
}

/// The SHA-256 of a file being read piece by piece, as the store names it.
#[derive(Default, Clone)]
pub struct Sha256Hasher(Sha256);

impl Sha256Hasher {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    /// Lower-case hex, as in paths, rows and URLs.
    pub fn finish_hex(self) -> String {
        self.0.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let mut hasher = Sha256Hasher::new();
    hasher.update(bytes);
    hasher.finish_hex()
}

/// The SHA-256 of a file on disk, read a piece at a time (blocking).
pub fn sha256_of_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256Hasher::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(hasher.finish_hex());
        }
        hasher.update(&buffer[..n]);
    }
}

/// Where the file `sha256` lies under a store's directory `root`: `<root>/<first 2 hex>/<64 hex>`; `None` unless
/// `sha256` is 64 lower-case hex digits (so nothing else can name a path).
pub fn blob_path(root: &Path, sha256: &str) -> Option<PathBuf> {
    is_sha256_hex(sha256).then(|| root.join(&sha256[..2]).join(sha256))
}

/// Writes `bytes` as the file at `path` (which must not be read until this returns): to a temporary file in the
/// same directory, fsynced, renamed into place, and the directory fsynced, so that a crash leaves either no file
/// or the whole file. Blocking.
pub fn write_file_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("a blob's path has a directory");
    client_core::private_files::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("blob");
    let temp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let mut file = client_core::private_files::options().write(true).create_new(true).open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// The store: its directory and the database of its index.
#[derive(Clone)]
pub struct BlobStore {
    dir: PathBuf,
    db: Db,
}

/// A stored file opened for reading, with what its row says of it.
pub struct OpenBlob {
    pub blob: Blob,
    pub file: tokio::fs::File,
}

impl BlobStore {
    /// The store whose files are under `dir` (`<data dir>/blobs` by default): written whole under their hash,
    /// so several instances may share the directory.
    pub fn new(dir: PathBuf, db: Db) -> BlobStore {
        BlobStore { dir, db }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the file `sha256` lies (whether stored or not); `None` for a malformed hash.
    pub fn path_of(&self, sha256: &str) -> Option<PathBuf> {
        blob_path(&self.dir, sha256)
    }

    /// Stores `bytes` (sent by the user `by`) if they are of an accepted type and within the bound. The same bytes
    /// twice are one file and one row; the answer is the same.
    pub async fn put(&self, bytes: Vec<u8>, by: &str) -> Result<Blob, PutError> {
        if bytes.len() > MAX_ATTACHMENT_BYTES {
            return Err(PutError::TooLarge(too_large_message(bytes.len() as u64)));
        }
        let content_type = sniff(&bytes).map_err(PutError::NotAccepted)?;
        let size = bytes.len() as u64;
        let dir = self.dir.clone();
        // Hashing 10 MiB and writing it take milliseconds: off the async workers.
        let sha256 = tokio::task::spawn_blocking(move || {
            let sha256 = sha256_hex(&bytes);
            let path = blob_path(&dir, &sha256).expect("a computed hash is well formed");
            // Written unless already there whole (then it is these bytes: its name is their hash, computed when it
            // was written); a file of another size is damaged and replaced.
            match std::fs::metadata(&path) {
                Ok(meta) if meta.len() == size => Ok(sha256),
                _ => write_file_durably(&path, &bytes).map(|()| sha256),
            }
        })
        .await
        .map_err(|e| PutError::Store(StoreError::internal(format!("writing a blob: {e}"))))?
        .map_err(PutError::Disk)?;
        stored::insert(&self.db, &sha256, size, content_type, by).await?;
        Ok(Blob { sha256, size, content_type: content_type.to_string() })
    }

    /// What the row of `sha256` says, if it is stored.
    pub async fn row(&self, sha256: &str) -> StoreResult<Option<Blob>> {
        if !is_sha256_hex(sha256) {
            return Ok(None);
        }
        let row = stored::size_and_type(&self.db, sha256).await?;
        Ok(row.map(|(size, content_type)| Blob { sha256: sha256.to_string(), size, content_type }))
    }

    /// The stored file `sha256`, opened for reading; `None` if it is not stored, or if its file is missing or of
    /// another size than its row says (logged: the file was damaged; putting it again repairs it).
    pub async fn open(&self, sha256: &str) -> StoreResult<Option<OpenBlob>> {
        let Some(blob) = self.row(sha256).await? else { return Ok(None) };
        let path = self.path_of(sha256).expect("checked by row");
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "a stored blob's file cannot be opened");
                return Ok(None);
            }
        };
        let size = file.metadata().await.map_err(|e| StoreError::internal(format!("blob metadata: {e}")))?.len();
        if size != blob.size {
            tracing::error!(path = %path.display(), size, expected = blob.size, "a stored blob's file is damaged");
            return Ok(None);
        }
        Ok(Some(OpenBlob { blob, file }))
    }

    /// Whether a device of `team` may read `sha256`: it is attached to a bulletin not withdrawn whose audience is
    /// everyone or includes the team.
    pub async fn device_may_read(&self, sha256: &str, team: Option<&str>) -> StoreResult<bool> {
        stored::attached_for(&self.db, sha256, team).await
    }
}

/// The store's folder inside a data directory (a backup copies it).
pub const BLOBS_DIR: &str = "blobs";

pub fn too_large_message(size: u64) -> String {
    format!(
        "the file is {size} bytes; an attachment may be at most {MAX_ATTACHMENT_BYTES} bytes (10 MiB): make it \
         smaller (a photo at lower resolution, a PDF with fewer pages)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    /// Types are told by content: each accepted signature, and refusals that say what the file is.
    #[test]
    fn sniffs_accepted_types_by_content() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF"), Ok("image/jpeg"));
        assert_eq!(sniff(PNG), Ok("image/png"));
        assert_eq!(sniff(b"GIF89a\x01\0"), Ok("image/gif"));
        assert_eq!(sniff(b"GIF87a\x01\0"), Ok("image/gif"));
        assert_eq!(sniff(b"RIFF\x24\0\0\0WEBPVP8 "), Ok("image/webp"));
        assert_eq!(sniff(b"%PDF-1.7\n"), Ok("application/pdf"));
        for (bytes, found) in [
            (&b"hello, this is a .jpg in name only"[..], "this file is text"),
            (b"", "this file is empty"),
            (b"PK\x03\x04\x14\0", "ZIP archive"),
            (b"RIFF\x24\0\0\0WAVEfmt ", "not recognised"),
            (b"\0\0\0\x18ftypheic", "HEIC"),
            (b"\0\0\0\x18ftypisom", "video"),
            (b"MZ\x90\0", "a program"),
            (b"\xFF\xD8", "not recognised"),
        ] {
            let refused = sniff(bytes).unwrap_err();
            assert!(refused.contains(found), "{bytes:?}: {refused}");
            assert!(refused.contains("JPEG, PNG, WebP and GIF images and PDF"), "{refused}");
        }
        assert_eq!(MAX_ATTACHMENT_BYTES as u64, client_core::bulletin::MAX_ATTACHMENT_BYTES);
    }

    /// Paths are `<root>/<2 hex>/<64 hex>`, and nothing but a well-formed hash names one.
    #[test]
    fn paths_are_named_by_hash_only() {
        let root = Path::new("data/blobs");
        let sha = sha256_hex(b"abc");
        assert_eq!(sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(blob_path(root, &sha), Some(root.join("ba").join(&sha)));
        for bad in ["../../etc/passwd", "", &sha.to_uppercase(), &sha[..63], &format!("{}g", &sha[..63])] {
            assert_eq!(blob_path(root, bad), None, "{bad}");
        }
    }

    /// A durable write leaves the whole file and no temporary file; hashing the file gives its name back.
    #[test]
    fn durable_write_leaves_only_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let sha = sha256_hex(PNG);
        let path = blob_path(dir.path(), &sha).unwrap();
        write_file_durably(&path, PNG).unwrap();
        write_file_durably(&path, PNG).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), PNG);
        assert_eq!(sha256_of_file(&path).unwrap(), sha);
        let names: Vec<_> =
            std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from(&sha)]);
    }
}
