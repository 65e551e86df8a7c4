//! The sync engine, both halves, with no IO, for every kind of synced document: the device builds pushes and
//! applies replies; the receiver (the server, or a hub) checks a push against its copy and computes the reply.
//! Transport and storage belong to the callers.
//!
//! A kind of document (a grid, an urgent task) implements `DocKind`: its wire types, what one change may add
//! (read from the change's operations before anything is applied), how the added records are checked against
//! their writer once applied, the subject the server's attestations name, and the size budget its changes take.
//! Everything else is the same for every kind and written once here: decoding, deduplication, the budget, the
//! writer's signature (`Trust`), the writers' numbering, completeness, applying, and the reply.

use crate::grid::doc::DocError;
use crate::limits::{check_change_size, Budget, SyncBudget};
use crate::protocol::{
    hashes_from_wire, hashes_to_wire, Attestation, ChangeSignature, DocAnswer, DocPush, DocReply, WireError,
};
use crate::sign::PublicKey;
use crate::store::StoredDoc;
use automerge::{ActorId, Automerge, Change, ChangeHash};
use serde_bytes::ByteBuf;
use std::collections::{HashMap, HashSet};

pub use crate::grid::sync::{GridRecords, MAX_CLOCK_AHEAD};

/// A kind of synced document, implemented by its document type. The receiving path checks a push with it and
/// nothing else, so a new kind needs no code in the sync path itself.
pub trait DocKind: StoredDoc {
    /// What a device sends for one document (a wire type of `protocol`): `DocPush` for every kind but the
    /// first two, which the protocol had before kinds were generic.
    type Push: PushWire;
    /// What the receiver answers for one document: `DocReply`, but for grids and tasks.
    type Reply: ReplyWire;
    /// What one change adds, read from its operations before it is applied (keys of new records).
    type Keys;
    /// The records a push added, read from the document after applying it, each checked against its writer.
    type Records: Default + std::fmt::Debug;
    /// How messages name the kind: "grid", "task".
    const NOUN: &'static str;
    /// Which bound of `limits` the new changes of a push count against.
    const BUDGET: Budget;

    /// What the server's attestation of this document's heads names (`sign`).
    fn subject(id: &str) -> String;
    fn automerge(&self) -> &Automerge;
    /// The actor this copy writes its own changes as.
    fn set_actor(&mut self, actor: ActorId);
    /// Changes this document has that a peer whose heads are `have` lacks, in automerge's order.
    fn changes_since(&self, have: &[ChangeHash]) -> Vec<Change>;
    /// The bytes of `changes_since(have)`, as a push or a reply carries them.
    fn change_bytes_since(&self, have: &[ChangeHash]) -> Vec<Vec<u8>> {
        self.changes_since(have).iter().map(|c| c.raw_bytes().to_vec()).collect()
    }
    /// Checks the operations of one change of `author` against this document (the receiver's copy, before the
    /// push is applied) and returns what it adds.
    fn check_ops(&self, change: &Change, author: &Author) -> Result<Self::Keys, Violation>;
    /// Checks what one change of `author` added, as it reads in this document (after the push is applied), and
    /// adds it to `records`.
    fn check_added(&self, keys: &Self::Keys, author: &Author, records: &mut Self::Records) -> Result<(), Violation>;
    /// What a change taken on the server's attestation (no writer to check it against) adds, to be read back
    /// with `read_attested`; `None` when the kind takes such changes without reading their records.
    fn attested_keys(&self, change: &Change) -> Option<Self::Keys> {
        let _ = change;
        None
    }
    /// Adds the records of `keys`, as they read after applying, to `records`, unchecked.
    fn read_attested(&self, keys: &Self::Keys, records: &mut Self::Records) -> Result<(), DocError> {
        let _ = (keys, records);
        Ok(())
    }
    /// A constant change every replica may hold, with no writer to check (a schema upgrade).
    fn is_constant(change: &ChangeHash) -> bool {
        let _ = change;
        false
    }
}

/// Who wrote a change: the pushing device (taken from its verified token, never from the message) or a device
/// whose signature the change carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    pub actor: ActorId,
    pub username: String,
    pub device: String,
}

/// Why a change is refused: what it does that its writer may not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Violation(pub String);

/// A push on the wire, as the engine reads and writes it.
pub trait PushWire {
    /// The parts of a push the engine reads.
    fn parts(&self) -> PushParts<'_>;
    /// A push without signatures or attestation (the device adds its own).
    fn unsigned(id: &str, have: Vec<ByteBuf>, changes: Vec<ByteBuf>) -> Self;
    /// The writers' signatures of its changes and the server's latest attestation, which the sender adds.
    fn relay_parts(&mut self) -> (&mut Vec<ChangeSignature>, &mut Option<Attestation>);
}

