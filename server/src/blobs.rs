//! The content-addressed store of files (bulletin attachments, photos and their thumbnails): each file once, named
//! by the SHA-256 of its bytes, indexed by the `blobs` table. Its files are kept in one of two places (`Backend`):
//! a directory, `<data dir>/blobs/<first 2 hex>/<64 hex>` by default, or an S3-compatible bucket (objects
//! `<prefix>/<first 2 hex>/<64 hex>`, through the `object_store` crate) that several server instances share. The
//! rest of the server does not know which: it puts bytes and reads them (`put`, `put_checked`, `read`).
//!
//! A file's type is judged by its content, never by its name, and only a few types are taken (`sniff`), unless the
//! caller has checked the content itself (`put_checked`). A file is written whole before its row is inserted (in a
//! directory: to a temporary file, fsynced and renamed; in a bucket: a put, which is atomic): a row always names a
//! complete file, and a backup that copies the files after the database holds every file its rows name.
//!
//! Integrity: the hash is computed from the bytes received when a file is put; serving checks only that the file
//! still has the size its row records (a damaged or truncated file is then not served, and putting the same bytes
//! again repairs it). Hashing the whole file at every read would cost a full read per request, ranges included;
//! the readers (devices, hubs) verify the hash of what they downloaded before using it. Its rows are in
//! `store/blobs.rs`.

use crate::store::blobs as stored;
use crate::store::db::Db;
use crate::store::{StoreError, StoreResult};
use axum::body::Bytes;
use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, Attributes, BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutOptions,
    PutPayload, RetryConfig,
};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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
    /// The file could not be written where files are kept (a disk full or failing, a bucket unreachable).
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

/// The bytes of a stored file as they arrive from where it is kept, a piece at a time.
pub type ByteStream = futures_util::stream::BoxStream<'static, std::io::Result<Bytes>>;

/// An S3-compatible bucket to keep the store's files in (`doorstep serve --blobs-s3-*`), instead of a directory.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    /// `http(s)://host:port` of an S3-compatible server (MinIO, Ceph, a cloud's); `None`: Amazon S3 itself.
    pub endpoint: Option<String>,
    pub region: String,
    /// Folder-like prefix of every object's name (e.g. `doorstep`); empty for none.
    pub prefix: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Config {
    /// Everything but the secret, which is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl S3Config {
    /// `s3://BUCKET/PREFIX at ENDPOINT`: what messages and the data dir's marker name it by (no credentials).
    pub fn describe(&self) -> String {
        let prefix = self.prefix.trim_matches('/');
        let at = self.endpoint.as_deref().unwrap_or("Amazon S3");
        if prefix.is_empty() {
            format!("s3://{} at {at}", self.bucket)
        } else {
            format!("s3://{}/{prefix} at {at}", self.bucket)
        }
    }
}

/// Where a store keeps its files.
#[derive(Clone)]
enum Backend {
    /// `<dir>/<2 hex>/<64 hex>` on a file system (several instances may share a network one).
    Dir(PathBuf),
    /// Objects `<prefix>/<2 hex>/<64 hex>` in a bucket; `described` names it in messages.
    S3 { bucket: Arc<dyn ObjectStore>, prefix: Option<ObjectPath>, described: String },
}

/// The store: where its files are and the database of its index.
#[derive(Clone)]
pub struct BlobStore {
    backend: Backend,
    db: Db,
}

/// A stored file opened for reading from a local file, with what is known of it (a team's hub serves its cache
/// with it: `http::blobs::file_response`).
pub struct OpenBlob {
    pub blob: Blob,
    pub file: tokio::fs::File,
}

/// Requests to the bucket are retried a few times within seconds, then fail: a request waits for the bucket for
/// seconds, not minutes (object_store's default), and a server that cannot reach it at startup says so soon.
fn s3_retries() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 3,
        retry_timeout: Duration::from_secs(20),
    }
}

