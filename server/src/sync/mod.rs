//! The sync endpoint's work: check every grid (and urgent task) a device pushes (its own changes, and those of
//! team-mates it relays with their signatures), store all of it in one transaction (or none of it), project the new
//! visits, found places and corrections, and answer with what the device lacks, including newly assigned grids
//! (each with the server's signed statement of the heads it holds) and newly issued tasks.

pub mod documents;
pub mod reassigned;
pub mod tasks;

use crate::accounts::audit;
use crate::campaign::InForce;
use crate::refusal::Refusal;
use crate::store::db::now_ms;
use crate::store::grids::{Cached, GridLock, GridRepo, GridSession, GridWrite};
use crate::store::{areas, device_grids, devices, places as stored_places, projection, tasks as stored_tasks};
use crate::{settings, AppState};
use client_core::campaign::Campaign;
use client_core::grid::model::Visit;
use client_core::limits::SyncBudget;
use client_core::protocol::{
    Contact, DocPush, DocReply, GridPush, GridReply, ReplyKind, SyncRequest, SyncResponse, TaskPush, PROTOCOL_VERSION,
};
use client_core::sign::PublicKey;
use client_core::sync::Author;
use client_core::sync::{accept_push_with, accept_push_within, new_reply, Accepted, PushError, Signer, Trust};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// The device syncing, as its verified token names it (its account and enrolment checked before the sync).
#[derive(Debug, Clone)]
pub struct Device {
    pub device_id: String,
    /// The id and name of the device's user.
    pub user_id: String,
    pub username: String,
    /// The actor of this device's own changes.
    pub actor: automerge::ActorId,
}

impl From<&Device> for Device {
    fn from(device: &Device) -> Self {
        device.clone()
    }
}

impl Device {
    /// The author of this device's own changes.
    pub fn author(&self) -> Author {
        Author { actor: self.actor.clone(), username: self.username.clone(), device: self.device_id.clone() }
    }
}

/// The devices of a team whose signed changes a team-mate may relay.
pub struct TeamSigners {
    pub by_actor: HashMap<automerge::ActorId, Signer>,
    /// Revoked devices and devices of disabled accounts: their relayed changes are stored (later work of the
    /// whole team depends on them) but their visits are not counted.
    pub quarantined: HashSet<String>,
}

/// Every device of `team` that registered a signing key.
pub async fn team_signers(conn: &mut sqlx::AnyConnection, team: Option<&str>) -> Result<TeamSigners, Refusal> {
    let mut signers = TeamSigners { by_actor: HashMap::new(), quarantined: HashSet::new() };
    let Some(team) = team else { return Ok(signers) };
    for (device, actor, key, username, revoked, disabled) in devices::relay_signers_of_team(conn, team).await? {
        let (Ok(actor), Ok(key)) = (actor.parse(), PublicKey::from_hex(&key)) else { continue };
        if revoked.is_some() || disabled.is_some() {
            signers.quarantined.insert(device.clone());
        }
        let author = Author { actor, username, device };
        signers.by_actor.insert(author.actor.clone(), Signer { author, key });
    }
    Ok(signers)
}

/// Writing syncs processed at the same time unless `doorstep serve --max-concurrent-syncs` says otherwise:
/// enough to keep the CPUs busy while one of them waits for the database, few enough that their documents take
/// little memory (a sync holds one document per grid it writes, about 0.1 MB for a 100-place grid).
pub const DEFAULT_MAX_CONCURRENT_SYNCS: usize = 16;

/// Waits until a writing sync may proceed. A sync that writes holds its grids' documents from locking them
/// until its transaction commits, and on SQLite commits queue for one write gate: admitting a bounded number at
/// a time bounds the documents in memory under a burst, while the others wait here holding only their request.
/// Waiting never fails a sync; it only delays it.
async fn admit(state: &AppState) -> Result<tokio::sync::OwnedSemaphorePermit, Refusal> {
    /// Counts a sync as waiting until it is admitted or its client goes away.
    struct Waiting;
    impl Drop for Waiting {
        fn drop(&mut self) {
            metrics::gauge!(crate::ops::SYNCS_WAITING).decrement(1.0);
        }
    }
    metrics::gauge!(crate::ops::SYNCS_WAITING).increment(1.0);
    let _waiting = Waiting;
    state.sync_admission.clone().acquire_owned().await.map_err(|_| Refusal::internal("sync admission closed"))
}