/// A reply on the wire, as the engine writes and reads it.
pub trait ReplyWire {
    /// The wire reply for a reply computed here (no signatures or attestation: the caller adds them).
    fn from_reply(reply: Reply) -> Self;
    /// The heads and changes of a reply.
    fn heads_and_changes(&self) -> (&[ByteBuf], &[ByteBuf]);
    /// The document it answers for.
    fn id(&self) -> &str;
    /// Whether it answers a push that was stored (`synced`).
    fn is_synced(&self) -> bool;
    /// Whether it asks for the whole history again (`resend_all`).
    fn is_resend_all(&self) -> bool;
    /// Tells the device the document is no longer for it (a grid `unassigned`, a task `closed`, any other
    /// `gone`): it deletes its copy once the server holds everything of it.
    fn set_gone(&mut self);
    /// What a hub adds for the device to pass the reply's changes on: their writers' signatures, and the
    /// server's latest attestation.
    fn relay_parts(&mut self) -> (&mut Vec<ChangeSignature>, &mut Option<Attestation>);
}

impl PushWire for DocPush {
    fn parts(&self) -> PushParts<'_> {
        PushParts {
            id: &self.id,
            have: &self.have,
            changes: &self.changes,
            signatures: &self.signatures,
            attestation: self.attestation.as_ref(),
        }
    }
    fn unsigned(id: &str, have: Vec<ByteBuf>, changes: Vec<ByteBuf>) -> Self {
        DocPush { id: id.to_string(), have, changes, ..Default::default() }
    }
    fn relay_parts(&mut self) -> (&mut Vec<ChangeSignature>, &mut Option<Attestation>) {
        (&mut self.signatures, &mut self.attestation)
    }
}

impl ReplyWire for DocReply {
    fn from_reply(reply: Reply) -> Self {
        DocReply {
            id: reply.id,
            answer: match reply.answer {
                Answer::Synced => DocAnswer::Synced,
                Answer::New => DocAnswer::New,
                Answer::ResendAll => DocAnswer::ResendAll,
            },
            heads: reply.heads,
            changes: reply.changes,
            snapshot: reply.snapshot,
            stored: reply.stored,
            signatures: Vec::new(),
            attestation: None,
        }
    }
    fn heads_and_changes(&self) -> (&[ByteBuf], &[ByteBuf]) {
        (&self.heads, &self.changes)
    }
    fn id(&self) -> &str {
        &self.id
    }
    fn is_synced(&self) -> bool {
        self.answer == DocAnswer::Synced
    }
    fn is_resend_all(&self) -> bool {
        self.answer == DocAnswer::ResendAll
    }
    fn set_gone(&mut self) {
        self.answer = DocAnswer::Gone;
    }
    fn relay_parts(&mut self) -> (&mut Vec<ChangeSignature>, &mut Option<Attestation>) {
        (&mut self.signatures, &mut self.attestation)
    }
}

/// The parts of a push that the engine reads.
pub struct PushParts<'a> {
    pub id: &'a str,
    pub have: &'a [ByteBuf],
    pub changes: &'a [ByteBuf],
    pub signatures: &'a [ChangeSignature],
    pub attestation: Option<&'a Attestation>,
}

/// What a reply says, whatever the kind (each kind's wire reply may say more, such as `unassigned`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Synced,
    New,
    ResendAll,
}

/// A reply as the engine computes it, before `DocKind::reply` turns it into the kind's wire type.
#[derive(Debug)]
pub struct Reply {
    pub id: String,
    pub answer: Answer,
    pub heads: Vec<ByteBuf>,
    pub changes: Vec<ByteBuf>,
    pub snapshot: Option<ByteBuf>,
    pub stored: u32,
}

fn heads<K: DocKind>(doc: &K) -> Vec<ChangeHash> {
    doc.automerge().get_heads()
}

fn contains<K: DocKind>(doc: &K, hash: &ChangeHash) -> bool {
    // Metadata only: rebuilding each change just to test that it exists costs far more.
    doc.automerge().get_change_meta_by_hash(hash).is_some()
}

// ---------- device side ----------

