//! The sync engine, both halves, with no IO: the device builds pushes and applies replies; the server
//! checks a push against its copy and computes the reply. Transport and storage belong to the callers.

use crate::doc::{DocError, GridDoc};
use crate::model::Visit;
use crate::protocol::{hashes_from_wire, hashes_to_wire, GridPush, GridReply, ReplyKind, WireError};
use crate::validate::{check_change_ops, check_new_visit, Author, Violation};
use automerge::{Change, ChangeHash};
use serde_bytes::ByteBuf;
use std::collections::HashSet;

// ---------- device side ----------

/// The push for one grid: every change after the heads the server last confirmed (`None` = send all).
pub fn build_push(grid: &str, doc: &GridDoc, confirmed: Option<&[ChangeHash]>) -> GridPush {
    let changes = doc.changes_since(confirmed.unwrap_or(&[]));
    GridPush {
        grid: grid.to_string(),
        have: hashes_to_wire(&doc.heads()),
        changes: changes.iter().map(|c| ByteBuf::from(c.raw_bytes().to_vec())).collect(),
    }
}

/// What applying a reply did to the device's copy.
#[derive(Debug)]
pub struct Applied {
    /// Changes new to the device, to append to its log.
    pub new_changes: Vec<Change>,
    /// Heads the server is now known to hold; the next push starts after them.
    pub confirmed: Vec<ChangeHash>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error(transparent)]
    Doc(#[from] DocError),
    #[error("the server sent a change that could not be read: {0}")]
    BadChange(String),
}

/// Applies a `Synced` or `Unassigned` reply to the device's copy.
pub fn apply_reply(doc: &mut GridDoc, reply: &GridReply) -> Result<Applied, ApplyError> {
    let changes = decode_changes(&reply.changes).map_err(|(_, e)| ApplyError::BadChange(e))?;
    let new_changes: Vec<Change> = changes.into_iter().filter(|c| !doc.contains_all(&[c.hash()])).collect();
    doc.apply_changes(new_changes.clone())?;
    let server_heads = hashes_from_wire(&reply.heads)?;
    // Only claim what we can verify: if some server change did not arrive, the next push repeats more.
    let confirmed = if doc.contains_all(&server_heads) { server_heads } else { Vec::new() };
    Ok(Applied { new_changes, confirmed })
}

// ---------- server side ----------

/// Why the server refuses a push. Nothing of the request is stored.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("grid {grid}: change #{index} is not a valid automerge change: {reason}")]
    Malformed { grid: String, index: usize, reason: String },
    #[error("grid {grid}: {violation}")]
    Forbidden { grid: String, violation: Violation },
    #[error("grid {grid}: {source}")]
    Wire {
        grid: String,
        #[source]
        source: WireError,
    },
}

/// The outcome of checking a push against the server's copy of a grid.
#[derive(Debug)]
pub struct Accepted {
    /// Changes new to the server, now applied to its copy, in an order that respects their dependencies, to
    /// store. Empty when the push brought nothing new (or the reply asks for a resend).
    pub new_changes: Vec<Change>,
    /// Visits those changes added, to project.
    pub new_visits: Vec<Visit>,
    pub reply: GridReply,
}

