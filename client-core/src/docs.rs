//! Documents of every further kind (campaign definitions, bulletins, …), held and exchanged by one generic path.
//! A kind implements `DocKind` with the generic wire types (`DocPush`, `DocReply`) and is registered once
//! (`Registry::register`); the device then pushes and applies its documents, and a hub checks, stores and
//! answers them, with no code of the kind's own. (The server's side is `server::sync::documents`.)
//!
//! A device keeps each kind in a `DocStore` folder named after the kind, under its profile's `docs/` folder.

use crate::limits::SyncBudget;
use crate::protocol::{hashes_from_wire, DocAnswer, DocPush, DocReply, WireError};
use crate::sign::{KeyPair, PublicKey};
use crate::store::{DocStore, StoreError};
use crate::sync::{accept_push_within, apply_reply, build_push, new_reply, Accepted, ApplyError, DocKind, PushError};
use crate::sync::{PushWire, ReplyWire, Trust};
use automerge::{ActorId, Change, ChangeHash};
use std::collections::{BTreeSet, HashMap};
use std::marker::PhantomData;
use std::path::Path;

/// A kind that travels under the request's `docs`: every kind but grids and tasks.
pub trait DocsKind:
    DocKind<Push = DocPush, Reply = DocReply, Records: Entries + Send + Sync> + Send + Sync + 'static
{
}
impl<K: DocKind<Push = DocPush, Reply = DocReply, Records: Entries + Send + Sync> + Send + Sync + 'static> DocsKind
    for K
{
}

/// One entry a device wrote into a document of a further kind, as accepted (a bulletin's read receipt): the
/// server keeps it beside the document, so that reports read entries without loading documents.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DocEntry {
    /// The entry's key in the document (unique in it).
    pub key: String,
    pub username: String,
    pub device: String,
    /// When the device says it happened (ms).
    pub at: i64,
    /// The rest of the entry, as the kind defines it.
    pub detail: serde_json::Value,
}

/// What a kind's records say as entries to keep (`DocEntry`); a kind whose devices write nothing has none.
pub trait Entries {
    fn entries(&self) -> Vec<DocEntry>;
}

impl Entries for () {
    fn entries(&self) -> Vec<DocEntry> {
        Vec::new()
    }
}

impl Entries for Vec<DocEntry> {
    fn entries(&self) -> Vec<DocEntry> {
        self.clone()
    }
}

/// What is done with each kind Doorstep syncs besides grids and tasks (`each_kind`).
pub trait KindVisitor {
    fn visit<K: DocsKind>(&mut self);
}

/// The kinds Doorstep syncs besides grids and tasks. A new kind is registered here, once: devices, hubs and the
/// server all build their registries from this list (`Registry::of_doorstep`, `ServerKinds::of_doorstep`).
pub fn each_kind(visitor: &mut impl KindVisitor) {
    visitor.visit::<crate::campaign::doc::CampaignDoc>();
    visitor.visit::<crate::bulletin::doc::BulletinDoc>();
}

#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    /// The request itself is wrong (a document twice, an id that cannot name a file).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Push(#[from] PushError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who writes on this side: the device's actor and signing key; the server's key, to check what a hub forwards.
#[derive(Clone, Copy)]
pub struct Writer<'a> {
    pub actor: &'a ActorId,
    pub key: Option<&'a KeyPair>,
    pub server_key: Option<&'a PublicKey>,
}

/// What applying one kind's replies did on a device.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub new: usize,
    pub updated: usize,
    pub deleted: usize,
    /// Pushes the receiver could not place: the next round sends their whole history.
    pub resend: usize,
}

/// An id names files on the device and the hub: a UUID, or letters, digits, `-` and `_` (at most 64).
pub fn check_id(id: &str) -> Result<(), DocsError> {
    let fits =
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    fits.then_some(()).ok_or_else(|| DocsError::Invalid(format!("document id {id:?} is not a valid id")))
}

fn load<K: DocKind>(store: &DocStore<K>, actor: &ActorId, id: &str) -> Result<K, DocsError> {
    let mut doc = store.load(id)?;
    doc.set_actor(actor.clone());
    Ok(doc)
}