/// One sync, in four phases: **check** every push against the grids' documents (nothing written), **plan** what
/// the accepted pushes change, **commit** it in one transaction (or skip it when nothing changes), and **reply**.
/// The order of the database work is the one each phase describes; grids with something to store stay locked from
/// the check until the commit.
/// `device` is the syncing device as its verified token names it (`http::auth` turns its token into a `Device`).
pub async fn sync(state: &AppState, device: impl Into<Device>, mut req: SyncRequest) -> Result<SyncResponse, Refusal> {
    let device = &device.into();
    if req.protocol != PROTOCOL_VERSION {
        return Err(Refusal::invalid(format!(
            "sync protocol {} is not supported (this server speaks {PROTOCOL_VERSION}); update doorstep",
            req.protocol
        )));
    }
    client_core::limits::check_task_changes(req.tasks.as_deref()).map_err(|e| too_large(&e))?;
    // Syncs that only read hold one document at a time, briefly, and are not queued.
    let writes = req.grids.iter().any(|p| !p.changes.is_empty());
    let _admitted = if writes { Some(admit(state).await?) } else { None };
    let author = device.author();
    let mut checked = check(state, device, &author, &req.grids).await?;
    let mut plan = plan(&mut checked, device, req.tasks.as_deref()).await?;
    // Documents of further kinds are checked and stored in the transaction, like tasks; unless they are quiet.
    if plan.writes_nothing && !req.docs.is_empty() {
        let team = checked.holder.team.clone();
        plan.writes_nothing =
            docs_are_quiet(state, device, &author, team.as_deref(), &req.docs, &mut checked.session).await?;
    }
    let tasks = req.tasks.take();
    let docs = std::mem::take(&mut req.docs);
    let committed = commit(state, device, author, checked, plan, tasks, docs).await?;
    reply(state, device, committed).await
}

/// The device as the server knows it, read before any grid is locked.
struct Holder {
    team: Option<String>,
    last_seen: Option<i64>,
    /// The grids assigned to the device's team.
    assigned: BTreeSet<String>,
    /// The grids the device holds, as far as the server knows.
    known: BTreeSet<String>,
    /// Grids the device was told its team lost.
    told: BTreeSet<String>,
    signers: TeamSigners,
}

/// What the check phase found: every push checked and applied to its grid's document (out of the cache), with
/// the replies of the grids only read. Nothing is written yet.
struct Checked {
    holder: Holder,
    /// Replies sending whole grids the device lacks.
    replies: Vec<GridReply>,
    /// Replies of grids only read (nothing to store).
    pulled: Vec<GridReply>,
    /// The pushes with something to store, by their grid's lock.
    accepted: Vec<(usize, Accepted, Cached)>,
    locks: Vec<GridLock>,
    session: GridSession,
    /// Records stored but not projected (`check_accepted`).
    set_aside: usize,
    /// The campaign that counts this sync's visits, the same from check to commit.
    campaign: Arc<InForce>,
}

