//! The sync engine, both halves, with no IO: the device builds pushes and applies replies; the server
//! checks a push against its copy and computes the reply. Transport and storage belong to the callers.

use crate::doc::{corrections_upgrade, DocError, GridDoc};
use crate::found::{Correction, FoundPlace};
use crate::limits::{check_change_size, SyncBudget};
use crate::model::Visit;
use crate::protocol::{hashes_from_wire, hashes_to_wire, ChangeSignature, GridPush, GridReply, ReplyKind, WireError};
use crate::sign::PublicKey;
use crate::validate::{
    check_change_ops, check_new_correction, check_new_place, check_new_visit, Added, Author, Violation,
};
use automerge::{ActorId, Change, ChangeHash};
use serde_bytes::ByteBuf;
use std::collections::{HashMap, HashSet};

// ---------- device side ----------

/// The push for one grid: every change after the heads the server last confirmed (`None` = send all).
pub fn build_push(grid: &str, doc: &GridDoc, confirmed: Option<&[ChangeHash]>) -> GridPush {
    GridPush {
        grid: grid.to_string(),
        have: hashes_to_wire(&doc.heads()),
        changes: doc.change_bytes_since(confirmed.unwrap_or(&[])).into_iter().map(ByteBuf::from).collect(),
        ..Default::default()
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

// ---------- receiving side (the server, or a hub) ----------

/// Why the receiver refuses a push. Nothing of the request is stored.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("grid {grid}: change #{index} is not a valid automerge change: {reason}")]
    Malformed { grid: String, index: usize, reason: String },
    #[error("grid {grid}: {violation}")]
    Forbidden { grid: String, violation: Violation },
    /// The request brings more than a sync may (`crate::limits`), checked before anything is applied.
    #[error("grid {grid}: {reason}")]
    TooLarge { grid: String, reason: crate::limits::TooLarge },
    /// A record is dated after the receiver's clock (`Accepted::check_not_ahead`).
    #[error("grid {grid}: {violation}")]
    FromTheFuture { grid: String, violation: Violation },
    #[error("grid {grid}: {source}")]
    Wire {
        grid: String,
        #[source]
        source: WireError,
    },
}

/// The outcome of checking a push against the receiver's copy of a grid.
#[derive(Debug)]
pub struct Accepted {
    /// Changes new to the receiver, now applied to its copy, in an order that respects their dependencies, to
    /// store. Empty when the push brought nothing new (or the reply asks for a resend).
    pub new_changes: Vec<Change>,
    /// Visits those changes added, to project; each names the device that wrote it.
    pub new_visits: Vec<Visit>,
    /// Places found in the field that those changes added.
    pub new_places: Vec<FoundPlace>,
    /// Corrections those changes proposed.
    pub new_corrections: Vec<Correction>,
    /// Verified writers' signatures of the new changes, for a hub to keep and pass on.
    pub signatures: Vec<ChangeSignature>,
    pub reply: GridReply,
}

/// How far after the receiver's clock a device may date a visit, found place or correction. Phones that take
/// the time from the network are within seconds, one set by hand within a few minutes; and a record X minutes
/// ahead is taken once X minus this has passed since it was recorded, so a clock a little fast only delays the
/// sync of what was recorded just before it. What it refuses is a wrong date, hour or time zone.
pub const MAX_CLOCK_AHEAD: chrono::Duration = chrono::Duration::minutes(10);

impl Accepted {
    /// Refuses the push if it adds a visit, found place or correction dated more than `MAX_CLOCK_AHEAD` after
    /// `now`, the receiver's clock; `receiver` names it in the message ("the server", "this hub").
    pub fn check_not_ahead(&self, now: chrono::DateTime<chrono::Utc>, receiver: &str) -> Result<(), PushError> {
        let dated = self
            .new_visits
            .iter()
            .map(|v| (format!("visit {} (place {})", v.id, v.place_id), v.at))
            .chain(self.new_places.iter().map(|p| (format!("found place {}", p.place.id), p.added_at)))
            .chain(self.new_corrections.iter().map(|c| (format!("correction {}", c.id), c.at)));
        let Some((what, at)) = dated.max_by_key(|(_, at)| *at).filter(|(_, at)| *at > now + MAX_CLOCK_AHEAD) else {
            return Ok(());
        };
        let ahead = at - now;
        let ahead = match (ahead.num_days(), ahead.num_hours(), ahead.num_minutes()) {
            (days, _, _) if days >= 2 => format!("{days} days"),
            (_, hours, _) if hours >= 2 => format!("{hours} hours"),
            (_, _, minutes) => format!("{minutes} minutes"),
        };
        let format = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
        Err(PushError::FromTheFuture {
            grid: self.reply.grid.clone(),
            violation: Violation(format!(
                "{what} is dated {}, {ahead} after {receiver}'s clock ({}): the phone's clock is probably wrong. Set \
                 its date, time and time zone right. Nothing of this sync was stored and nothing is lost; the sync \
                 is accepted from {} on, or at once after enrolling again with the clock right (`doorstep field \
                 login`, or the app's enrolment), which records what is dated in the future again at that time",
                format(at),
                format(now),
                format(at - MAX_CLOCK_AHEAD),
            )),
        })
    }
}

/// A device whose changes a receiver accepts when another device relays them with its signature.
#[derive(Debug, Clone)]
pub struct Signer {
    pub author: Author,
    pub key: PublicKey,
}

/// Whose changes a receiver accepts in a push, besides nothing at all.
#[derive(Debug, Clone, Copy)]
pub struct Trust<'a> {
    /// The pushing device, from its verified token.
    pub pusher: &'a Author,
    /// When set, the pusher's own changes must carry its signature too: a hub needs it to relay them onward.
    pub pusher_key: Option<&'a PublicKey>,
    /// Devices whose signed changes the pusher may relay, by actor.
    pub signers: Option<&'a HashMap<ActorId, Signer>>,
    /// The server's key, on a hub: changes in the history of heads the server attested are already stored
    /// upstream and are taken as they are.
    pub server_key: Option<&'a PublicKey>,
}

