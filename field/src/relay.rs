//! What a device keeps from what it receives so that changes can travel on through a hub: the signatures of
//! others' changes and the server's latest attestation, and when they are no longer needed (signing what it
//! sends is `client_core::docs`).

use anyhow::Result;
use automerge::{Change, ChangeHash};
use client_core::protocol::{hashes_from_wire, Attestation, ChangeSignature, GridReply};
use client_core::store::{DocStore, GridStore, StoredDoc};
use client_core::GridDoc;

/// Keeps what a reply carries for passing changes on, before its changes are stored: the signatures (so a
/// stored change never lacks the one it needs) and the server's attestation if newer than the one held.
pub fn keep_from_reply(store: &GridStore, reply: &GridReply) -> Result<()> {
    keep(store, &reply.grid, &reply.signatures, reply.attestation.as_ref())
}

/// `keep_from_reply` for any document kept in `store` under `name` (a grid, or a task).
pub fn keep<D: StoredDoc>(
    store: &DocStore<D>,
    name: &str,
    signatures: &[ChangeSignature],
    attestation: Option<&Attestation>,
) -> Result<()> {
    store.add_signatures(name, signatures)?;
    if let Some(attestation) = attestation {
        store.offer_attestation(name, attestation)?;
    }
    Ok(())
}

/// After the server confirmed `confirmed`, the signatures of changes it holds are no longer needed.
pub fn forget_delivered_signatures(
    store: &GridStore,
    grid: &str,
    doc: &GridDoc,
    confirmed: &[ChangeHash],
) -> Result<()> {
    if confirmed.is_empty() {
        return Ok(());
    }
    forget_signatures_but(store, grid, &doc.changes_since(confirmed))
}

/// Drops the signatures kept under `name` except those of `undelivered`.
pub fn forget_signatures_but<D: StoredDoc>(store: &DocStore<D>, name: &str, undelivered: &[Change]) -> Result<()> {
    let undelivered: std::collections::HashSet<ChangeHash> = undelivered.iter().map(|c| c.hash()).collect();
    store.retain_signatures(name, |h| undelivered.contains(h))?;
    Ok(())
}

/// The heads of the server's latest attestation for a grid, if any (the part of the history it holds).
pub fn attested_heads<D: StoredDoc>(store: &DocStore<D>, grid: &str) -> Result<Vec<ChangeHash>> {
    Ok(store.attestation(grid)?.and_then(|a| hashes_from_wire(&a.heads).ok()).unwrap_or_default())
}