/// Check: reads the device's team and grids (one connection), refuses pushes for grids it may not write, then
/// checks every push: grids without changes each under a brief lock, grids with changes under locks held until
/// the commit. Ends with the checks over the whole request (`refuse_after_told`, `check_accepted`).
async fn check(state: &AppState, device: &Device, author: &Author, pushes: &[GridPush]) -> Result<Checked, Refusal> {
    // The reads before any grid is locked share one connection: each use of the pool costs a round trip to an
    // SQLite connection's thread (or hands a PostgreSQL connection over).
    let mut conn = state.db.pool.acquire().await?;
    let (holder, pushed) = read_holder(&mut conn, device, pushes).await?;
    // Changes in the history of heads this server once attested were checked when it first stored them: a
    // device's resend after the server lost them (restored from an old backup) brings them back, team-mates'
    // included.
    let server_key = state.keys.server_key().public();
    let trust = Trust {
        pusher: author,
        pusher_key: None,
        signers: Some(&holder.signers.by_actor),
        server_key: Some(&server_key),
    };
    let pushes: HashMap<&str, &GridPush> = pushes.iter().map(|p| (p.grid.as_str(), p)).collect();
    // Grids with something to store are locked until the transaction commits; the others (most grids of most
    // syncs) are only read, each under a brief lock, so team-mates' syncs do not queue behind each other.
    let (write_codes, read_codes): (Vec<String>, Vec<String>) = pushed
        .iter()
        .chain(holder.assigned.iter().filter(|g| !pushed.contains(*g)))
        .cloned()
        .partition(|g| pushes.get(g.as_str()).is_some_and(|p| !p.changes.is_empty()));

    let (mut replies, pulled) = check_read_grids(state, conn, &read_codes, &pushes, &holder.assigned, &trust).await?;
    let (mut locks, mut session) = state.grids.begin(&write_codes).await?;
    let mut accepted =
        check_write_grids(state, &mut locks, &mut session, &pushes, &holder.assigned, &trust, &mut replies).await?;
    let no_longer_assigned: Vec<(&str, &Accepted)> = accepted
        .iter()
        .map(|(i, acc, _)| (locks[*i].code.as_str(), acc))
        .filter(|(code, _)| !holder.assigned.contains(*code))
        .collect();
    crate::sync::reassigned::refuse_after_told(session.reader(), &no_longer_assigned).await?;
    let set_aside = check_accepted(session.reader(), &mut accepted, &locks, &device.device_id).await?;
    let campaign = state.campaigns.for_locked(&state.db, session.reader()).await?;
    Ok(Checked { holder, replies, pulled, accepted, locks, session, set_aside, campaign })
}

/// Reads the device's team, the team's grids and the grids the device holds, and refuses a request that
/// names a grid twice or one the device may not write. Returns the grids pushed.
async fn read_holder(
    conn: &mut sqlx::AnyConnection,
    device: &Device,
    pushes: &[GridPush],
) -> Result<(Holder, BTreeSet<String>), Refusal> {
    let (team, last_seen) = devices::team_and_last_seen(conn, &device.user_id, &device.device_id).await?;
    let assigned = match &team {
        Some(team) => areas::grids_of_team(conn, team).await?,
        None => BTreeSet::new(),
    };
    let held_rows = device_grids::held_by(conn, &device.device_id).await?;
    let known: BTreeSet<String> = held_rows.iter().map(|(g, _)| g.clone()).collect();
    let told: BTreeSet<String> = held_rows.into_iter().filter(|(_, at)| at.is_some()).map(|(g, _)| g).collect();
    let mut pushed = BTreeSet::new();
    for push in pushes {
        if !pushed.insert(push.grid.clone()) {
            return Err(Refusal::invalid(format!("grid {} appears twice in the sync request", push.grid)));
        }
        // A grid taken away from the team still accepts what the device recorded before it learned of it.
        if !assigned.contains(&push.grid) && !known.contains(&push.grid) {
            return Err(Refusal::forbidden(format!("grid {} is not assigned to your team", push.grid)));
        }
    }
    let signers = team_signers(&mut *conn, team.as_deref()).await?;
    let holder = Holder { team, last_seen, assigned, known, told, signers };
    Ok((holder, pushed))
}

type Pushes<'a> = HashMap<&'a str, &'a GridPush>;

/// Checks the grids with nothing to store (most grids of most syncs), each under a brief lock so team-mates'
/// syncs do not queue behind each other. Returns the replies sending whole grids, and the others.
async fn check_read_grids(
    state: &AppState,
    mut conn: sqlx::pool::PoolConnection<sqlx::Any>,
    read_codes: &[String],
    pushes: &Pushes<'_>,
    assigned: &BTreeSet<String>,
    trust: &Trust<'_>,
) -> Result<(Vec<GridReply>, Vec<GridReply>), Refusal> {
    let (mut replies, mut pulled) = (Vec::new(), Vec::new());
    // One statement for the versions of all grids read; a grid whose cached copy is at that version needs no
    // further database access (most grids of most syncs).
    let stored = state.grids.stored_versions(&mut conn, read_codes).await?;
    drop(conn);
    for code in read_codes {
        let reply = state
            .grids
            .with_current(code, stored.get(code).copied(), |cached| match (cached, pushes.get(code.as_str())) {
                (None, Some(_)) => Err(Refusal::not_found(format!("grid {code} does not exist on this server"))),
                (None, None) => Ok(None), // assigned but never imported: nothing to send yet
                (Some(c), None) => Ok(Some(new_reply(code, &c.doc))),
                // Only grids without changes are read here: the document is checked, not changed.
                (Some(c), Some(push)) => {
                    accept_push_with(&mut c.doc, push, trust).map(|a| Some(a.reply)).map_err(|e| push_error(&e))
                }
            })
            .await??;
        if let Some(mut reply) = reply {
            if let Some(push) = pushes.get(code.as_str()).filter(|_| !assigned.contains(code)) {
                crate::sync::reassigned::withhold(&mut reply, push);
            }
            match reply.kind {
                ReplyKind::New => replies.push(reply),
                _ => pulled.push(reply),
            }
        }
    }

    Ok((replies, pulled))
}