impl<'a> Trust<'a> {
    /// Only the pusher's own changes, authenticated by its token (a device syncing with the server).
    pub fn own(pusher: &'a Author) -> Self {
        Trust { pusher, pusher_key: None, signers: None, server_key: None }
    }

    /// The heads a push's attestation vouches for, when this receiver checks attestations (a hub) and the server
    /// signed it for `subject`; none otherwise.
    pub fn attested(&self, subject: &str, attestation: Option<&crate::protocol::Attestation>) -> Vec<ChangeHash> {
        match (self.server_key, attestation) {
            (Some(key), Some(a)) => key.attested_heads(subject, a).unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

/// Checks a push of a device's own changes, applies what it brings to `doc` and computes the reply.
pub fn accept_push(doc: &mut GridDoc, push: &GridPush, author: &Author) -> Result<Accepted, PushError> {
    accept_push_with(doc, push, &Trust::own(author))
}

/// Checks a push, which may relay other devices' signed changes, applies what it brings to `doc` (the
/// receiver's copy) and computes the reply. The push alone may bring at most what a whole sync request may.
pub fn accept_push_with(doc: &mut GridDoc, push: &GridPush, trust: &Trust<'_>) -> Result<Accepted, PushError> {
    accept_push_within(doc, push, trust, &mut SyncBudget::default())
}

/// Checks a push, which may relay other devices' signed changes, applies what it brings to `doc` (the
/// receiver's copy) and computes the reply. Its new changes are taken out of `budget`, shared by every grid of
/// the request, before anything is applied.
///
/// Applying in place spares a copy of the whole document per grid and sync. The price: on `Err`, `doc` may
/// hold part of the refused push and must be thrown away (reloaded from storage). On `Ok`, `doc` holds exactly
/// the stored history plus `new_changes`, which the caller must store before anyone else sees `doc`.
pub fn accept_push_within(
    doc: &mut GridDoc,
    push: &GridPush,
    trust: &Trust<'_>,
    budget: &mut SyncBudget,
) -> Result<Accepted, PushError> {
    let current = &*doc;
    let grid = push.grid.clone();
    let forbidden = |violation| PushError::Forbidden { grid: grid.clone(), violation };
    let have = hashes_from_wire(&push.have).map_err(|source| PushError::Wire { grid: grid.clone(), source })?;
    let changes = decode_changes(&push.changes).map_err(|(index, reason)| PushError::Malformed {
        grid: grid.clone(),
        index,
        reason,
    })?;
    let mut seen = HashSet::new();
    let unknown: Vec<Change> =
        changes.into_iter().filter(|c| !current.contains_all(&[c.hash()]) && seen.insert(c.hash())).collect();
    budget.spend(&unknown).map_err(|reason| PushError::TooLarge { grid: grid.clone(), reason })?;
    let mut vouched = vouched_changes(&unknown, &trust.attested(&grid, push.attestation.as_ref()));
    // The constant change that creates the `corrections` map has no writer to check.
    let upgrade = corrections_upgrade().hash();
    vouched.extend(unknown.iter().map(|c| c.hash()).filter(|h| *h == upgrade));
    let signatures = signatures_by_change(&push.signatures);
    let mut added: Vec<(Author, Added)> = Vec::new();
    let mut vouched_added: Vec<Added> = Vec::new();
    let mut kept_signatures = Vec::new();
    for change in &unknown {
        if !vouched.contains(&change.hash()) {
            check_change_size(change).map_err(forbidden)?;
            let (author, signature) = author_of(change, trust, &signatures).map_err(forbidden)?;
            added.push((author.clone(), check_change_ops(current, change, &author).map_err(forbidden)?));
            kept_signatures.extend(signature.cloned());
        } else if change.hash() != upgrade {
            // Checked when the server first stored it (it attested a history holding it): a device's addition
            // is read back as it is, so that a server that lost it (restored from an old backup) counts its
            // visits again. Others (the server's own changes) add nothing to count.
            let writer = Author { actor: change.actor_id().clone(), username: String::new(), device: String::new() };
            vouched_added.extend(check_change_ops(current, change, &writer).ok());
        }
    }
    let in_sequence = check_sequence(current.automerge(), &unknown).map_err(forbidden)?;
    // Some of the pushed history is missing here: store nothing and ask for the whole of it.
    let resend_all = |grid: String| Accepted {
        new_changes: Vec::new(),
        new_visits: Vec::new(),
        new_places: Vec::new(),
        new_corrections: Vec::new(),
        signatures: Vec::new(),
        reply: GridReply {
            grid,
            kind: ReplyKind::ResendAll,
            heads: hashes_to_wire(&current.heads()),
            changes: Vec::new(),
            snapshot: None,
            stored: 0,
            contacts: None,
            signatures: Vec::new(),
            attestation: None,
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
    let (mut new_visits, mut new_places, mut new_corrections) = (Vec::new(), Vec::new(), Vec::new());
    for added in &vouched_added {
        let malformed = |e: DocError| PushError::Malformed { grid: grid.clone(), index: 0, reason: e.to_string() };
        for key in &added.visits {
            new_visits.extend(doc.visit(key).map_err(malformed)?);
        }
        for key in &added.places {
            new_places.extend(doc.found_place(key).map_err(malformed)?);
        }
        for key in &added.corrections {
            new_corrections.extend(doc.correction(key).map_err(malformed)?);
        }
    }
    for (author, added) in &added {
        for key in &added.visits {
            new_visits.push(check_new_visit(doc, key, author).map_err(forbidden)?);
        }
        for key in &added.places {
            new_places.push(check_new_place(doc, key, author).map_err(forbidden)?);
        }
        for key in &added.corrections {
            new_corrections.push(check_new_correction(doc, key, author).map_err(forbidden)?);
        }
    }
    let reply = GridReply {
        grid,
        kind: ReplyKind::Synced,
        heads: hashes_to_wire(&doc.heads()),
        changes: doc.change_bytes_since(&have).into_iter().map(ByteBuf::from).collect(),
        snapshot: None,
        stored: unknown.len() as u32,
        contacts: None,
        signatures: Vec::new(),
        attestation: None,
    };
    // Order for storage: as the document's own history orders them.
    let new_changes = if unknown.is_empty() { Vec::new() } else { doc.changes_since(&before) };
    Ok(Accepted { new_changes, new_visits, new_places, new_corrections, signatures: kept_signatures, reply })
}

/// Signatures of a push, by the change they sign (malformed ones are left out: their change then has none).
pub(crate) fn signatures_by_change(signatures: &[ChangeSignature]) -> HashMap<ChangeHash, &ChangeSignature> {
    signatures.iter().filter_map(|s| Some((ChangeHash(s.change.as_slice().try_into().ok()?), s))).collect()
}

/// Changes a hub takes without a writer's check because they are in the history of heads the server attested
/// (the server stores them already). Ancestry is followed through the changes' own dependency hashes, so nothing
/// has to be applied first.
pub(crate) fn vouched_changes(unknown: &[Change], attested: &[ChangeHash]) -> HashSet<ChangeHash> {
    let by_hash: HashMap<ChangeHash, &Change> = unknown.iter().map(|c| (c.hash(), c)).collect();
    let mut vouched = HashSet::new();
    let mut stack = attested.to_vec();
    while let Some(hash) = stack.pop() {
        if let Some(change) = by_hash.get(&hash) {
            if vouched.insert(hash) {
                stack.extend(change.deps().iter().copied());
            }
        }
    }
    vouched
}

/// The device whose rules a change follows: the pusher for its own changes, or the team device whose valid
/// signature it carries.
pub(crate) fn author_of<'s>(
    change: &Change,
    trust: &Trust<'_>,
    signatures: &HashMap<ChangeHash, &'s ChangeSignature>,
) -> Result<(Author, Option<&'s ChangeSignature>), Violation> {
    let hash = change.hash();
    let signature = signatures.get(&hash).copied();
    if change.actor_id() == &trust.pusher.actor {
        return match (trust.pusher_key, signature) {
            (None, _) => Ok((trust.pusher.clone(), None)),
            (Some(key), Some(s)) if key.verifies_change(&hash, s) => Ok((trust.pusher.clone(), Some(s))),
            (Some(_), _) => Err(Violation(format!(
                "change {hash} of this device carries no valid signature; enrol the device again with \
                 `doorstep field login` to sync through a hub"
            ))),
        };
    }
    let signer = trust.signers.and_then(|s| s.get(change.actor_id()));
    match (signer, signature) {
        (Some(signer), Some(s)) if signer.key.verifies_change(&hash, s) => Ok((signer.author.clone(), Some(s))),
        (Some(signer), Some(_)) => Err(Violation(format!(
            "change {hash} was written by actor {} of device {}, but its signature is not that device's",
            change.actor_id(),
            signer.author.device
        ))),
        (Some(signer), None) => Err(Violation(format!(
            "change {hash} was written by actor {} of device {} and is relayed without that device's signature",
            change.actor_id(),
            signer.author.device
        ))),
        (None, _) => Err(Violation(format!(
            "change {hash} was written by actor {} but this device's actor is {}, and it is no active device of \
             your team whose signed changes may be relayed",
            change.actor_id(),
            trust.pusher.actor
        ))),
    }
}

/// Each writer's new changes must continue its own numbering without gaps or repeats, and carry no author
/// record: automerge 0.12 aborts the process on a change whose sequence number does not follow its actor's last.
/// `Ok(false)`: some start beyond what the receiver holds, so earlier ones are missing here (ask for a resend).
pub(crate) fn check_sequence(current: &automerge::Automerge, unknown: &[Change]) -> Result<bool, Violation> {
    if unknown.is_empty() {
        return Ok(true);
    }
    if let Some(c) = unknown.iter().find(|c| c.author().is_some()) {
        return Err(Violation(format!("change {} carries an author record, which devices do not write", c.hash())));
    }
    let mut by_actor: HashMap<&ActorId, Vec<u64>> = HashMap::new();
    for c in unknown {
        by_actor.entry(c.actor_id()).or_default().push(c.seq());
    }
    let mut held: HashMap<&ActorId, u64> = by_actor.keys().map(|a| (*a, 0)).collect();
    for meta in current.get_changes_meta(&[]) {
        if let Some(n) = held.get_mut(meta.actor.as_ref()) {
            *n += 1;
        }
    }
    let mut all_follow = true;
    for (actor, seqs) in &mut by_actor {
        seqs.sort_unstable();
        let held = held[actor];
        let consecutive = seqs.windows(2).all(|w| w[1] == w[0] + 1);
        if !consecutive || seqs[0] <= held {
            return Err(Violation(format!(
                "the changes of actor {actor} are numbered {seqs:?}, but the receiver already holds its first \
                 {held}; a writer's changes are numbered once, without gaps"
            )));
        }
        all_follow &= seqs[0] == held + 1;
    }
    Ok(all_follow)
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
        signatures: Vec::new(),
        attestation: None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Deliveries, Outcome};

    fn accepted_visit_at(at: chrono::DateTime<chrono::Utc>) -> Accepted {
        let visit = Visit {
            id: uuid::Uuid::now_v7(),
            place_id: "P1".into(),
            volunteer: "amy".into(),
            device: "d1".into(),
            at,
            outcome: Outcome::Completed,
            deliveries: Deliveries::default(),
            note: None,
            gps: None,
        };
        let mut reply = new_grid_reply("G1", &GridDoc::genesis());
        reply.kind = ReplyKind::Synced;
        Accepted {
            new_changes: Vec::new(),
            new_visits: vec![visit],
            new_places: Vec::new(),
            new_corrections: Vec::new(),
            signatures: Vec::new(),
            reply,
        }
    }

    /// A phone a few minutes fast syncs; one with a wrong date hears why it may not.
    #[test]
    fn records_dated_beyond_the_tolerance_after_the_receivers_clock_are_refused() {
        let now = chrono::Utc::now();
        for ahead in [-600, 0, 60, 599, 600] {
            accepted_visit_at(now + chrono::Duration::seconds(ahead)).check_not_ahead(now, "the server").unwrap();
        }
        let err = accepted_visit_at(now + chrono::Duration::seconds(601)).check_not_ahead(now, "the server");
        assert!(matches!(err, Err(PushError::FromTheFuture { .. })), "{err:?}");
        let year_2099 = chrono::DateTime::parse_from_rfc3339("2099-01-01T08:00:00Z").unwrap().to_utc();
        let err = accepted_visit_at(year_2099).check_not_ahead(now, "this hub").unwrap_err().to_string();
        for words in ["dated 2099-01-01 08:00 UTC", "days after this hub's clock", "phone's clock is probably wrong"] {
            assert!(err.contains(words), "{words:?} in {err}");
        }
    }
}