/// The push for one document: every change after the heads the server last confirmed (`None` = send all).
pub fn build_push<K: DocKind>(id: &str, doc: &K, confirmed: Option<&[ChangeHash]>) -> K::Push {
    let changes = doc.change_bytes_since(confirmed.unwrap_or(&[])).into_iter().map(ByteBuf::from).collect();
    K::Push::unsigned(id, hashes_to_wire(&heads(doc)), changes)
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

/// Applies a reply that carries changes (`synced`, and a grid's `unassigned` or a task's `closed`) to the
/// device's copy.
pub fn apply_reply<K: DocKind>(doc: &mut K, reply: &K::Reply) -> Result<Applied, ApplyError> {
    let (server_heads, changes) = reply.heads_and_changes();
    let changes = decode_changes(changes).map_err(|(_, e)| ApplyError::BadChange(e))?;
    let new_changes: Vec<Change> = changes.into_iter().filter(|c| !contains(doc, &c.hash())).collect();
    doc.apply_changes(new_changes.clone())?;
    let server_heads = hashes_from_wire(server_heads)?;
    // Only claim what we can verify: if some server change did not arrive, the next push repeats more.
    let confirmed = if server_heads.iter().all(|h| contains(doc, h)) { server_heads } else { Vec::new() };
    Ok(Applied { new_changes, confirmed })
}

// ---------- receiving side (the server, or a hub) ----------

/// The document a refused push was for, as messages name it ("grid G1", "task <id>").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocRef {
    pub noun: &'static str,
    pub id: String,
}

impl std::fmt::Display for DocRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.noun, self.id)
    }
}

/// Why the receiver refuses a push. Nothing of the request is stored.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{doc}: change #{index} is not a valid automerge change: {reason}")]
    Malformed { doc: DocRef, index: usize, reason: String },
    #[error("{doc}: {violation}")]
    Forbidden { doc: DocRef, violation: Violation },
    /// The request brings more than a sync may (`crate::limits`), checked before anything is applied.
    #[error("{doc}: {reason}")]
    TooLarge { doc: DocRef, reason: crate::limits::TooLarge },
    /// A record is dated after the receiver's clock (`Accepted::check_not_ahead`).
    #[error("{doc}: {violation}")]
    FromTheFuture { doc: DocRef, violation: Violation },
    #[error("{doc}: {source}")]
    Wire {
        doc: DocRef,
        #[source]
        source: WireError,
    },
}