/// Checks the grids with something to store, under `locks` held until the commit: each push is applied to the
/// document taken out of the cache, which goes back into the cache only after the transaction commits
/// (`commit`). Grids the device lacks get whole replies in `replies`.
async fn check_write_grids(
    state: &AppState,
    locks: &mut [GridLock],
    session: &mut GridSession,
    pushes: &Pushes<'_>,
    assigned: &BTreeSet<String>,
    trust: &Trust<'_>,
    replies: &mut Vec<GridReply>,
) -> Result<Vec<(usize, Accepted, Cached)>, Refusal> {
    // Each push is applied to the document taken out of the cache; a document goes back into the cache only
    // after the transaction commits (`reply`).
    let mut accepted: Vec<(usize, Accepted, Cached)> = Vec::new();
    let lock_codes: Vec<String> = locks.iter().map(|l| l.code.clone()).collect();
    let stored = state.grids.stored_versions(session.reader(), &lock_codes).await?;
    let mut budget = SyncBudget::default();
    for (i, lock) in locks.iter_mut().enumerate() {
        let code = lock.code.clone();
        let Some(mut cached) = state.grids.take_current(lock, session.reader(), stored.get(&code).copied()).await?
        else {
            if pushes.contains_key(code.as_str()) {
                return Err(Refusal::not_found(format!("grid {code} does not exist on this server")));
            }
            continue; // assigned but never imported: nothing to send yet
        };
        match pushes.get(code.as_str()) {
            None => {
                replies.push(new_reply(&code, &cached.doc));
                GridRepo::commit_cache(lock, (cached.version, cached.log_count), cached.doc);
            }
            Some(push) => {
                let mut result =
                    accept_push_within(&mut cached.doc, push, trust, &mut budget).map_err(|e| push_error(&e))?;
                if !assigned.contains(&code) {
                    crate::sync::reassigned::withhold(&mut result.reply, push);
                }
                accepted.push((i, result, cached));
            }
        }
    }
    Ok(accepted)
}

/// What the commit phase writes besides the new changes.
struct Plan {
    deltas: projection::AreaDeltas,
    /// The new visits' projection, when it could be worked out before the write gate.
    planned: Option<projection::VisitPlan>,
    /// Changes to store.
    stored: u64,
    now: i64,
    /// Grids the device holds from now on that the server did not know it held.
    newly_held: Vec<String>,
    /// Grids the device is told now, for the first time, that its team lost; and those given back to its team.
    newly_told: Vec<String>,
    given_back: Vec<String>,
    seen_recently: bool,
    /// Nothing to store: the sync takes no turn at the write gate.
    writes_nothing: bool,
}

/// Whether the request's documents of further kinds need no write and no answer, read outside the write gate: in
/// the grid session's transaction on PostgreSQL; on SQLite after the session's reading connection is handed
/// back, never while holding it.
async fn docs_are_quiet(
    state: &AppState,
    device: &Device,
    author: &Author,
    team: Option<&str>,
    docs: &BTreeMap<String, Vec<DocPush>>,
    session: &mut GridSession,
) -> Result<bool, Refusal> {
    let trust = Trust { pusher: author, pusher_key: None, signers: None, server_key: None };
    let ctx = documents::Context {
        device_id: &device.device_id,
        team,
        trust: &trust,
        server_key: state.keys.server_key(),
        backend: state.db.backend,
        now: now_ms(),
    };
    if let Some(tx) = session.transaction() {
        return state.kinds.are_quiet(tx, &ctx, docs).await;
    }
    session.release_reader();
    let mut tx = state.db.pool.begin().await.map_err(crate::store::StoreError::from)?;
    let quiet = state.kinds.are_quiet(&mut tx, &ctx, docs).await?;
    tx.rollback().await.map_err(crate::store::StoreError::from)?;
    Ok(quiet)
}