/// Checks a push, applies what it brings to `doc` (the server's copy) and computes the reply.
///
/// Applying in place spares a copy of the whole document per grid and sync. The price: on `Err`, `doc` may
/// hold part of the refused push and must be thrown away (reloaded from storage). On `Ok`, `doc` holds exactly
/// the stored history plus `new_changes`, which the caller must store before anyone else sees `doc`.
pub fn accept_push(doc: &mut GridDoc, push: &GridPush, author: &Author) -> Result<Accepted, PushError> {
    let current = &*doc;
    let grid = push.grid.clone();
    let have = hashes_from_wire(&push.have).map_err(|source| PushError::Wire { grid: grid.clone(), source })?;
    let changes = decode_changes(&push.changes).map_err(|(index, reason)| PushError::Malformed {
        grid: grid.clone(),
        index,
        reason,
    })?;
    let mut seen = HashSet::new();
    let unknown: Vec<Change> =
        changes.into_iter().filter(|c| !current.contains_all(&[c.hash()]) && seen.insert(c.hash())).collect();
    let mut visit_keys = Vec::new();
    for change in &unknown {
        let keys = check_change_ops(current, change, author)
            .map_err(|violation| PushError::Forbidden { grid: grid.clone(), violation })?;
        visit_keys.extend(keys);
    }
    let in_sequence = check_sequence(current.automerge(), &unknown, author)
        .map_err(|violation| PushError::Forbidden { grid: grid.clone(), violation })?;
    // Some of the device's history is missing here: store nothing and ask for the whole of it.
    let resend_all = |grid: String| Accepted {
        new_changes: Vec::new(),
        new_visits: Vec::new(),
        reply: GridReply {
            grid,
            kind: ReplyKind::ResendAll,
            heads: hashes_to_wire(&current.heads()),
            changes: Vec::new(),
            snapshot: None,
            stored: 0,
            contacts: None,
        },
    };
    // Everything the new changes depend on, and everything the device says it has, must be here or arrive
    // now; otherwise some of the device's history is missing here. Checked before anything is applied.
    let arriving: HashSet<ChangeHash> = unknown.iter().map(|c| c.hash()).collect();
    let known = |h: &ChangeHash| arriving.contains(h) || current.contains_all(&[*h]);
    let complete = unknown.iter().all(|c| c.deps().iter().all(known)) && have.iter().all(known);
    if !in_sequence || !complete {
        return Ok(resend_all(grid));
    }
    let before = current.heads();
    if !unknown.is_empty() {
        doc.apply_changes(unknown.clone()).map_err(|e| PushError::Malformed {
            grid: grid.clone(),
            index: 0,
            reason: e.to_string(),
        })?;
    }
    if !unknown.iter().all(|c| doc.contains_all(&[c.hash()])) {
        return Err(PushError::Malformed {
            grid,
            index: 0,
            reason: "the changes could not all be applied".to_string(),
        });
    }
    let new_visits = visit_keys
        .iter()
        .map(|k| check_new_visit(doc, k, author))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|violation| PushError::Forbidden { grid: grid.clone(), violation })?;
    let reply = GridReply {
        grid,
        kind: ReplyKind::Synced,
        heads: hashes_to_wire(&doc.heads()),
        changes: doc.changes_since(&have).iter().map(|c| ByteBuf::from(c.raw_bytes().to_vec())).collect(),
        snapshot: None,
        stored: unknown.len() as u32,
        contacts: None,
    };
    // Order for storage: as the document's own history orders them.
    let new_changes = if unknown.is_empty() { Vec::new() } else { doc.changes_since(&before) };
    Ok(Accepted { new_changes, new_visits, reply })
}

/// The device's new changes must continue its own numbering without gaps or repeats, and carry no author
/// record: automerge 0.12 aborts the process on a change whose sequence number does not follow its actor's last.
/// `Ok(false)`: they start beyond what the server holds, so earlier ones are missing here (ask for a resend).
pub(crate) fn check_sequence(
    current: &automerge::Automerge,
    unknown: &[Change],
    author: &Author,
) -> Result<bool, Violation> {
    if unknown.is_empty() {
        return Ok(true);
    }
    if let Some(c) = unknown.iter().find(|c| c.author().is_some()) {
        return Err(Violation(format!("change {} carries an author record, which devices do not write", c.hash())));
    }
    let held = current.get_changes_meta(&[]).iter().filter(|m| m.actor.as_ref() == &author.actor).count();
    let mut seqs: Vec<u64> = unknown.iter().map(|c| c.seq()).collect();
    seqs.sort_unstable();
    let consecutive = seqs.windows(2).all(|w| w[1] == w[0] + 1);
    let first = seqs[0];
    if !consecutive || first <= held as u64 {
        return Err(Violation(format!(
            "this device's changes are numbered {seqs:?}, but the server already holds its first {held}; \
             a device's changes are numbered once, without gaps"
        )));
    }
    Ok(first == held as u64 + 1)
}

/// The reply for a grid the device does not hold yet.
pub fn new_grid_reply(grid: &str, doc: &GridDoc) -> GridReply {
    GridReply {
        grid: grid.to_string(),
        kind: ReplyKind::New,
        heads: hashes_to_wire(&doc.heads()),
        changes: Vec::new(),
        snapshot: Some(ByteBuf::from(doc.save())),
        stored: 0,
        contacts: None,
    }
}

/// The first bytes of every automerge chunk.
const CHUNK_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

/// Parses changes. automerge 0.12 panics on some malformed input instead of returning an error (fuzzing found
/// it); such a panic is caught and reported as a malformed change.
pub(crate) fn decode_changes(raw: &[ByteBuf]) -> Result<Vec<Change>, (usize, String)> {
    raw.iter()
        .enumerate()
        .map(|(i, b)| {
            // Only a plain change chunk (magic, checksum, type 1): automerge also parses documents and bundles
            // here, and a few hundred bytes of bundle can make it allocate gigabytes.
            if b.len() < 9 || b[..4] != CHUNK_MAGIC || b[8] != 1 {
                return Err((i, "not a single uncompressed automerge change".to_string()));
            }
            std::panic::catch_unwind(|| Change::from_bytes(b.to_vec()))
                .map_err(|_| (i, "the change could not be parsed".to_string()))?
                .map_err(|e| (i, e.to_string()))
        })
        .collect()
}