/// The signatures a push or reply carrying `changes` needs: this side's own, and the writers' it keeps.
fn signatures_for<K: DocKind>(
    store: &DocStore<K>,
    id: &str,
    writer: &Writer<'_>,
    changes: &[Change],
) -> Result<Vec<crate::protocol::ChangeSignature>, DocsError> {
    let kept = store.signatures(id)?;
    Ok(changes
        .iter()
        .filter_map(|c| match (c.actor_id() == writer.actor, writer.key) {
            (true, Some(key)) => Some(key.sign_change(&c.hash())),
            (true, None) => None,
            (false, _) => kept.get(&c.hash()).cloned(),
        })
        .collect())
}

// ---------- the device ----------

/// The pushes for every document of kind `K` held in `store` (any kind: grids and tasks too), each with the
/// document as loaded: what the receiver has not confirmed (everything, for those in `resend_all`), signed, with
/// the server's latest attestation.
pub fn device_pushes<K: DocKind>(
    store: &DocStore<K>,
    writer: &Writer<'_>,
    resend_all: &BTreeSet<String>,
) -> Result<Vec<(K::Push, K)>, DocsError> {
    let mut pushes = Vec::new();
    for id in store.ids()? {
        let doc = load(store, writer.actor, &id)?;
        let confirmed = store.mark(&id)?.confirmed_heads();
        let since = (!resend_all.contains(&id)).then_some(confirmed.as_slice());
        let mut push = build_push(&id, &doc, since);
        let (signatures, attestation) = push.relay_parts();
        *signatures = signatures_for(store, &id, writer, &doc.changes_since(since.unwrap_or(&[])))?;
        *attestation = store.attestation(&id)?;
        pushes.push((push, doc));
    }
    Ok(pushes)
}

/// Applies one kind's replies to the device's store. A hub's heads confirm nothing: through a hub, only what
/// the server attested (checked with its key) counts as delivered. A `gone` document is deleted once every
/// change the device holds is confirmed; until then it stays, and goes on being pushed.
pub fn device_apply<K: DocsKind>(
    store: &DocStore<K>,
    writer: &Writer<'_>,
    via_hub: bool,
    replies: &[DocReply],
    resend_all: &mut BTreeSet<String>,
) -> Result<Tally, DocsError> {
    let mut tally = Tally::default();
    let held: BTreeSet<String> = store.ids()?.into_iter().collect();
    for reply in replies {
        check_id(&reply.id)?;
        // Signatures before changes: a stored change never lacks what it needs to travel on.
        store.add_signatures(&reply.id, &reply.signatures)?;
        if let Some(attestation) = &reply.attestation {
            store.offer_attestation(&reply.id, attestation)?;
        }
        let mut doc = match (reply.answer, held.contains(&reply.id)) {
            (DocAnswer::ResendAll, _) => {
                resend_all.insert(reply.id.clone());
                tally.resend += 1;
                continue;
            }
            (DocAnswer::New, _) => {
                let snapshot = reply.snapshot.as_ref().ok_or_else(|| {
                    DocsError::Invalid(format!("{} {}: a new document came without its contents", K::NOUN, reply.id))
                })?;
                let mut doc = K::load(snapshot).map_err(ApplyError::from)?;
                doc.set_actor(writer.actor.clone());
                if held.contains(&reply.id) {
                    doc.apply_changes(load(store, writer.actor, &reply.id)?.changes_since(&[]))
                        .map_err(ApplyError::from)?;
                }
                store.replace(&reply.id, &doc)?;
                tally.new += 1;
                doc
            }
            // Answers for documents this device does not hold are not for it.
            (_, false) => continue,
            (DocAnswer::Synced | DocAnswer::Gone, true) => {
                let mut doc = load(store, writer.actor, &reply.id)?;
                let applied = apply_reply(&mut doc, reply)?;
                store.append(&reply.id, &applied.new_changes)?;
                tally.updated += usize::from(!applied.new_changes.is_empty());
                doc
            }
        };
        resend_all.remove(&reply.id);
        let confirmed = match via_hub {
            false => hashes_from_wire(&reply.heads)?,
            true => attested_held(&doc, &reply.id, reply, writer),
        };
        let confirmed = if confirmed.iter().all(|h| doc.automerge().get_change_meta_by_hash(h).is_some()) {
            confirmed
        } else {
            Vec::new()
        };
        let mut mark = store.mark(&reply.id)?;
        if !confirmed.is_empty() {
            mark.set_confirmed(&confirmed);
            let undelivered: BTreeSet<ChangeHash> = doc.changes_since(&confirmed).iter().map(|c| c.hash()).collect();
            store.retain_signatures(&reply.id, |h| undelivered.contains(h))?;
        }
        mark.last_sync = Some(chrono::Utc::now());
        store.set_mark(&reply.id, &mark)?;
        if reply.answer == DocAnswer::Gone && !via_hub && doc.changes_since(&mark.confirmed_heads()).is_empty() {
            store.remove(&reply.id)?;
            tally.deleted += 1;
        }
        doc.set_actor(writer.actor.clone());
    }
    Ok(tally)
}