/// Plan: what the accepted pushes change. The new visits' projection is worked out before the write gate (the
/// grids' locks keep their places' rows as read), so that those reads take no turn at the gate; unless the push
/// also holds places found in the field: its visits may be for them, and they are written behind the gate.
async fn plan(checked: &mut Checked, device: &Device, tasks: Option<&[TaskPush]>) -> Result<Plan, Refusal> {
    let Checked { holder, replies, pulled, accepted, locks, session, campaign, .. } = checked;
    let mut deltas = projection::AreaDeltas::default();
    let finds_places = accepted.iter().any(|(_, acc, _)| !acc.records.places.is_empty());
    let planned = match finds_places {
        false => {
            let new_visits = counted_new_visits(accepted, locks, &holder.signers.quarantined);
            Some(projection::plan_visits(session.reader(), &campaign.campaign, &new_visits, &mut deltas).await?)
        }
        true => None,
    };
    let stored: u64 = accepted.iter().map(|(_, a, _)| a.new_changes.len() as u64).sum();
    let now = now_ms();
    let newly_held: Vec<String> = replies
        .iter()
        .chain(pulled.iter())
        .filter(|r| r.kind != ReplyKind::ResendAll)
        .map(|r| &r.grid)
        .chain(
            accepted.iter().filter(|(_, a, _)| a.reply.kind != ReplyKind::ResendAll).map(|(i, _, _)| &locks[*i].code),
        )
        .filter(|g| !holder.known.contains(*g))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let newly_told: Vec<String> = pulled
        .iter()
        .map(|r| (&r.grid, r.kind))
        .chain(accepted.iter().map(|(i, a, _)| (&locks[*i].code, a.reply.kind)))
        .filter(|(g, kind)| *kind == ReplyKind::Unassigned && !holder.told.contains(*g))
        .map(|(g, _)| g.clone())
        .collect();
    let given_back: Vec<String> = holder.told.iter().filter(|g| holder.assigned.contains(*g)).cloned().collect();
    let seen_recently = holder.last_seen.is_some_and(|at| now - at < LAST_SEEN_RESOLUTION_MS);
    // Most syncs bring nothing new (a device checking in, a retried request): they take no turn at the gate.
    // The task check reads, so it comes last: a sync that stores something anyway skips it.
    let writes_nothing = stored == 0
        && newly_held.is_empty()
        && newly_told.is_empty()
        && given_back.is_empty()
        && seen_recently
        && !tasks_may_write(session.reader(), &device.device_id, holder.team.as_deref(), tasks).await?;
    Ok(Plan { deltas, planned, stored, now, newly_held, newly_told, given_back, seen_recently, writes_nothing })
}

/// What the commit phase hands to the reply.
struct Committed {
    replies: Vec<GridReply>,
    pulled: Vec<GridReply>,
    accepted: Vec<Accepted>,
    task_sync: crate::sync::tasks::TaskSync,
    docs: BTreeMap<String, Vec<DocReply>>,
    stored: u64,
    now: i64,
    /// Team-mates' changes the device relayed; visits of revoked devices stored, not counted; records set aside.
    relayed: usize,
    not_counted: usize,
    set_aside: usize,
}

