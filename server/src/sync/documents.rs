//! The server's part of syncing documents of every further kind (the request's `docs`): one generic loop for
//! every kind registered in `ServerKinds`, run inside the sync's write transaction like the tasks' part. A kind
//! brings only its `DocKind` (layout, what a device may write, how it is checked); its documents are stored by
//! `store::documents`, meant for teams or for everyone, and told `gone` once withdrawn or no longer meant for the
//! device. Kinds a client sends that this server does not know get no answer: the client keeps them as they are.

use crate::refusal::Refusal;
use crate::store::db::Backend;
use crate::store::documents;
use crate::sync::push_error;
use client_core::docs::DocsKind;
use client_core::limits::SyncBudget;
use client_core::protocol::{hashes_from_wire, DocAnswer, DocPush, DocReply};
use client_core::sign::KeyPair;
use client_core::sync::{accept_push_within, new_reply, Trust};
use sqlx::{Any, Transaction};
use std::collections::{BTreeMap, BTreeSet};
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
        Box::pin(sync_kind::<K>(tx, ctx, pushes, budget))
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
    /// Whether a request's `docs` names a kind this server syncs (the sync then takes the write transaction).
    pub fn any_of(&self, docs: &BTreeMap<String, Vec<DocPush>>) -> bool {
        docs.keys().any(|name| self.get(name).is_some())
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

async fn sync_kind<K: DocsKind>(
    tx: &mut Tx,
    ctx: &Context<'_>,
    pushes: &[DocPush],
    budget: &mut SyncBudget,
) -> Result<Vec<DocReply>, Refusal> {
    let kind = K::NOUN;
    let mut ids = BTreeSet::new();
    for p in pushes {
        if !ids.insert(p.id.as_str()) {
            return Err(Refusal::invalid(format!("{kind} {} appears twice in the sync request", p.id)));
        }
    }
    let held = documents::held_by(tx, kind, ctx.device_id).await?;
    let meant: BTreeSet<String> = documents::meant_for(tx, kind, ctx.team).await?.into_iter().collect();
    let mut replies = Vec::new();
    // Sorted, so that two syncs lock documents in the same order.
    for push in ids.iter().map(|id| pushes.iter().find(|p| p.id == *id).expect("pushed")) {
        let id = push.id.as_str();
        let holds = matches!(held.get(id), Some(None)) || attested(ctx, &K::subject(id), push);
        let is_meant = meant.contains(id);
        if !is_meant && !holds {
            // Nothing of a document goes to a device it is not meant for; it hears nothing of it either.
            continue;
        }
        documents::lock(tx, ctx.backend, kind, id).await?;
        let stored = documents::load(tx, kind, id)
            .await?
            .ok_or_else(|| Refusal::internal(format!("{kind} {id} is meant for a team but not stored")))?;
        let mut doc = K::load(&stored.bytes).map_err(|e| Refusal::internal(format!("{kind} {id}: {e}")))?;
        // Applied in place: a refused push fails the sync, and its transaction drops `doc` unsaved.
        let accepted = accept_push_within(&mut doc, push, ctx.trust, budget).map_err(|e| push_error(&e))?;
        if !accepted.new_changes.is_empty() {
            documents::save(tx, kind, id, &doc.save(), stored.version).await?;
        }
        let mut reply = accepted.reply;
        if reply.answer == DocAnswer::Synced && (stored.withdrawn || !is_meant) {
            reply.answer = DocAnswer::Gone;
        }
        if reply.answer != DocAnswer::ResendAll {
            documents::note_held(tx, kind, id, ctx.device_id, ctx.now).await?;
            attest::<K>(ctx, &mut reply)?;
        }
        replies.push(reply);
    }
    for id in meant.iter().filter(|id| !ids.contains(id.as_str())) {
        let stored = documents::load(tx, kind, id)
            .await?
            .ok_or_else(|| Refusal::internal(format!("{kind} {id} is not stored")))?;
        let doc = K::load(&stored.bytes).map_err(|e| Refusal::internal(format!("{kind} {id}: {e}")))?;
        let mut reply = new_reply(id, &doc);
        documents::note_held(tx, kind, id, ctx.device_id, ctx.now).await?;
        attest::<K>(ctx, &mut reply)?;
        replies.push(reply);
    }
    // Documents delivered, gone since, and no longer pushed: the device's word that it deleted them.
    for (id, deleted) in &held {
        if deleted.is_none() && !ids.contains(id.as_str()) && !meant.contains(id) {
            documents::note_deleted(tx, kind, id, ctx.device_id, ctx.now).await?;
        }
    }
    Ok(replies)
}

/// Whether the push carries the server's signed statement of the document, which only its holders receive.
fn attested(ctx: &Context<'_>, subject: &str, push: &DocPush) -> bool {
    push.attestation.as_ref().is_some_and(|a| ctx.server_key.public().attested_heads(subject, a).is_some())
}

fn attest<K: DocsKind>(ctx: &Context<'_>, reply: &mut DocReply) -> Result<(), Refusal> {
    let heads = hashes_from_wire(&reply.heads).map_err(Refusal::internal)?;
    reply.attestation = Some(ctx.server_key.attest(&K::subject(&reply.id), &heads, ctx.now));
    Ok(())
}

/// Stores a new document of kind `K`, meant for `teams` (`store::documents::EVERYONE` for every device): devices
/// receive it at their next sync.
pub async fn publish<K: DocsKind>(state: &crate::AppState, id: &str, doc: &K, teams: &[&str]) -> Result<(), Refusal> {
    client_core::docs::check_id(id).map_err(|e| Refusal::invalid(e.to_string()))?;
    let (_gate, mut tx) = state.db.begin_write().await?;
    documents::create(&mut tx, K::NOUN, id, &doc.save(), teams).await?;
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