/// A bucket that does not accept a connection within seconds is unreachable. A request may last two minutes (not
/// object_store's 30 seconds): a download is streamed from the bucket at the pace of the phone reading it, and a
/// 10 MiB file at 100 KB/s takes 100 s; a read cut then is taken up from where it stopped (object_store asks for the
/// rest, within the retries), and a phone resumes a cut download with `Range` anyway.
fn s3_client_options() -> ClientOptions {
    ClientOptions::new().with_connect_timeout(Duration::from_secs(5)).with_timeout(Duration::from_secs(120))
}

impl BlobStore {
    /// The store whose files are under `dir` (`<data dir>/blobs` by default): written whole under their hash,
    /// so several instances may share the directory.
    pub fn new(dir: PathBuf, db: Db) -> BlobStore {
        BlobStore { backend: Backend::Dir(dir), db }
    }

    /// The store whose files are where `at` says (see `locate`).
    pub fn open(at: BlobsAt, db: Db) -> BlobStore {
        BlobStore { backend: at.0, db }
    }

    /// The bucket `config` names, once it has answered (a listing of the prefix): a server that cannot reach it
    /// refuses to start, naming the endpoint and the bucket.
    async fn bucket(config: &S3Config) -> anyhow::Result<Backend> {
        let described = config.describe();
        let refused = |why: String| {
            anyhow::anyhow!(
                "cannot use the S3 bucket {described} for attachments and photos: {why}; check --blobs-s3-endpoint, \
                 --blobs-s3-bucket, --blobs-s3-region and the credentials (DOORSTEP_S3_ACCESS_KEY_ID, \
                 DOORSTEP_S3_SECRET_ACCESS_KEY)"
            )
        };
        let prefix = config.prefix.trim_matches('/');
        let prefix = match prefix {
            "" => None,
            prefix => Some(
                ObjectPath::parse(prefix)
                    .map_err(|e| refused(format!("the prefix {prefix:?} is not a valid object name ({e})")))?,
            ),
        };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key)
            .with_retry(s3_retries())
            .with_client_options(s3_client_options());
        if let Some(endpoint) = &config.endpoint {
            if !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
                return Err(refused(format!("the endpoint {endpoint:?} must start with http:// or https://")));
            }
            // Plain HTTP only when the endpoint says so (a server on the same host or a private network).
            let endpoint = endpoint.trim_end_matches('/');
            builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
        }
        let bucket: Arc<dyn ObjectStore> = Arc::new(builder.build().map_err(|e| refused(e.to_string()))?);
        let listed = tokio::time::timeout(Duration::from_secs(30), bucket.list_with_delimiter(prefix.as_ref())).await;
        match listed {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(refused(why_unusable(config, &e.to_string()))),
            Err(_) => return Err(refused("no answer within 30 seconds".into())),
        }
        Ok(Backend::S3 { bucket, prefix, described })
    }

    /// Whether the files are in an S3-compatible bucket (and not on this server's file system).
    pub fn is_s3(&self) -> bool {
        matches!(self.backend, Backend::S3 { .. })
    }

    /// The object name of the file `sha256` in a bucket with `prefix` (the directory's layout); `None` for a
    /// malformed hash.
    fn object_path(prefix: Option<&ObjectPath>, sha256: &str) -> Option<ObjectPath> {
        is_sha256_hex(sha256).then(|| {
            let shard = match prefix {
                Some(prefix) => prefix.clone().join(&sha256[..2]),
                None => ObjectPath::from(&sha256[..2]),
            };
            shard.join(sha256)
        })
    }

    /// Stores `bytes` (sent by the user `by`) if they are of an accepted type and within the bound. The same bytes
    /// twice are one file and one row; the answer is the same.
    pub async fn put(&self, bytes: Vec<u8>, by: &str) -> Result<Blob, PutError> {
        if bytes.len() > MAX_ATTACHMENT_BYTES {
            return Err(PutError::TooLarge(too_large_message(bytes.len() as u64)));
        }
        let content_type = sniff(&bytes).map_err(PutError::NotAccepted)?;
        self.store(bytes, content_type, by).await
    }

    /// Stores `bytes` of `content_type` that the caller has checked already (a photo decoded and re-encoded, its
    /// thumbnail): not sniffed, but within the same bound. The same bytes twice are one file and one row.
    pub async fn put_checked(&self, bytes: Vec<u8>, content_type: &str, by: &str) -> Result<Blob, PutError> {
        if bytes.len() > MAX_ATTACHMENT_BYTES {
            return Err(PutError::TooLarge(too_large_message(bytes.len() as u64)));
        }
        self.store(bytes, content_type, by).await
    }

    /// Writes the file whole (unless it is there whole already), then its row: a row always names a whole file.
    async fn store(&self, bytes: Vec<u8>, content_type: &str, by: &str) -> Result<Blob, PutError> {
        let blob = self.write_unindexed(bytes, content_type).await?;
        stored::insert(&self.db, &blob.sha256, blob.size, content_type, by).await?;
        Ok(blob)
    }

    /// Writes the file whole (unless it is there whole already) without its row, for a caller that indexes it in a
    /// transaction of its own with `store::blobs::index` (a photo's file, thumbnail and row are one write).
    pub async fn write_unindexed(&self, bytes: Vec<u8>, content_type: &str) -> Result<Blob, PutError> {
        let size = bytes.len() as u64;
        let sha256 = match &self.backend {
            Backend::Dir(dir) => {
                let dir = dir.clone();
                // Hashing 10 MiB and writing it take milliseconds: off the async workers.
                tokio::task::spawn_blocking(move || {
                    let sha256 = sha256_hex(&bytes);
                    let path = blob_path(&dir, &sha256).expect("a computed hash is well formed");
                    // Written unless already there whole (then it is these bytes: its name is their hash, computed
                    // when it was written); a file of another size is damaged and replaced.
                    match std::fs::metadata(&path) {
                        Ok(meta) if meta.len() == size => Ok(sha256),
                        _ => write_file_durably(&path, &bytes).map(|()| sha256),
                    }
                })
                .await
                .map_err(|e| PutError::Store(StoreError::internal(format!("writing a blob: {e}"))))?
                .map_err(PutError::Disk)?
            }
            Backend::S3 { bucket, prefix, described } => {
                let (sha256, bytes) = tokio::task::spawn_blocking(move || (sha256_hex(&bytes), bytes))
                    .await
                    .map_err(|e| PutError::Store(StoreError::internal(format!("hashing a blob: {e}"))))?;
                let path = Self::object_path(prefix.as_ref(), &sha256).expect("a computed hash is well formed");
                let unreachable =
                    |e: object_store::Error| PutError::Disk(std::io::Error::other(format!("{described}: {e}")));
                // As with a directory: written unless there whole already. A put is atomic: readers see the
                // whole object or none.
                let held = match bucket.head(&path).await {
                    Ok(meta) => meta.size == size,
                    Err(object_store::Error::NotFound { .. }) => false,
                    Err(e) => return Err(unreachable(e)),
                };
                if !held {
                    let mut attributes = Attributes::new();
                    attributes.insert(Attribute::ContentType, content_type.to_string().into());
                    let options = PutOptions { attributes, ..Default::default() };
                    bucket.put_opts(&path, PutPayload::from(bytes), options).await.map_err(unreachable)?;
                }
                sha256
            }
        };
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

    /// Deletes the file `sha256` and its row (the row first: a row always names a whole file). Deleting what is
    /// not stored does nothing.
    pub async fn delete(&self, sha256: &str) -> StoreResult<()> {
        if !is_sha256_hex(sha256) {
            return Ok(());
        }
        stored::delete(&self.db, sha256).await?;
        match &self.backend {
            Backend::Dir(dir) => {
                let path = blob_path(dir, sha256).expect("checked above");
                match tokio::fs::remove_file(&path).await {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(StoreError::internal(format!("deleting {}: {e}", path.display()))),
                }
            }
            Backend::S3 { bucket, prefix, described } => {
                let path = Self::object_path(prefix.as_ref(), sha256).expect("checked above");
                match bucket.delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(bucket_error(described, e)),
                }
            }
        }
    }

    /// Whether the file of `blob` (a row) is there whole, i.e. of the size its row says; logged when it is not
    /// (the file was damaged or lost; putting it again repairs it).
    pub async fn holds(&self, blob: &Blob) -> StoreResult<bool> {
        let size = match &self.backend {
            Backend::Dir(dir) => {
                let path = blob_path(dir, &blob.sha256).expect("a row's hash is well formed");
                match tokio::fs::metadata(&path).await {
                    Ok(meta) => Some(meta.len()),
                    Err(e) => {
                        tracing::error!(path = %path.display(), error = %e, "a stored blob's file is missing");
                        None
                    }
                }
            }
            Backend::S3 { bucket, prefix, described } => {
                let path = Self::object_path(prefix.as_ref(), &blob.sha256).expect("a row's hash is well formed");
                match bucket.head(&path).await {
                    Ok(meta) => Some(meta.size),
                    Err(object_store::Error::NotFound { .. }) => {
                        tracing::error!(bucket = %described, object = %path, "a stored blob's object is missing");
                        None
                    }
                    Err(e) => return Err(bucket_error(described, e)),
                }
            }
        };
        if size.is_some_and(|size| size != blob.size) {
            tracing::error!(sha256 = %blob.sha256, size, expected = blob.size, "a stored blob's file is damaged");
        }
        Ok(size == Some(blob.size))
    }

    /// The bytes `range` (all of them if `None`; within the file's size) of the stored file `blob` (a row), as
    /// they are read; `None` if its file is missing or of another size than its row says (logged: see `holds`).
    pub async fn read(&self, blob: &Blob, range: Option<Range<u64>>) -> StoreResult<Option<ByteStream>> {
        let range = range.unwrap_or(0..blob.size);
        if range.is_empty() {
            // Nothing to read (an empty file): a bucket refuses an empty range.
            let nothing: ByteStream = Box::pin(futures_util::stream::empty());
            return Ok(self.holds(blob).await?.then_some(nothing));
        }
        match &self.backend {
            Backend::Dir(dir) => {
                use tokio::io::AsyncSeekExt;
                let path = blob_path(dir, &blob.sha256).expect("a row's hash is well formed");
                let mut file = match tokio::fs::File::open(&path).await {
                    Ok(file) => file,
                    Err(e) => {
                        tracing::error!(path = %path.display(), error = %e, "a stored blob's file cannot be opened");
                        return Ok(None);
                    }
                };
                let size =
                    file.metadata().await.map_err(|e| StoreError::internal(format!("blob metadata: {e}")))?.len();
                if size != blob.size {
                    tracing::error!(path = %path.display(), size, expected = blob.size, "a stored blob's file is damaged");
                    return Ok(None);
                }
                if range.start > 0 {
                    file.seek(std::io::SeekFrom::Start(range.start))
                        .await
                        .map_err(|e| StoreError::internal(format!("seeking in a stored file: {e}")))?;
                }
                Ok(Some(file_stream(file, range.end - range.start)))
            }
            Backend::S3 { bucket, prefix, described } => {
                let path = Self::object_path(prefix.as_ref(), &blob.sha256).expect("a row's hash is well formed");
                let options = GetOptions { range: Some(GetRange::Bounded(range)), ..Default::default() };
                match bucket.get_opts(&path, options).await {
                    Ok(got) if got.meta.size == blob.size => {
                        Ok(Some(Box::pin(got.into_stream().map(|piece| piece.map_err(std::io::Error::other)))))
                    }
                    Ok(got) => {
                        tracing::error!(bucket = %described, object = %path, size = got.meta.size, expected = blob.size,
                            "a stored blob's object is damaged");
                        Ok(None)
                    }
                    // A range past the end of a shorter (damaged) object is refused by the bucket: whether the
                    // object is whole tells the two apart.
                    Err(e) => match self.holds(blob).await? {
                        false => Ok(None),
                        true => Err(bucket_error(described, e)),
                    },
                }
            }
        }
    }

    /// The whole stored file `sha256` in memory with its row (a thumbnail made from a photo, a small file);
    /// `None` if it is not stored or its file is missing or damaged.
    pub async fn read_all(&self, sha256: &str) -> StoreResult<Option<(Blob, Bytes)>> {
        let Some(blob) = self.row(sha256).await? else { return Ok(None) };
        let Some(mut pieces) = self.read(&blob, None).await? else { return Ok(None) };
        let mut bytes = Vec::with_capacity(blob.size as usize);
        while let Some(piece) = pieces.next().await {
            let piece = piece.map_err(|e| StoreError::internal(format!("reading the stored file {sha256}: {e}")))?;
            bytes.extend_from_slice(&piece);
        }
        Ok(Some((blob, Bytes::from(bytes))))
    }

    /// Whether a device of `team` may read `sha256`: it is attached to a bulletin not withdrawn whose audience is
    /// everyone or includes the team.
    pub async fn device_may_read(&self, sha256: &str, team: Option<&str>) -> StoreResult<bool> {
        stored::attached_for(&self.db, sha256, team).await
    }
}