/// Commit: stores every new change and its projection, the device's grids and tasks, in one transaction driven
/// by the writer thread (`Db::write_job`), which owns what it writes and hands the documents and their locks
/// back; then puts the documents back into the cache. A sync that writes nothing skips the transaction.
async fn commit(
    state: &AppState,
    device: &Device,
    author: Author,
    checked: Checked,
    plan: Plan,
    tasks: Option<Vec<TaskPush>>,
    docs: BTreeMap<String, Vec<DocPush>>,
) -> Result<Committed, Refusal> {
    let Checked { holder, replies, pulled, accepted, locks, session, set_aside, campaign } = checked;
    let Plan { mut deltas, planned, stored, now, newly_held, newly_told, given_back, seen_recently, writes_nothing } =
        plan;
    let relayed: usize = accepted.iter().map(|(_, a, _)| a.signatures.len()).sum();
    let total_visits: usize = accepted.iter().map(|(_, a, _)| a.records.visits.len()).sum();
    let not_counted = total_visits - counted_new_visits(&accepted, &locks, &holder.signers.quarantined).len();
    let (new_versions, task_sync, doc_replies, accepted, mut locks) = if writes_nothing {
        drop(session);
        let unchanged: Vec<(i64, i64)> =
            accepted.iter().map(|(_, _, cached)| (cached.version, cached.log_count)).collect();
        (unchanged, crate::sync::tasks::TaskSync::default(), BTreeMap::new(), accepted, locks)
    } else {
        let db = &state.db;
        let (state, device) = (state.clone(), device.clone());
        let Holder { team, signers, .. } = holder;
        let job = async move {
            let (_gate, mut tx) = session.into_writer().await?;
            let rules = &campaign.campaign;
            let new_versions = store_grids(&state, &mut tx, rules, &accepted, &locks, &mut deltas).await?;
            let plan = match planned {
                Some(plan) => plan,
                None => {
                    let new_visits = counted_new_visits(&accepted, &locks, &signers.quarantined);
                    projection::plan_visits(&mut tx, rules, &new_visits, &mut deltas).await?
                }
            };
            projection::apply_visits(&mut tx, &plan).await?;
            device_grids::note_held(&mut tx, &device.device_id, &newly_held).await?;
            device_grids::note_removal_told(&mut tx, &device.device_id, &newly_told, &given_back, now).await?;
            // Tasks keep checking every change they lack: a task's entries are recorded in SQL only from checked
            // changes.
            let task_trust =
                Trust { pusher: &author, pusher_key: None, signers: Some(&signers.by_actor), server_key: None };
            let context = documents::Context {
                device_id: &device.device_id,
                team: team.as_deref(),
                trust: &task_trust,
                server_key: state.keys.server_key(),
                backend: state.db.backend,
                now,
            };
            let task_sync = crate::sync::tasks::sync_tasks(
                &mut tx,
                &context,
                &device.user_id,
                &signers.quarantined,
                tasks.as_deref(),
            )
            .await?;
            let doc_replies = documents::sync_all(&state.kinds, &mut tx, &context, &docs).await?;
            deltas.flush(&mut tx).await?;
            if !seen_recently {
                devices::note_seen(&mut tx, &device.device_id, now).await?;
            }
            tx.commit().await?;
            Ok::<_, Refusal>((new_versions, task_sync, doc_replies, accepted, locks))
        };
        db.write_job(job).await.map_err(|e| Refusal::internal(format!("the sync's write stopped: {e}")))??
    };
    let mut accepted_replies = Vec::with_capacity(accepted.len());
    for (versions, (i, acc, cached)) in new_versions.into_iter().zip(accepted) {
        GridRepo::commit_cache(&mut locks[i], versions, cached.doc);
        accepted_replies.push(acc);
    }
    drop(locks);
    let relayed = relayed + task_sync.relayed;
    Ok(Committed {
        replies,
        pulled,
        accepted: accepted_replies,
        task_sync,
        docs: doc_replies,
        stored,
        now,
        relayed,
        not_counted,
        set_aside,
    })
}

/// Reply: counts and audits what was stored, then answers every grid, each with the server's signed statement
/// of its heads and, when the office shares them, its places' contacts.
async fn reply(state: &AppState, device: &Device, committed: Committed) -> Result<SyncResponse, Refusal> {
    let Committed { mut replies, pulled, accepted, task_sync, docs, stored, now, relayed, not_counted, set_aside } =
        committed;
    let db = &state.db;
    let visits: usize = accepted.iter().map(|a| a.records.visits.len()).sum();
    metrics::counter!(crate::ops::CHANGES_STORED).increment(stored);
    metrics::counter!(crate::ops::VISITS_INGESTED).increment(visits as u64);
    if stored > 0 {
        tracing::info!(device = %device.device_id, user = %device.username, changes = stored, "sync stored changes");
    }
    if relayed > 0 || not_counted > 0 {
        let detail = format!(
            "device {} relayed {relayed} changes of team-mates; {not_counted} visits of revoked devices stored, not counted",
            device.device_id
        );
        audit::record(db, Some(&device.username), "sync.relayed", &detail).await;
    }
    if set_aside > 0 {
        let detail = format!(
            "device {}: {set_aside} records for places another grid holds (found places relayed under the id of \
             another grid's place, and visits and corrections naming them) stored, not counted",
            device.device_id
        );
        audit::record(db, Some(&device.username), "sync.set_aside", &detail).await;
    }
    replies.extend(pulled);
    replies.extend(accepted.into_iter().map(|a| a.reply));
    replies.sort_by(|a, b| a.grid.cmp(&b.grid));
    for reply in replies.iter_mut().filter(|r| r.kind != ReplyKind::ResendAll) {
        let heads = client_core::protocol::hashes_from_wire(&reply.heads).map_err(Refusal::internal)?;
        reply.attestation = Some(state.keys.server_key().attest(&reply.grid, &heads, now));
    }
    let share = settings::get_value(db, settings::SHARE_CONTACTS).await? == "on";
    for reply in &mut replies {
        reply.contacts = match reply.kind {
            ReplyKind::ResendAll => None,
            ReplyKind::Synced | ReplyKind::New if share => Some(contacts_of(state, &reply.grid).await?),
            _ => Some(Vec::new()),
        };
    }
    Ok(SyncResponse { grids: replies, tasks: task_sync.replies, docs, relay: None })
}