/// The heads the server attested (verified with its key) that the device's copy holds.
fn attested_held<K: DocsKind>(doc: &K, id: &str, reply: &DocReply, writer: &Writer<'_>) -> Vec<ChangeHash> {
    let (Some(key), Some(attestation)) = (writer.server_key, reply.attestation.as_ref()) else { return Vec::new() };
    key.attested_heads(&K::subject(id), attestation)
        .unwrap_or_default()
        .into_iter()
        .filter(|h| doc.automerge().get_change_meta_by_hash(h).is_some())
        .collect()
}

// ---------- a hub, receiving ----------

/// One document's push, checked against the hub's copy and applied to it; nothing is stored yet.
pub struct Relayed<K: DocKind> {
    pub id: String,
    pub doc: K,
    /// The heads the device said it has.
    pub have: Vec<ChangeHash>,
    pub accepted: Accepted<K>,
}

/// One kind's pushes of a request, checked against the hub's copies; nothing is stored yet.
pub struct Checked<K: DocKind> {
    pub relayed: Vec<Relayed<K>>,
    /// Documents the hub holds that the device did not push: sent whole.
    pub new: Vec<String>,
    /// Documents the hub does not hold (given to the team after the hub last synced, or gone), left for the
    /// server: no answer, so the device keeps them as they are and the rest still syncs.
    pub skipped: Vec<String>,
}

/// Checks every push of one kind like the server would, against the copies the hub holds (any kind: grids and
/// tasks too); a refused change refuses the request. Only documents the hub holds are read, so an id never
/// names a file it did not list itself.
pub fn relay_check<K: DocKind>(
    store: &DocStore<K>,
    writer: &Writer<'_>,
    pushes: &[K::Push],
    trust: &Trust<'_>,
    budget: &mut SyncBudget,
) -> Result<Checked<K>, DocsError> {
    let held: BTreeSet<String> = store.ids()?.into_iter().collect();
    let mut checked = Checked { relayed: Vec::new(), new: Vec::new(), skipped: Vec::new() };
    let mut pushed = BTreeSet::new();
    for push in pushes {
        let parts = push.parts();
        if !pushed.insert(parts.id) {
            return Err(DocsError::Invalid(format!("{} {} appears twice in the sync request", K::NOUN, parts.id)));
        }
        if !held.contains(parts.id) {
            checked.skipped.push(parts.id.to_string());
            continue;
        }
        // Loaded for this exchange alone: a refused push leaves nothing behind in it.
        let mut doc = load(store, writer.actor, parts.id)?;
        let accepted = accept_push_within(&mut doc, push, trust, budget)?;
        let have = hashes_from_wire(parts.have)?;
        checked.relayed.push(Relayed { id: parts.id.to_string(), doc, have, accepted });
    }
    checked.new = held.iter().filter(|id| !pushed.contains(id.as_str())).cloned().collect();
    Ok(checked)
}