/// Where a store's files are, checked: what `BlobStore::open` takes.
pub struct BlobsAt(Backend);

/// Where `config` asks the store's files to be: in its S3-compatible bucket (once it has answered), or in its
/// directory (`<data dir>/blobs` unless `blobs_dir` names another); not both. Called before anything is written,
/// so that a server refused for its storage leaves nothing behind.
pub async fn locate(config: &crate::ServerConfig) -> anyhow::Result<BlobsAt> {
    match (&config.blobs_s3, &config.blobs_dir) {
        (Some(s3), Some(dir)) => anyhow::bail!(
            "attachments are kept either in a directory (--blobs-dir {}) or in an S3 bucket (--blobs-s3-bucket {}), \
             not both: leave one out",
            dir.display(),
            s3.bucket
        ),
        (Some(s3), None) => Ok(BlobsAt(BlobStore::bucket(s3).await?)),
        (None, dir) => Ok(BlobsAt(Backend::Dir(dir.clone().unwrap_or_else(|| config.data_dir.join(BLOBS_DIR))))),
    }
}

/// Leaves in `data_dir` the marker naming the bucket the files of `store` are in (`S3_MARKER`), or removes it
/// when they are in a directory: what `doorstep admin backup` reads to say it does not copy them. The serving
/// server's to call (not an admin command's, which opens the store with its defaults).
pub fn mark_data_dir(data_dir: &Path, store: &BlobStore) -> std::io::Result<()> {
    let marker = data_dir.join(S3_MARKER);
    match &store.backend {
        Backend::S3 { described, .. } => std::fs::write(marker, format!("{described}\n")),
        Backend::Dir(_) => match std::fs::remove_file(marker) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
    }
}