/// The outcome of checking a push against the receiver's copy of a document.
#[derive(Debug)]
pub struct Accepted<K: DocKind = crate::GridDoc> {
    /// Changes new to the receiver, now applied to its copy, in an order that respects their dependencies, to
    /// store. Empty when the push brought nothing new (or the reply asks for a resend).
    pub new_changes: Vec<Change>,
    /// The records those changes added (for a grid: visits, found places, corrections; for a task: sign-fors and
    /// outcomes), to project or record; each names the device that wrote it.
    pub records: K::Records,
    /// Verified writers' signatures of the new changes, for a hub to keep and pass on.
    pub signatures: Vec<ChangeSignature>,
    pub reply: K::Reply,
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
    pub fn attested(&self, subject: &str, attestation: Option<&Attestation>) -> Vec<ChangeHash> {
        match (self.server_key, attestation) {
            (Some(key), Some(a)) => key.attested_heads(subject, a).unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

/// Checks a push of a device's own changes, applies what it brings to `doc` and computes the reply.
pub fn accept_push<K: DocKind>(doc: &mut K, push: &K::Push, author: &Author) -> Result<Accepted<K>, PushError> {
    accept_push_with(doc, push, &Trust::own(author))
}

/// Checks a push, which may relay other devices' signed changes, applies what it brings to `doc` (the
/// receiver's copy) and computes the reply. The push alone may bring at most what a whole sync request may.
pub fn accept_push_with<K: DocKind>(doc: &mut K, push: &K::Push, trust: &Trust<'_>) -> Result<Accepted<K>, PushError> {
    accept_push_within(doc, push, trust, &mut SyncBudget::default())
}

/// Checks a push, which may relay other devices' signed changes, applies what it brings to `doc` (the
/// receiver's copy) and computes the reply. Its new changes are taken out of `budget`, shared by every document
/// of the request, before anything is applied. Each change is checked against the device that wrote it.
///
/// Every check that needs no applying comes first: operations, writers, numbering, and completeness (everything
/// the new changes depend on, and everything the device says it has, is here or arrives now; otherwise the reply
/// asks for the whole history and nothing is applied). Then the push is applied in place, which spares a copy of
/// the whole document, and the added records are checked as they read. The price: on `Err`, `doc` may hold part
/// of the refused push and must be thrown away (reloaded from storage). On `Ok`, `doc` holds exactly the stored
/// history plus `new_changes`, which the caller must store before anyone else sees `doc`.
pub fn accept_push_within<K: DocKind>(
    doc: &mut K,
    push: &K::Push,
    trust: &Trust<'_>,
    budget: &mut SyncBudget,
) -> Result<Accepted<K>, PushError> {
    let parts = push.parts();
    let at = || DocRef { noun: K::NOUN, id: parts.id.to_string() };
    let forbidden = |violation| PushError::Forbidden { doc: at(), violation };
    let malformed = |reason: String| PushError::Malformed { doc: at(), index: 0, reason };
    let have = hashes_from_wire(parts.have).map_err(|source| PushError::Wire { doc: at(), source })?;
    let changes =
        decode_changes(parts.changes).map_err(|(index, reason)| PushError::Malformed { doc: at(), index, reason })?;
    let current = &*doc;
    let mut seen = HashSet::new();
    let unknown: Vec<Change> =
        changes.into_iter().filter(|c| !contains(current, &c.hash()) && seen.insert(c.hash())).collect();
    if K::BUDGET == Budget::SyncNewChanges {
        budget.spend(&unknown).map_err(|reason| PushError::TooLarge { doc: at(), reason })?;
    }
    // A hub takes what the server attested to holding as it is (the office's own changes among them).
    let vouched = vouched_changes(&unknown, &trust.attested(&K::subject(parts.id), parts.attestation));
    let signatures = signatures_by_change(parts.signatures);
    let mut checked: Vec<(Author, K::Keys)> = Vec::new();
    let mut attested: Vec<K::Keys> = Vec::new();
    let mut kept_signatures = Vec::new();
    for change in &unknown {
        if K::is_constant(&change.hash()) {
            continue;
        }
        if !vouched.contains(&change.hash()) {
            check_change_size(change).map_err(forbidden)?;
            let (author, signature) = author_of(change, trust, &signatures).map_err(forbidden)?;
            checked.push((author.clone(), current.check_ops(change, &author).map_err(forbidden)?));
            kept_signatures.extend(signature.cloned());
        } else {
            // Checked when the server first stored it (it attested a history holding it): a device's addition
            // is read back as it is, so that a server that lost it (restored from an old backup) counts it
            // again. Others (the server's own changes) add nothing to count.
            attested.extend(current.attested_keys(change));
        }
    }
    let in_sequence = check_sequence(current.automerge(), &unknown).map_err(forbidden)?;
    let arriving: HashSet<ChangeHash> = unknown.iter().map(|c| c.hash()).collect();
    let known = |h: &ChangeHash| arriving.contains(h) || contains(current, h);
    let complete = unknown.iter().all(|c| c.deps().iter().all(known)) && have.iter().all(known);
    if !in_sequence || !complete {
        // Some of the pushed history is missing here: store nothing and ask for the whole of it.
        let heads = hashes_to_wire(&heads(current));
        let reply = Reply { id: parts.id.to_string(), answer: Answer::ResendAll, heads, ..Reply::empty() };
        let records = K::Records::default();
        return Ok(Accepted {
            new_changes: Vec::new(),
            records,
            signatures: Vec::new(),
            reply: K::Reply::from_reply(reply),
        });
    }
    let before = heads(current);
    if !unknown.is_empty() {
        doc.apply_changes(unknown.clone()).map_err(|e| malformed(e.to_string()))?;
    }
    if !unknown.iter().all(|c| contains(doc, &c.hash())) {
        return Err(malformed("the changes could not all be applied".to_string()));
    }
    let mut records = K::Records::default();
    for keys in &attested {
        doc.read_attested(keys, &mut records).map_err(|e| malformed(e.to_string()))?;
    }
    for (author, keys) in &checked {
        doc.check_added(keys, author, &mut records).map_err(forbidden)?;
    }
    let reply = Reply {
        id: parts.id.to_string(),
        answer: Answer::Synced,
        heads: hashes_to_wire(&heads(doc)),
        changes: doc.change_bytes_since(&have).into_iter().map(ByteBuf::from).collect(),
        snapshot: None,
        stored: unknown.len() as u32,
    };
    // Order for storage: as the document's own history orders them.
    let new_changes = if unknown.is_empty() { Vec::new() } else { doc.changes_since(&before) };
    Ok(Accepted { new_changes, records, signatures: kept_signatures, reply: K::Reply::from_reply(reply) })
}

impl Reply {
    fn empty() -> Self {
        Reply {
            id: String::new(),
            answer: Answer::Synced,
            heads: Vec::new(),
            changes: Vec::new(),
            snapshot: None,
            stored: 0,
        }
    }
}

/// The reply for a document the device does not hold yet: the whole of it.
pub fn new_reply<K: DocKind>(id: &str, doc: &K) -> K::Reply {
    K::Reply::from_reply(Reply {
        id: id.to_string(),
        answer: Answer::New,
        heads: hashes_to_wire(&heads(doc)),
        snapshot: Some(ByteBuf::from(doc.save())),
        ..Reply::empty()
    })
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
