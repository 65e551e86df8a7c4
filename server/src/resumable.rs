//! Resumable uploads received in parts, the way the server and a team's hub both take photos: what arrived of an
//! upload cut short stays in a partial file, the next request goes on from its end (`Upload-Offset`), one request
//! per upload at a time, and never more than the size the upload declared.

use axum::body::Bytes;
use futures_util::{Stream, StreamExt};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;
use tokio::io::AsyncWriteExt;

/// Uploads being received now, by name: one request per upload at a time.
#[derive(Default)]
pub struct Receiving(Mutex<HashSet<String>>);

/// The right to receive one upload, given back when dropped.
pub struct Claim<'a> {
    receiving: &'a Receiving,
    name: String,
}

impl Receiving {
    pub fn new() -> Receiving {
        Receiving(Mutex::new(HashSet::new()))
    }

    /// The claim on `name`, unless another request holds it.
    pub fn claim(&self, name: &str) -> Option<Claim<'_>> {
        let fresh = self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string());
        fresh.then(|| Claim { receiving: self, name: name.to_string() })
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.receiving.0.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.name);
    }
}

/// Why a part was not taken.
#[derive(Debug, thiserror::Error)]
pub enum PartRefused {
    /// The part does not start where what arrived ends.
    #[error("send from byte {held}, not {start}")]
    WrongOffset { held: u64, start: u64 },
    /// The body went past the declared size: the partial file was discarded.
    #[error("the upload sends more than the {size} bytes declared: nothing was taken")]
    TooLong { size: u64 },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Where an upload stands after a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Bytes held of it.
    pub held: u64,
    /// All `size` bytes arrived and the body ended normally.
    pub complete: bool,
}

/// Bytes held of the upload kept in `part` (0 if none arrived).
pub async fn held(part: &Path) -> u64 {
    tokio::fs::metadata(part).await.map_or(0, |m| m.len())
}

/// Appends `body`, which starts at byte `start` of an upload of `size` bytes, to the partial file `part`. A body
/// broken off keeps what arrived (for the next request to go on from); one that goes past `size` discards it all.
/// The caller holds the upload's `Claim`.
pub async fn receive_part<E: std::fmt::Display>(
    part: &Path,
    start: u64,
    size: u64,
    body: impl Stream<Item = Result<Bytes, E>>,
) -> Result<Received, PartRefused> {
    let held = held(part).await;
    if start != held {
        return Err(PartRefused::WrongOffset { held, start });
    }
    if let Some(dir) = part.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let mut file = tokio::fs::OpenOptions::new().create(true).append(true).open(part).await?;
    let mut written = held;
    let mut body = std::pin::pin!(body);
    let mut cut = false;
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                tracing::info!(error = %e, received = written, "an upload was cut short");
                cut = true;
                break;
            }
        };
        if written + chunk.len() as u64 > size {
            drop(file);
            let _ = tokio::fs::remove_file(part).await;
            return Err(PartRefused::TooLong { size });
        }
        file.write_all(&chunk).await?;
        written += chunk.len() as u64;
    }
    // Flushed to the system, not synced: a crash loses at most the tail, and the client then goes on from what
    // the file holds.
    file.flush().await?;
    Ok(Received { held: written, complete: !cut && written == size })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: Vec<Result<&'static [u8], &'static str>>) -> impl Stream<Item = Result<Bytes, &'static str>> {
        futures_util::stream::iter(parts.into_iter().map(|p| p.map(Bytes::from_static)))
    }

    #[tokio::test]
    async fn parts_append_from_where_the_last_ended() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("uploads").join("x.part");
        let first = receive_part(&part, 0, 6, body(vec![Ok(b"abc"), Err("connection reset")])).await.unwrap();
        assert_eq!(first, Received { held: 3, complete: false });
        let wrong = receive_part(&part, 0, 6, body(vec![Ok(b"abcdef")])).await.unwrap_err();
        assert!(matches!(wrong, PartRefused::WrongOffset { held: 3, start: 0 }), "{wrong}");
        let rest = receive_part(&part, 3, 6, body(vec![Ok(b"def")])).await.unwrap();
        assert_eq!(rest, Received { held: 6, complete: true });
        assert_eq!(std::fs::read(&part).unwrap(), b"abcdef");
    }

    #[tokio::test]
    async fn a_body_past_the_declared_size_discards_the_upload() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("x.part");
        receive_part(&part, 0, 4, body(vec![Ok(b"ab")])).await.unwrap();
        let refused = receive_part(&part, 2, 4, body(vec![Ok(b"cde")])).await.unwrap_err();
        assert!(matches!(refused, PartRefused::TooLong { size: 4 }), "{refused}");
        assert!(!part.exists(), "nothing kept");
    }

    #[test]
    fn one_claim_per_upload_at_a_time() {
        let receiving = Receiving::new();
        let claim = receiving.claim("a").expect("the first claim");
        assert!(receiving.claim("a").is_none(), "a second request for the same upload");
        assert!(receiving.claim("b").is_some(), "another upload");
        drop(claim);
        assert!(receiving.claim("a").is_some(), "given back");
    }
}
