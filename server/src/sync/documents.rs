//! The server's part of syncing documents of every further kind (the request's `docs`): one generic loop for
//! every kind registered in `ServerKinds`, run inside the sync's write transaction like the tasks' part. A kind
//! brings only its `DocKind` (layout, what a device may write, how it is checked); its documents are stored by
//! `store::documents`, meant for teams or for everyone, and told `gone` once withdrawn or no longer meant for the
//! device. Kinds a client sends that this server does not know get no answer: the client keeps them as they are.

use crate::refusal::Refusal;
use crate::store::db::Backend;
use crate::store::documents;
use crate::sync::push_error;
use automerge::ChangeHash;
use client_core::docs::DocsKind;
use client_core::limits::SyncBudget;
use client_core::protocol::{DocPush, DocReply};
use client_core::sign::KeyPair;
use client_core::sync::{accept_push_within, new_reply, DocKind, PushWire, ReplyWire, Trust};
use sqlx::{Any, Transaction};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

type Tx = Transaction<'static, Any>;
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the loop needs to know of the device and the server.
pub struct Context<'a> {
    pub device_id: &'a str,
    pub team: Option<&'a str>,
    pub trust: &'a Trust<'a>,
    pub server_key: &'a KeyPair,
    pub backend: Backend,
    pub now: i64,
}

/// One registered kind, its type erased.
pub trait ServerKind: Send + Sync {
    fn name(&self) -> &'static str;
    /// Checks and stores the pushes, and answers them and every document the device should hold and lacks.
    fn sync<'a>(
        &'a self,
        tx: &'a mut Tx,
        ctx: &'a Context<'a>,
        pushes: &'a [DocPush],
        budget: &'a mut SyncBudget,
    ) -> BoxFuture<'a, Result<Vec<DocReply>, Refusal>>;
    /// Whether syncing the pushes would write nothing and tell the device nothing new (`is_quiet`).
    fn is_quiet<'a>(
        &'a self,
        tx: &'a mut Tx,
        ctx: &'a Context<'a>,
        pushes: &'a [DocPush],
    ) -> BoxFuture<'a, Result<bool, Refusal>>;
}

struct Registered<K>(PhantomData<fn() -> K>);

impl<K: DocsKind> ServerKind for Registered<K> {
    fn name(&self) -> &'static str {
        K::NOUN
    }
    fn sync<'a>(
        &'a self,
        tx: &'a mut Tx,
        ctx: &'a Context<'a>,
        pushes: &'a [DocPush],
        budget: &'a mut SyncBudget,
    ) -> BoxFuture<'a, Result<Vec<DocReply>, Refusal>> {
        Box::pin(async move { Ok(sync_kind::<K, _>(&DocumentShelf, tx, ctx, pushes, budget).await?.0) })
    }
    fn is_quiet<'a>(
        &'a self,
        tx: &'a mut Tx,
        ctx: &'a Context<'a>,
        pushes: &'a [DocPush],
    ) -> BoxFuture<'a, Result<bool, Refusal>> {
        Box::pin(is_quiet::<K, _>(&DocumentShelf, tx, ctx, pushes))
    }
}

/// The kinds this server syncs besides grids and tasks, each registered once by its type.
#[derive(Default)]
pub struct ServerKinds {
    kinds: Vec<Box<dyn ServerKind>>,
}

impl ServerKinds {
    /// Every kind of `client_core::docs::each_kind`.
    pub fn of_doorstep() -> Self {
        struct Add(ServerKinds);
        impl client_core::docs::KindVisitor for Add {
            fn visit<K: DocsKind>(&mut self) {
                self.0 = std::mem::take(&mut self.0).register::<K>();
            }
        }
        let mut add = Add(ServerKinds::default());
        client_core::docs::each_kind(&mut add);
        add.0
    }