/// Contact details of a grid's places, sent beside the document when the office shares them.
async fn contacts_of(state: &AppState, grid: &str) -> Result<Vec<Contact>, Refusal> {
    let rows = stored_places::contacts_in_grid(&state.db, grid).await?;
    Ok(rows.into_iter().map(|(place_id, name, phone)| Contact { place_id, name, phone }).collect())
}

/// Stores the accepted grids' new changes, with the places found and corrected in them (projected first: a
/// visit may be for a place found in the same push). Returns what each accepted grid's cache slot holds after
/// the commit: its version and log length, unchanged or just written.
async fn store_grids(
    state: &AppState,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    campaign: &Campaign,
    accepted: &[(usize, Accepted, Cached)],
    locks: &[GridLock],
    deltas: &mut projection::AreaDeltas,
) -> Result<Vec<(i64, i64)>, Refusal> {
    let mut writes = Vec::new();
    for (i, acc, cached) in accepted.iter().filter(|(_, acc, _)| !acc.new_changes.is_empty()) {
        let lock = &locks[*i];
        if !acc.records.places.is_empty() {
            let info =
                cached.doc.grid_info()?.ok_or_else(|| Refusal::internal(format!("grid {} has no info", lock.code)))?;
            for place in &acc.records.places {
                crate::places::project_found_place(tx, campaign, &info, place, deltas).await?;
            }
        }
        for correction in &acc.records.corrections {
            crate::places::project_correction(tx, &lock.code, correction).await?;
        }
        let before = Some((cached.version, cached.log_count));
        writes.push(GridWrite { lock, before, doc: &cached.doc, new_changes: &acc.new_changes });
    }
    let mut written = state.grids.persist_many(tx, &writes).await?.into_iter();
    accepted
        .iter()
        .map(|(_, acc, cached)| match acc.new_changes.is_empty() {
            true => Some((cached.version, cached.log_count)),
            false => written.next(),
        })
        .collect::<Option<_>>()
        .ok_or_else(|| Refusal::internal("fewer grids written than accepted"))
}

/// How precisely the office sees when a device last synced: a device syncing again within it is not written.
const LAST_SEEN_RESOLUTION_MS: i64 = 60_000;

/// Whether the task part of a sync may write: the device pushes tasks, holds one it has not deleted, or its
/// team has an open one it may receive.
async fn tasks_may_write(
    conn: &mut sqlx::AnyConnection,
    device: &str,
    team: Option<&str>,
    pushes: Option<&[client_core::protocol::TaskPush]>,
) -> Result<bool, Refusal> {
    match pushes {
        None => Ok(false),
        Some(pushes) if !pushes.is_empty() => Ok(true),
        Some(_) => {
            let held = stored_tasks::device_holds_any(conn, device).await?;
            let open = match team {
                Some(team) => stored_tasks::team_has_any_but(conn, team, crate::tasks::status::CLOSED).await?,
                None => false,
            };
            Ok(held || open)
        }
    }
}