/// Why the bucket of `config` could not be listed, in words first (the likely causes), then as the storage said.
fn why_unusable(config: &S3Config, error: &str) -> String {
    let said = if error.contains("NoSuchBucket") {
        format!("the storage has no bucket named {:?} (create it first)", config.bucket)
    } else if ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403 Forbidden"]
        .iter()
        .any(|refusal| error.contains(refusal))
    {
        "the storage refused the credentials (or they may not list the bucket)".to_string()
    } else if error.contains("error sending request") {
        "nothing answers at the endpoint".to_string()
    } else {
        return error.to_string();
    };
    format!("{said} [{error}]")
}

/// A failure of the bucket (unreachable, refusing), naming it.
fn bucket_error(described: &str, e: object_store::Error) -> StoreError {
    StoreError::internal(format!("the blob store's bucket {described}: {e}"))
}

/// `length` bytes of `file` from where it stands, read 64 KiB at a time as the reader takes them; an error if the
/// file ends early.
pub fn file_stream(file: tokio::fs::File, length: u64) -> ByteStream {
    use tokio::io::AsyncReadExt;
    let pieces = futures_util::stream::unfold((file, length), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let mut buffer = vec![0u8; left.min(64 * 1024) as usize];
        match file.read(&mut buffer).await {
            Ok(0) => {
                let ended = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the stored file ended early");
                Some((Err(ended), (file, 0)))
            }
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok(Bytes::from(buffer)), (file, left - n as u64)))
            }
            Err(e) => Some((Err(e), (file, 0))),
        }
    });
    Box::pin(pieces)
}