impl<K: DocKind> Checked<K> {
    /// Stores what is new (signatures before changes: a stored change always has what it needs to travel on)
    /// and answers: what the device lacks of the documents it pushed, with what it needs to pass it on, and the
    /// documents it does not hold. Returns the replies, sorted by id, and how many changes were new to the hub.
    pub fn store_and_answer(
        self,
        store: &DocStore<K>,
        writer: &Writer<'_>,
    ) -> Result<(Vec<K::Reply>, usize), DocsError> {
        let mut stored = 0;
        for Relayed { id, accepted, .. } in self.relayed.iter().filter(|r| !r.accepted.new_changes.is_empty()) {
            store.add_signatures(id, &accepted.signatures)?;
            store.append(id, &accepted.new_changes)?;
            stored += accepted.new_changes.len();
        }
        let mut replies = Vec::new();
        for Relayed { id, doc, have, accepted } in self.relayed {
            let mut reply = accepted.reply;
            if reply.is_synced() {
                relay_parts(store, &id, writer, &doc.changes_since(&have), &mut reply)?;
            }
            replies.push(reply);
        }
        for id in self.new {
            let doc = load(store, writer.actor, &id)?;
            let mut reply = new_reply(&id, &doc);
            let attested = store.attestation(&id)?.and_then(|a| hashes_from_wire(&a.heads).ok()).unwrap_or_default();
            relay_parts(store, &id, writer, &doc.changes_since(&attested), &mut reply)?;
            replies.push(reply);
        }
        replies.sort_by(|a, b| a.id().cmp(b.id()));
        Ok((replies, stored))
    }
}

/// Adds what a reply carrying `changes` needs for the device to pass them on.
fn relay_parts<K: DocKind>(
    store: &DocStore<K>,
    id: &str,
    writer: &Writer<'_>,
    changes: &[Change],
    reply: &mut K::Reply,
) -> Result<(), DocsError> {
    let (signatures, attestation) = reply.relay_parts();
    *signatures = signatures_for(store, id, writer, changes)?;
    *attestation = store.attestation(id)?;
    Ok(())
}

// ---------- the registry ----------

/// One registered kind, its type erased, as a device and a hub drive it. Each works on the kind's folder
/// (`dir` is the profile's `docs/` folder).
pub trait HeldKind: Send + Sync {
    fn name(&self) -> &'static str;
    fn pushes(&self, dir: &Path, writer: &Writer<'_>, resend_all: &BTreeSet<String>)
        -> Result<Vec<DocPush>, DocsError>;
    fn apply(
        &self,
        dir: &Path,
        writer: &Writer<'_>,
        via_hub: bool,
        replies: &[DocReply],
        resend_all: &mut BTreeSet<String>,
    ) -> Result<Tally, DocsError>;
    /// Checks a request's pushes at a hub; `CheckedBatch::store_and_answer` then stores and answers them.
    fn relay_check(
        &self,
        dir: &Path,
        writer: &Writer<'_>,
        pushes: &[DocPush],
        trust: &Trust<'_>,
        budget: &mut SyncBudget,
    ) -> Result<Box<dyn CheckedBatch>, DocsError>;
}

/// A hub's checked pushes of one kind, to store once every kind of the request is checked.
pub trait CheckedBatch {
    fn store_and_answer(self: Box<Self>, dir: &Path, writer: &Writer<'_>) -> Result<(Vec<DocReply>, usize), DocsError>;
}

struct Registered<K>(PhantomData<fn() -> K>);

fn open<K: DocsKind>(dir: &Path) -> Result<DocStore<K>, DocsError> {
    Ok(DocStore::open(&dir.join(K::NOUN))?)
}

impl<K: DocsKind> HeldKind for Registered<K> {
    fn name(&self) -> &'static str {
        K::NOUN
    }
    fn pushes(
        &self,
        dir: &Path,
        writer: &Writer<'_>,
        resend_all: &BTreeSet<String>,
    ) -> Result<Vec<DocPush>, DocsError> {
        Ok(device_pushes(&open::<K>(dir)?, writer, resend_all)?.into_iter().map(|(push, _)| push).collect())
    }
    fn apply(
        &self,
        dir: &Path,
        writer: &Writer<'_>,
        via_hub: bool,
        replies: &[DocReply],
        resend_all: &mut BTreeSet<String>,
    ) -> Result<Tally, DocsError> {
        device_apply(&open::<K>(dir)?, writer, via_hub, replies, resend_all)
    }
    fn relay_check(
        &self,
        dir: &Path,
        writer: &Writer<'_>,
        pushes: &[DocPush],
        trust: &Trust<'_>,
        budget: &mut SyncBudget,
    ) -> Result<Box<dyn CheckedBatch>, DocsError> {
        Ok(Box::new(relay_check::<K>(&open::<K>(dir)?, writer, pushes, trust, budget)?))
    }
}

impl<K: DocsKind> CheckedBatch for Checked<K> {
    fn store_and_answer(self: Box<Self>, dir: &Path, writer: &Writer<'_>) -> Result<(Vec<DocReply>, usize), DocsError> {
        (*self).store_and_answer(&open::<K>(dir)?, writer)
    }
}

/// The kinds a device or hub holds besides grids and tasks. Each is registered once, by its type.
#[derive(Default)]
pub struct Registry {
    kinds: Vec<Box<dyn HeldKind>>,
}

impl Registry {
    /// Every kind of `each_kind`.
    pub fn of_doorstep() -> Self {
        struct Add(Registry);
        impl KindVisitor for Add {
            fn visit<K: DocsKind>(&mut self) {
                self.0 = std::mem::take(&mut self.0).register::<K>();
            }
        }
        let mut add = Add(Registry::default());
        each_kind(&mut add);
        add.0
    }

