//! Storage of synced documents of every further kind (`sync::documents`): the documents, whom each is meant
//! for, and which device holds which.

use crate::store::db::{now_ms, Backend};
use crate::store::error::{StoreError, StoreResult};
use sqlx::{Any, Transaction};
use std::collections::HashMap;

type Tx = Transaction<'static, Any>;

/// The audience that means every device.
pub const EVERYONE: &str = "*";

/// A stored document: its bytes, version, and whether it is withdrawn.
pub struct StoredDocument {
    pub bytes: Vec<u8>,
    pub version: i64,
    pub withdrawn: bool,
}

/// How a document's heads are kept beside it: hex, sorted, comma-separated.
pub fn heads_text(heads: &[automerge::ChangeHash]) -> String {
    let mut hex: Vec<String> = heads.iter().map(|h| h.to_string()).collect();
    hex.sort();
    hex.join(",")
}

/// Stores a new document meant for `teams` (`EVERYONE` for every device); refuses an id already taken.
pub async fn create(
    tx: &mut Tx,
    kind: &str,
    id: &str,
    bytes: &[u8],
    heads: &[automerge::ChangeHash],
    teams: &[&str],
) -> StoreResult<()> {
    let inserted = sqlx::query(
        "INSERT INTO documents (kind, doc_id, doc, version, updated_at, heads) VALUES ($1, $2, $3, 1, $4, $5) \
         ON CONFLICT (kind, doc_id) DO NOTHING",
    )
    .bind(kind)
    .bind(id)
    .bind(bytes)
    .bind(now_ms())
    .bind(heads_text(heads))
    .execute(&mut **tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::conflict(format!("{kind} {id} exists already")));
    }
    set_audience(tx, kind, id, teams).await
}

/// Makes a document meant for `teams` instead of whom it was meant for.
pub async fn set_audience(tx: &mut Tx, kind: &str, id: &str, teams: &[&str]) -> StoreResult<()> {
    sqlx::query("DELETE FROM document_audience WHERE kind = $1 AND doc_id = $2")
        .bind(kind)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    for team in teams {
        sqlx::query("INSERT INTO document_audience (kind, doc_id, team) VALUES ($1, $2, $3)")
            .bind(kind)
            .bind(id)
            .bind(team)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Marks a document withdrawn: devices holding it are told it is gone.
pub async fn withdraw(tx: &mut Tx, kind: &str, id: &str) -> StoreResult<()> {
    let updated =
        sqlx::query("UPDATE documents SET withdrawn_at = $1 WHERE kind = $2 AND doc_id = $3 AND withdrawn_at IS NULL")
            .bind(now_ms())
            .bind(kind)
            .bind(id)
            .execute(&mut **tx)
            .await?;
    match updated.rows_affected() {
        0 => Err(StoreError::NotFound(format!("no {kind} {id} to withdraw"))),
        _ => Ok(()),
    }
}

/// Serialises writers of one document for the rest of the transaction. SQLite's writes are serialised already.
pub async fn lock(tx: &mut Tx, backend: Backend, kind: &str, id: &str) -> StoreResult<()> {
    if backend == Backend::Postgres {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("doorstep-document:{kind}:{id}").as_bytes());
        let key = i64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(key).execute(&mut **tx).await?;
    }
    Ok(())
}

pub async fn load(tx: &mut Tx, kind: &str, id: &str) -> StoreResult<Option<StoredDocument>> {
    let row: Option<(Vec<u8>, i64, Option<i64>)> =
        sqlx::query_as("SELECT doc, version, withdrawn_at FROM documents WHERE kind = $1 AND doc_id = $2")
            .bind(kind)
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(row.map(|(bytes, version, withdrawn)| StoredDocument { bytes, version, withdrawn: withdrawn.is_some() }))
}

/// Stores a new version of a document; refuses if another writer stored one meanwhile.
pub async fn save(
    tx: &mut Tx,
    kind: &str,
    id: &str,
    bytes: &[u8],
    heads: &[automerge::ChangeHash],
    version: i64,
) -> StoreResult<()> {
    let updated = sqlx::query(
        "UPDATE documents SET doc = $1, version = $2, updated_at = $3, heads = $7 \
         WHERE kind = $4 AND doc_id = $5 AND version = $6",
    )
    .bind(bytes)
    .bind(version + 1)
    .bind(now_ms())
    .bind(kind)
    .bind(id)
    .bind(version)
    .bind(heads_text(heads))
    .execute(&mut **tx)
    .await?;
    match updated.rows_affected() {
        0 => Err(StoreError::conflict(format!("{kind} {id} changed concurrently while this request wrote it; retry"))),
        _ => Ok(()),
    }
}

/// The documents of `kind` meant for a device of `team` (or of no team) and not withdrawn, sorted.
pub async fn meant_for(tx: &mut Tx, kind: &str, team: Option<&str>) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT d.doc_id FROM documents d JOIN document_audience a ON a.kind = d.kind AND a.doc_id = d.doc_id \
         WHERE d.kind = $1 AND d.withdrawn_at IS NULL AND (a.team = $2 OR a.team = $3) ORDER BY d.doc_id",
    )
    .bind(kind)
    .bind(EVERYONE)
    .bind(team.unwrap_or(EVERYONE))
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// The documents of `kind` delivered to a device, each with when the device deleted it (if it did).
pub async fn held_by(tx: &mut Tx, kind: &str, device: &str) -> StoreResult<HashMap<String, Option<i64>>> {
    let rows: Vec<(String, Option<i64>)> =
        sqlx::query_as("SELECT doc_id, purged_at FROM document_holders WHERE device_id = $1 AND kind = $2")
            .bind(device)
            .bind(kind)
            .fetch_all(&mut **tx)
            .await?;
    Ok(rows.into_iter().collect())
}