/// The store's folder inside a data directory (a backup copies it).
pub const BLOBS_DIR: &str = "blobs";

/// A file in the data directory naming the bucket the store's files are in (`S3Config::describe`), there while the
/// server keeps them in a bucket: a backup of the data directory says that it does not copy them.
pub const S3_MARKER: &str = "blobs-in-s3";

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

    async fn collected(pieces: ByteStream) -> Vec<u8> {
        let pieces: Vec<_> = pieces.collect().await;
        pieces.into_iter().flat_map(|piece| piece.unwrap().to_vec()).collect()
    }

    /// Content a caller has checked is stored as the type it says, without sniffing, within the same bound; it is
    /// read back whole or by ranges as a stream, and a file of another size than its row is not read.
    #[tokio::test]
    async fn checked_content_is_stored_as_said_and_read_by_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&crate::store::db::sqlite_url(dir.path())).await.unwrap();
        let store = BlobStore::new(dir.path().join(BLOBS_DIR), db);
        let bytes: Vec<u8> = (0..200_000u32).map(|n| (n % 251) as u8).collect();
        assert!(sniff(&bytes).is_err(), "not a type `put` takes");
        let blob = store.put_checked(bytes.clone(), "image/jpeg", "photos").await.unwrap();
        assert_eq!((blob.size, blob.content_type.as_str()), (200_000, "image/jpeg"));
        assert_eq!(store.row(&blob.sha256).await.unwrap(), Some(blob.clone()));
        assert!(store.holds(&blob).await.unwrap());
        assert_eq!(collected(store.read(&blob, None).await.unwrap().unwrap()).await, bytes);
        let part = store.read(&blob, Some(70_000..140_001)).await.unwrap().unwrap();
        assert_eq!(collected(part).await, &bytes[70_000..140_001]);
        assert_eq!(store.read_all(&blob.sha256).await.unwrap().unwrap().1, bytes);
        let too_large = store.put_checked(vec![0; MAX_ATTACHMENT_BYTES + 1], "image/jpeg", "photos").await;
        assert!(matches!(too_large, Err(PutError::TooLarge(_))));
        // Truncated on disk: neither held nor read, until put again.
        std::fs::write(blob_path(&dir.path().join(BLOBS_DIR), &blob.sha256).unwrap(), &bytes[..10]).unwrap();
        assert!(!store.holds(&blob).await.unwrap());
        assert!(store.read(&blob, None).await.unwrap().is_none());
        assert!(store.read_all(&blob.sha256).await.unwrap().is_none());
        store.put_checked(bytes.clone(), "image/jpeg", "photos").await.unwrap();
        assert_eq!(store.read_all(&blob.sha256).await.unwrap().unwrap().1, bytes);
        let empty = store.put_checked(Vec::new(), "image/jpeg", "photos").await.unwrap();
        assert_eq!(collected(store.read(&empty, None).await.unwrap().unwrap()).await, b"");
        assert!(!store.is_s3());
    }

    /// A bucket's configuration is described and debugged without its secret; a failure to list it is put in
    /// words before the storage's own.
    #[test]
    fn bucket_settings_never_show_the_secret() {
        let config = S3Config {
            bucket: "files".into(),
            endpoint: Some("http://127.0.0.1:9000".into()),
            region: "us-east-1".into(),
            prefix: "/doorstep/".into(),
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI-secret".into(),
        };
        assert_eq!(config.describe(), "s3://files/doorstep at http://127.0.0.1:9000");
        assert!(!format!("{config:?}").contains("wJalrXUtnFEMI-secret"), "{config:?}");
        let on_aws = S3Config { endpoint: None, prefix: String::new(), ..config.clone() };
        assert_eq!(on_aws.describe(), "s3://files at Amazon S3");
        let said = why_unusable(&config, "404 Not Found: <Code>NoSuchBucket</Code>");
        assert!(said.starts_with("the storage has no bucket named \"files\" (create it first) ["), "{said}");
        assert!(
            why_unusable(&config, "403 Forbidden: <Code>InvalidAccessKeyId</Code>").contains("refused the credentials")
        );
        assert_eq!(why_unusable(&config, "something else"), "something else");
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