/// A refused push (of any kind of document) becomes a refusal with the reason; the audit log keeps a trace.
pub(crate) fn push_error(e: &PushError) -> Refusal {
    match e {
        PushError::Forbidden { .. } => {
            metrics::counter!(crate::ops::CHANGES_REJECTED).increment(1);
            Refusal::unacceptable("change_rejected", e.to_string())
        }
        PushError::FromTheFuture { .. } => {
            metrics::counter!(crate::ops::CHANGES_REJECTED).increment(1);
            Refusal::unacceptable("clock_ahead", e.to_string())
        }
        PushError::TooLarge { .. } => too_large(e),
        PushError::Malformed { .. } | PushError::Wire { .. } => Refusal::invalid(e.to_string()),
    }
}

fn too_large(e: &dyn std::fmt::Display) -> Refusal {
    Refusal::TooLarge { code: "sync_too_large", message: e.to_string() }
}

/// What no single grid's document can tell, checked over the whole request before anything is stored: every
/// record is dated no later than shortly after the server's clock, and a place id belongs to one grid only in
/// the whole territory. A device's own found place under the id of a place of another grid is refused. The same
/// relayed by a team-mate (a hub, which holds only its team's grids, could not know) is stored, since the team's
/// later work depends on it in the document, but set aside like a revoked device's visits: it is not projected,
/// and neither is any visit or correction recorded in one grid for a place the server holds in another. Returns
/// how many records were set aside.
async fn check_accepted(
    conn: &mut sqlx::AnyConnection,
    accepted: &mut [(usize, Accepted, Cached)],
    locks: &[GridLock],
    pusher: &str,
) -> Result<usize, Refusal> {
    let now = chrono::Utc::now();
    for (_, acc, _) in accepted.iter() {
        acc.check_not_ahead(now, "the server").map_err(|e| push_error(&e))?;
    }
    let mut found_in: HashMap<&str, &str> = HashMap::new();
    let mut ids = BTreeSet::new();
    for (i, acc, _) in accepted.iter() {
        let grid = locks[*i].code.as_str();
        for place in &acc.records.places {
            if found_in.insert(&place.place.id, grid).is_some_and(|other| other != grid) {
                return Err(crate::store::StoreError::place_taken(&place.place.id, grid).into());
            }
        }
        let records = &acc.records;
        ids.extend(records.places.iter().map(|p| p.place.id.clone()));
        ids.extend(records.corrections.iter().map(|c| c.place_id.clone()));
        ids.extend(records.visits.iter().map(|v| v.place_id.clone()));
    }
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let stored: HashMap<String, String> = stored_places::grids_of(conn, &ids).await?.into_iter().collect();
    let mut set_aside = 0;
    for (i, acc, _) in accepted.iter_mut() {
        let grid = locks[*i].code.as_str();
        let elsewhere = |id: &str| stored.get(id).is_some_and(|other| other != grid);
        let records = &mut acc.records;
        if let Some(own) = records.places.iter().find(|p| p.device == pusher && elsewhere(&p.place.id)) {
            return Err(crate::store::StoreError::place_taken(&own.place.id, grid).into());
        }
        let before = records.places.len() + records.corrections.len() + records.visits.len();
        records.places.retain(|p| !elsewhere(&p.place.id));
        records.corrections.retain(|c| !elsewhere(&c.place_id));
        records.visits.retain(|v| !elsewhere(&v.place_id));
        set_aside += before - (records.places.len() + records.corrections.len() + records.visits.len());
    }
    Ok(set_aside)
}

/// Keeps a trace of a refused sync in the audit log, with the message the device was answered.
pub async fn audit_rejection(state: &AppState, device: &Device, message: &str) {
    audit::record(
        &state.db,
        Some(&device.username),
        "sync.rejected",
        &format!("device {}: {message}", device.device_id),
    )
    .await;
}

/// The new visits of the accepted grids that count, with their grids: revoked devices' visits, relayed by a
/// team-mate, are stored but not counted.
fn counted_new_visits<'a>(
    accepted: &'a [(usize, Accepted, Cached)],
    locks: &'a [GridLock],
    quarantined: &HashSet<String>,
) -> Vec<(&'a str, &'a Visit)> {
    accepted
        .iter()
        .filter(|(_, acc, _)| !acc.new_changes.is_empty())
        .flat_map(|(i, acc, _)| acc.records.visits.iter().map(|v| (locks[*i].code.as_str(), v)))
        .filter(|(_, v)| !quarantined.contains(&v.device))
        .collect()
}