/// Records that the device holds the document (again, if it had deleted it); an unchanged row is not written.
pub async fn note_held(tx: &mut Tx, kind: &str, id: &str, device: &str, now: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO document_holders (kind, doc_id, device_id, delivered_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (device_id, kind, doc_id) DO UPDATE SET purged_at = NULL \
         WHERE document_holders.purged_at IS NOT NULL",
    )
    .bind(kind)
    .bind(id)
    .bind(device)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records that the device no longer holds a document that is gone for it.
pub async fn note_deleted(tx: &mut Tx, kind: &str, id: &str, device: &str, now: i64) -> StoreResult<()> {
    sqlx::query(
        "UPDATE document_holders SET purged_at = $1 WHERE device_id = $2 AND kind = $3 AND doc_id = $4 \
         AND purged_at IS NULL",
    )
    .bind(now)
    .bind(device)
    .bind(kind)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The heads kept beside each document of `kind` meant for a device of `team` (`None`: not kept; load it).
pub async fn meant_heads(tx: &mut Tx, kind: &str, team: Option<&str>) -> StoreResult<HashMap<String, Option<String>>> {
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT DISTINCT d.doc_id, d.heads FROM documents d \
         JOIN document_audience a ON a.kind = d.kind AND a.doc_id = d.doc_id \
         WHERE d.kind = $1 AND d.withdrawn_at IS NULL AND (a.team = $2 OR a.team = $3)",
    )
    .bind(kind)
    .bind(EVERYONE)
    .bind(team.unwrap_or(EVERYONE))
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Keeps what devices wrote into a document (accepted entries, `client_core::docs::DocEntry`), once each: an
/// entry received again (through a hub, after a retried sync) is not written twice.
pub async fn record_entries(
    tx: &mut Tx,
    kind: &str,
    id: &str,
    device: &str,
    team: Option<&str>,
    entries: &[client_core::docs::DocEntry],
    now: i64,
) -> StoreResult<()> {
    for e in entries {
        sqlx::query(
            "INSERT INTO document_entries (kind, doc_id, entry, device_id, username, team, at, detail, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (kind, doc_id, entry) DO NOTHING",
        )
        .bind(kind)
        .bind(id)
        .bind(&e.key)
        .bind(if e.device.is_empty() { device } else { e.device.as_str() })
        .bind(&e.username)
        .bind(team)
        .bind(e.at)
        .bind(e.detail.to_string())
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