    pub fn register<K: DocsKind>(mut self) -> Self {
        assert!(self.get(K::NOUN).is_none(), "document kind {} registered twice", K::NOUN);
        self.kinds.push(Box::new(Registered::<K>(PhantomData)));
        self
    }
    pub fn get(&self, name: &str) -> Option<&dyn HeldKind> {
        self.kinds.iter().find(|k| k.name() == name).map(|k| k.as_ref())
    }
    pub fn iter(&self) -> impl Iterator<Item = &dyn HeldKind> {
        self.kinds.iter().map(|k| k.as_ref())
    }
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }
}

/// Every registered kind's pushes, as the request's `docs` carries them.
pub fn all_pushes(
    registry: &Registry,
    dir: &Path,
    writer: &Writer<'_>,
    resend_all: &BTreeSet<(String, String)>,
) -> Result<std::collections::BTreeMap<String, Vec<DocPush>>, DocsError> {
    let mut out = std::collections::BTreeMap::new();
    for kind in registry.iter() {
        let resend: BTreeSet<String> =
            resend_all.iter().filter(|(k, _)| k == kind.name()).map(|(_, id)| id.clone()).collect();
        out.insert(kind.name().to_string(), kind.pushes(dir, writer, &resend)?);
    }
    Ok(out)
}

/// Applies every registered kind's replies; kinds the receiver did not answer are left as they are.
pub fn apply_all(
    registry: &Registry,
    dir: &Path,
    writer: &Writer<'_>,
    via_hub: bool,
    replies: &std::collections::BTreeMap<String, Vec<DocReply>>,
    resend_all: &mut BTreeSet<(String, String)>,
) -> Result<HashMap<&'static str, Tally>, DocsError> {
    let mut tallies = HashMap::new();
    for kind in registry.iter() {
        let Some(replies) = replies.get(kind.name()) else { continue };
        let mut resend: BTreeSet<String> =
            resend_all.iter().filter(|(k, _)| k == kind.name()).map(|(_, id)| id.clone()).collect();
        tallies.insert(kind.name(), kind.apply(dir, writer, via_hub, replies, &mut resend)?);
        resend_all.retain(|(k, _)| k != kind.name());
        resend_all.extend(resend.into_iter().map(|id| (kind.name().to_string(), id)));
    }
    Ok(tallies)
}
