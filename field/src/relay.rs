//! What lets changes travel through a hub, on the client side: the writers' signatures attached to what a
//! device or hub sends, and what it keeps from what it receives (signatures of others' changes, the server's
//! latest attested heads).

use anyhow::Result;
use automerge::{ActorId, Change, ChangeHash};
use client_core::protocol::{hashes_from_wire, Attestation, ChangeSignature, GridReply};
use client_core::sign::KeyPair;
use client_core::store::{DocStore, GridStore, StoredDoc};
use client_core::GridDoc;
use std::collections::HashMap;

/// Signatures for `changes`: this device signs its own; others' come from those it keeps. Changes with neither
/// (the server's, or others' already stored on the server) travel without one.
pub fn signatures_for(
    changes: &[Change],
    own_actor: &ActorId,
    own_key: Option<&KeyPair>,
    kept: &HashMap<ChangeHash, ChangeSignature>,
) -> Vec<ChangeSignature> {
    changes
        .iter()
        .filter_map(|c| match (c.actor_id() == own_actor, own_key) {
            (true, Some(key)) => Some(key.sign_change(&c.hash())),
            (true, None) => None,
            (false, _) => kept.get(&c.hash()).cloned(),
        })
        .collect()
}

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