    pub fn register<K: DocsKind>(mut self) -> Self {
        assert!(self.get(K::NOUN).is_none(), "document kind {} registered twice", K::NOUN);
        self.kinds.push(Box::new(Registered::<K>(PhantomData)));
        self
    }
    pub fn get(&self, name: &str) -> Option<&dyn ServerKind> {
        self.kinds.iter().find(|k| k.name() == name).map(|k| k.as_ref())
    }
    /// Whether syncing a request's `docs` would write nothing and tell the device nothing new, read in `tx` (a
    /// read transaction): the sync then skips the write transaction, and the device gets no answer for its
    /// documents, which leaves them as they are. Most syncs of most devices are such.
    pub async fn are_quiet(
        &self,
        tx: &mut Tx,
        ctx: &Context<'_>,
        docs: &BTreeMap<String, Vec<DocPush>>,
    ) -> Result<bool, Refusal> {
        for (name, pushes) in docs {
            if let Some(kind) = self.get(name) {
                if !kind.is_quiet(tx, ctx, pushes).await? {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

/// Every known kind of the request, in the sync's transaction; a refused push fails the whole sync.
pub async fn sync_all(
    kinds: &ServerKinds,
    tx: &mut Tx,
    ctx: &Context<'_>,
    docs: &BTreeMap<String, Vec<DocPush>>,
) -> Result<BTreeMap<String, Vec<DocReply>>, Refusal> {
    let mut out = BTreeMap::new();
    // Every further kind's new changes together count against one sync's bounds.
    let mut budget = SyncBudget::default();
    for (name, pushes) in docs {
        if let Some(kind) = kinds.get(name) {
            out.insert(name.clone(), kind.sync(tx, ctx, pushes, &mut budget).await?);
        }
    }
    Ok(out)
}

/// Where the server keeps one kind's documents and whom each is for: all the one receiving loop (`sync_kind`)
/// asks of a kind. Tasks keep theirs in the task tables (`sync::tasks::TaskShelf`); every further kind in
/// `documents` (`DocumentShelf`).
pub trait Shelf<K: DocKind>: Sync {
    /// The documents the device should hold: sent whole when it lacks one.
    fn meant(&self, tx: &mut Tx, ctx: &Context<'_>) -> impl Future<Output = Result<BTreeSet<String>, Refusal>> + Send;
    /// The documents delivered to the device, each with when it deleted it (if it did).
    fn held(
        &self,
        tx: &mut Tx,
        ctx: &Context<'_>,
    ) -> impl Future<Output = Result<HashMap<String, Option<i64>>, Refusal>> + Send;
    /// Whether a pushed document is gone for the device (withdrawn, closed, no longer its team's); refuses a
    /// push the device may not make at all.
    fn gone(
        &self,
        tx: &mut Tx,
        ctx: &Context<'_>,
        id: &str,
        meant: bool,
        held: &HashMap<String, Option<i64>>,
    ) -> impl Future<Output = Result<bool, Refusal>> + Send;
    /// The stored document and its version; with `lock`, other writers of it wait until the commit.
    fn load(
        &self,
        tx: &mut Tx,
        ctx: &Context<'_>,
        id: &str,
        lock: bool,
    ) -> impl Future<Output = Result<(K, i64), Refusal>> + Send;
    /// Stores a new version; refuses if another writer stored one meanwhile.
    fn save(&self, tx: &mut Tx, id: &str, doc: &K, version: i64) -> impl Future<Output = Result<(), Refusal>> + Send;
    /// Records what a push added, beside the document (for tasks: sign-fors and outcomes; for further kinds:
    /// their entries).
    fn record(
        &self,
        tx: &mut Tx,
        ctx: &Context<'_>,
        id: &str,
        records: &K::Records,
    ) -> impl Future<Output = Result<(), Refusal>> + Send;
    /// Notes that the device holds the document (again, if it had deleted it).
    fn note_held(&self, tx: &mut Tx, ctx: &Context<'_>, id: &str) -> impl Future<Output = Result<(), Refusal>> + Send;
    /// Notes that the device no longer holds a document it held that is not meant for it.
    fn note_deleted(
        &self,
        tx: &mut Tx,
        ctx: &Context<'_>,
        id: &str,
    ) -> impl Future<Output = Result<(), Refusal>> + Send;
    /// The heads kept beside the documents the device should hold, where they are kept (`is_quiet` then loads
    /// none of them); none by default.
    fn kept_heads(
        &self,
        tx: &mut Tx,
        ctx: &Context<'_>,
    ) -> impl Future<Output = Result<HashMap<String, Option<String>>, Refusal>> + Send {
        let _ = (tx, ctx);
        std::future::ready(Ok(HashMap::new()))
    }
    /// What the server's attestation in a reply lists: the document's heads, unless the kind says more.
    fn attested(&self, doc: &K, gone: bool) -> Vec<ChangeHash> {
        let _ = gone;
        doc.automerge().get_heads()
    }
}

/// The one receiving loop of the server for every kind but grids (whose sync adds the projection, the writer
/// thread and the grid cache around the same engine): checks and stores the pushes, answers them and every
/// document the device should hold and lacks, and notes which documents the device holds. Runs inside the
/// sync's write transaction: a refused push fails the whole sync. Returns the replies and how many team-mates'
/// changes the device relayed.
pub async fn sync_kind<K: DocKind + Send, S: Shelf<K>>(
    shelf: &S,
    tx: &mut Tx,
    ctx: &Context<'_>,
    pushes: &[K::Push],
    budget: &mut SyncBudget,
) -> Result<(Vec<K::Reply>, usize), Refusal>
where
    K::Push: Sync,
    K::Reply: Send,
    K::Records: Send + Sync,
{
    let noun = K::NOUN;
    let mut ids = BTreeSet::new();
    for p in pushes {
        if !ids.insert(p.parts().id) {
            return Err(Refusal::invalid(format!("{noun} {} appears twice in the sync request", p.parts().id)));
        }
    }
    let held = shelf.held(tx, ctx).await?;
    let meant = shelf.meant(tx, ctx).await?;
    let kept = shelf.kept_heads(tx, ctx).await?;
    let (mut replies, mut relayed) = (Vec::new(), 0);
    // Sorted, so that two syncs lock documents in the same order.
    for push in ids.iter().map(|id| pushes.iter().find(|p| p.parts().id == *id).expect("pushed")) {
        let id = push.parts().id;
        if unchanged_and_held(push.parts(), meant.contains(id), &held, &kept)? {
            // Nothing to store and nothing to tell: no answer, and the device keeps it as it is (most documents
            // of most syncs, which would otherwise each be loaded, checked and attested).
            continue;
        }
        let gone = shelf.gone(tx, ctx, id, meant.contains(id), &held).await?;
        if gone && !holds::<K>(ctx, &held, push) {
            // Nothing of a document goes to a device that does not hold it, and it is not noted as holding it: it
            // is left out of the answer, as a hub leaves out what it cannot speak for.
            continue;
        }
        let (mut doc, version) = shelf.load(tx, ctx, id, true).await?;
        // Applied in place: a refused push fails the sync, and its transaction drops `doc` unsaved.
        let accepted = accept_push_within(&mut doc, push, ctx.trust, budget).map_err(|e| push_error(&e))?;
        if !accepted.new_changes.is_empty() {
            shelf.save(tx, id, &doc, version).await?;
            shelf.record(tx, ctx, id, &accepted.records).await?;
        }
        relayed += accepted.signatures.len();
        let mut reply = accepted.reply;
        if reply.is_synced() && gone {
            reply.set_gone();
        }
        if !reply.is_resend_all() {
            if !matches!(held.get(id), Some(None)) {
                shelf.note_held(tx, ctx, id).await?;
            }
            attest::<K>(ctx, id, &shelf.attested(&doc, gone), &mut reply);
        }
        replies.push(reply);
    }
    for id in meant.iter().filter(|id| !ids.contains(id.as_str())) {
        let (doc, _) = shelf.load(tx, ctx, id, false).await?;
        let mut reply = new_reply(id, &doc);
        shelf.note_held(tx, ctx, id).await?;
        attest::<K>(ctx, id, &shelf.attested(&doc, false), &mut reply);
        replies.push(reply);
    }
    // Documents delivered and no longer pushed nor meant: the device's word that it deleted them.
    for (id, deleted) in &held {
        if deleted.is_none() && !ids.contains(id.as_str()) && !meant.contains(id) {
            shelf.note_deleted(tx, ctx, id).await?;
        }
    }
    Ok((replies, relayed))
}

/// Whether a push brings no change of a document the device holds at the heads the server keeps beside it.
fn unchanged_and_held(
    parts: client_core::sync::PushParts<'_>,
    meant: bool,
    held: &HashMap<String, Option<i64>>,
    kept: &HashMap<String, Option<String>>,
) -> Result<bool, Refusal> {
    if !parts.changes.is_empty() || !meant || !matches!(held.get(parts.id), Some(None)) {
        return Ok(false);
    }
    let Some(Some(heads)) = kept.get(parts.id) else { return Ok(false) };
    let have = client_core::protocol::hashes_from_wire(parts.have).map_err(|e| Refusal::invalid(e.to_string()))?;
    Ok(*heads == documents::heads_text(&have))
}

/// Whether `sync_kind` would write nothing and answer nothing new: no changes pushed, every document the device
/// should hold pushed (and noted as held), none held that it should no longer hold, and each at the server's
/// heads.
pub async fn is_quiet<K: DocKind + Send, S: Shelf<K>>(
    shelf: &S,
    tx: &mut Tx,
    ctx: &Context<'_>,
    pushes: &[K::Push],
) -> Result<bool, Refusal> {
    if pushes.iter().any(|p| !p.parts().changes.is_empty()) {
        return Ok(false);
    }
    let held = shelf.held(tx, ctx).await?;
    let meant = shelf.meant(tx, ctx).await?;
    let pushed: BTreeSet<&str> = pushes.iter().map(|p| p.parts().id).collect();
    if meant.iter().any(|id| !pushed.contains(id.as_str()))
        || held.iter().any(|(id, deleted)| deleted.is_none() && !pushed.contains(id.as_str()) && !meant.contains(id))
    {
        return Ok(false);
    }
    let kept = shelf.kept_heads(tx, ctx).await?;
    for push in pushes {
        let id = push.parts().id;
        if !meant.contains(id) || !matches!(held.get(id), Some(None)) {
            return Ok(false);
        }
        let mut have =
            client_core::protocol::hashes_from_wire(push.parts().have).map_err(|e| Refusal::invalid(e.to_string()))?;
        let same = match kept.get(id) {
            Some(Some(heads)) => *heads == documents::heads_text(&have),
            _ => {
                let (doc, _) = shelf.load(tx, ctx, id, false).await?;
                have.sort();
                let mut heads = doc.automerge().get_heads();
                heads.sort();
                heads == have
            }
        };
        if !same {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether the device holds the document: the server delivered it to this device, which has not deleted it
/// since, or the push carries the server's signed statement of it, which only its holders receive (from the
/// server or the team's hub) and which a re-enrolled profile keeps for the entries it carries over.
fn holds<K: DocKind>(ctx: &Context<'_>, held: &HashMap<String, Option<i64>>, push: &K::Push) -> bool {
    let parts = push.parts();
    let attested =
        parts.attestation.is_some_and(|a| ctx.server_key.public().attested_heads(&K::subject(parts.id), a).is_some());
    matches!(held.get(parts.id), Some(None)) || attested
}

fn attest<K: DocKind>(ctx: &Context<'_>, id: &str, held: &[ChangeHash], reply: &mut K::Reply) {
    *reply.relay_parts().1 = Some(ctx.server_key.attest(&K::subject(id), held, ctx.now));
}

/// Every further kind's documents, in the `documents` tables.
pub struct DocumentShelf;

impl<K: DocsKind> Shelf<K> for DocumentShelf {
    async fn meant(&self, tx: &mut Tx, ctx: &Context<'_>) -> Result<BTreeSet<String>, Refusal> {
        Ok(documents::meant_for(tx, K::NOUN, ctx.team).await?.into_iter().collect())
    }
    async fn held(&self, tx: &mut Tx, ctx: &Context<'_>) -> Result<HashMap<String, Option<i64>>, Refusal> {
        Ok(documents::held_by(tx, K::NOUN, ctx.device_id).await?)
    }
    async fn kept_heads(&self, tx: &mut Tx, ctx: &Context<'_>) -> Result<HashMap<String, Option<String>>, Refusal> {
        Ok(documents::meant_heads(tx, K::NOUN, ctx.team).await?)
    }
    async fn gone(
        &self,
        _tx: &mut Tx,
        _ctx: &Context<'_>,
        _id: &str,
        meant: bool,
        _held: &HashMap<String, Option<i64>>,
    ) -> Result<bool, Refusal> {
        // Withdrawn documents are meant for nobody.
        Ok(!meant)
    }
    async fn load(&self, tx: &mut Tx, ctx: &Context<'_>, id: &str, lock: bool) -> Result<(K, i64), Refusal> {
        let noun = K::NOUN;
        if lock {
            documents::lock(tx, ctx.backend, noun, id).await?;
        }
        let stored = documents::load(tx, noun, id)
            .await?
            .ok_or_else(|| Refusal::internal(format!("{noun} {id} is not stored")))?;
        let doc = K::load(&stored.bytes).map_err(|e| Refusal::internal(format!("{noun} {id}: {e}")))?;
        Ok((doc, stored.version))
    }
    async fn save(&self, tx: &mut Tx, id: &str, doc: &K, version: i64) -> Result<(), Refusal> {
        Ok(documents::save(tx, K::NOUN, id, &doc.save(), &doc.automerge().get_heads(), version).await?)
    }
    async fn record(&self, tx: &mut Tx, ctx: &Context<'_>, id: &str, records: &K::Records) -> Result<(), Refusal> {
        use client_core::docs::Entries;
        let entries = records.entries();
        if entries.is_empty() {
            return Ok(());
        }
        Ok(documents::record_entries(tx, K::NOUN, id, ctx.device_id, ctx.team, &entries, ctx.now).await?)
    }
    async fn note_held(&self, tx: &mut Tx, ctx: &Context<'_>, id: &str) -> Result<(), Refusal> {
        Ok(documents::note_held(tx, K::NOUN, id, ctx.device_id, ctx.now).await?)
    }
    async fn note_deleted(&self, tx: &mut Tx, ctx: &Context<'_>, id: &str) -> Result<(), Refusal> {
        Ok(documents::note_deleted(tx, K::NOUN, id, ctx.device_id, ctx.now).await?)
    }
}

/// Stores a new document of kind `K`, meant for `teams` (`store::documents::EVERYONE` for every device): devices
/// receive it at their next sync.
pub async fn publish<K: DocsKind>(state: &crate::AppState, id: &str, doc: &K, teams: &[&str]) -> Result<(), Refusal> {
    client_core::docs::check_id(id).map_err(|e| Refusal::invalid(e.to_string()))?;
    let (_gate, mut tx) = state.db.begin_write().await?;
    documents::create(&mut tx, K::NOUN, id, &doc.save(), &doc.automerge().get_heads(), teams).await?;
    tx.commit().await?;
    Ok(())
}

/// Withdraws a document of kind `K`: devices holding it are told it is gone, and delete it.
pub async fn withdraw<K: DocsKind>(state: &crate::AppState, id: &str) -> Result<(), Refusal> {
    let (_gate, mut tx) = state.db.begin_write().await?;
    documents::withdraw(&mut tx, K::NOUN, id).await?;
    tx.commit().await?;
    Ok(())
}
